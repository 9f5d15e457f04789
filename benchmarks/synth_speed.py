"""``daaf synth`` speed: images per second, 1 worker vs N workers, projected to Market-1501 size.

Generates a sample of about ``--images`` images end to end (drawing, JPEG files, parsing the
dataset, the annotation store) with Market-1501's density of 24 images per identity, once
with one worker and once with ``--workers``, in the same run, and projects the time for
36,036 images (Market-1501's train + query + gallery incl. junk).

    python benchmarks/synth_speed.py [--images 2000] [--workers 4] [--out DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path

from daaf.data.synthetic.generate import SynthSpec, generate_dataset

MARKET_IMAGES = 36_036
IMAGES_PER_IDENTITY = 24


def measure(out_dir: Path, identities: int, workers: int) -> tuple[int, float]:
    """(images written, seconds) for one full generation."""
    start = time.perf_counter()
    spec = SynthSpec(identities, 6, IMAGES_PER_IDENTITY, seed=0)
    generate_dataset(out_dir, spec, workers=workers, progress=False)
    seconds = time.perf_counter() - start
    images = sum(1 for _ in (out_dir / "Market-1501-v15.09.15").rglob("*.jpg"))
    return images, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="sample size")
    parser.add_argument("--workers", type=int, default=min(4, multiprocessing.cpu_count()))
    parser.add_argument("--out", type=Path, default=None, help="scratch folder (default: tmp)")
    args = parser.parse_args()

    identities = max(4, round(args.images / IMAGES_PER_IDENTITY))
    scratch = Path(tempfile.mkdtemp(dir=args.out))
    print(
        f"sample: {identities} identities x {IMAGES_PER_IDENTITY} images, 6 cameras; "
        f"{multiprocessing.cpu_count()} CPUs"
    )
    rows = []
    try:
        for workers in (1, args.workers):
            images, seconds = measure(scratch / f"w{workers}", identities, workers)
            rows.append((workers, images, seconds, images / seconds))
    finally:
        shutil.rmtree(scratch)
    reference = rows[0][3]
    print(
        f"{'workers':>7} {'images':>7} {'seconds':>8} {'images/s':>9} {'36,036 images':>14} "
        f"{'ratio':>6}"
    )
    for workers, images, seconds, rate in rows:
        print(
            f"{workers:>7} {images:>7} {seconds:>8.1f} {rate:>9.1f} "
            f"{MARKET_IMAGES / rate / 60:>11.1f} min {rate / reference:>5.2f}x"
        )


if __name__ == "__main__":
    main()
