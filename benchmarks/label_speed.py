"""Seconds per image of the three labeling backends (random weights), batched and one at a time.

Random weights keep every detection of any class (up to 10 per image), so the ROI heads do at
least as much work as on real crops: an upper bound on the per-image cost. Each backend labels
the same 128x64 crops through ``label_each``, as ``daaf label`` does (an image on which it
raises costs its retry and counts). A backend that is not installed is skipped with one line.
Prints the projected time for all 36,036 Market-1501 images (train 12,936 + query 3,368 +
gallery 19,732 files) and each backend's time relative to torchvision's.

    OMP_NUM_THREADS=2 python benchmarks/label_speed.py --images 16 --batch-size 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from daaf.errors import DaafError
from daaf.labeling.backends import build_labeler
from daaf.labeling.commands import BACKENDS
from daaf.labeling.driver import label_each
from daaf.labeling.torchvision_backend import DEFAULT_MIN_SIZE

MARKET_IMAGES = 36_036


def seconds_per_image(labeler, images: list[np.ndarray], batch_size: int) -> float:
    label_each(labeler, images[:batch_size])  # warm-up: allocator, oneDNN kernels
    start = time.perf_counter()
    for i in range(0, len(images), batch_size):
        label_each(labeler, images[i : i + batch_size])
    return (time.perf_counter() - start) / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--min-size", type=int, default=DEFAULT_MIN_SIZE)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (128, 64, 3), dtype=np.uint8) for _ in range(args.images)]
    batches = (1, args.batch_size)
    print(
        f"random weights, 128x64 crops at min_size {args.min_size}, {args.device}, "
        f"{torch.get_num_threads()} threads, {args.images} images"
    )
    rows = {}
    for name in args.backends.split(","):
        try:
            labeler = build_labeler(name, weights="random", min_size=args.min_size)
        except DaafError as exc:
            print(f"{name}: skipped ({exc})")
            continue
        labeler.to(args.device)
        rows[name] = [seconds_per_image(labeler, images, b) for b in batches]
        del labeler

    base = rows.get("torchvision")
    header = f"{'backend':<13}" + "".join(f"{f's/img batch {b}':>16}" for b in batches)
    header += "".join(f"{f'vs tv batch {b}':>15}" for b in batches) + f"{'Market-1501':>14}"
    print(header)
    for name, seconds in rows.items():
        ratios = [s / t for s, t in zip(seconds, base, strict=True)] if base else [np.nan] * 2
        print(
            f"{name:<13}"
            + "".join(f"{s:>16.3f}" for s in seconds)
            + "".join(f"{r:>14.2f}x" for r in ratios)
            + f"{MARKET_IMAGES * min(seconds) / 3600:>12.1f} h"
        )


if __name__ == "__main__":
    main()
