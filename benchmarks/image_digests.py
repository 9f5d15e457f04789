"""The image check of ``daaf annotations validate --root`` and ``daaf train`` vs one epoch's data.

Writes N synthetic JPEG person crops (default 36,036, Market-1501's number of images; sizes
64x128 to 128x256, width x height), records their SHA-256 as a store's manifest does, then
times, in the same run and interleaved (median of ``--repeats`` passes):

- ``check``: :func:`daaf.data.annotations.validate.image_mismatches`, the function both commands
  run: read every file and compare its SHA-256 with the recorded one, on 1 thread and on
  ``DIGEST_THREADS`` (the default);
- ``epoch``: one epoch's data time of the same images through the training data path,
  ``TrainSet`` items (read, decode, augment, hand over) at the default DataConfig (256x128,
  pad, flip, random erasing), one process, torch and OpenCV at one thread, as a
  ``daaf train`` worker makes them. It holds no store: masks and keypoints would only add to it.

The ratio is check / epoch. The files were just written, so both read them from the page cache.
It also prints, per image, SHA-256 and BLAKE2b of the bytes already in memory.

    python benchmarks/image_digests.py [--images 36036] [--repeats 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from daaf.data.annotations.digests import DIGEST_THREADS
from daaf.data.annotations.validate import image_mismatches
from daaf.data.config import DataConfig
from daaf.data.datasets import Sample
from daaf.data.train_set import TrainSet

MARKET1501_IMAGES = 36036  # bounding_box_train + bounding_box_test + query, junk included
TEXTURES = 64  # base pictures the crops are cut from


def make_images(folder: Path, count: int, seed: int = 0) -> list[Sample]:
    """``count`` JPEGs (quality 95, OpenCV's default): a crop of a smooth random picture with a
    person-like block, 64x128 to 128x256 (width x height), each with noise of its own."""
    rng = np.random.default_rng(seed)
    textures = [
        cv2.GaussianBlur(rng.integers(0, 256, (320, 160, 3), np.uint8), (9, 9), 0)
        for _ in range(TEXTURES)
    ]
    samples = []
    for index in range(count):
        height = int(rng.integers(128, 257))
        width = height // 2
        top, left = int(rng.integers(0, 320 - height + 1)), int(rng.integers(0, 160 - width + 1))
        image = textures[index % TEXTURES][top : top + height, left : left + width].copy()
        x, y = width // 4, height // 8
        image[y : height - y, x : width - x] = rng.integers(0, 256, 3)
        image = cv2.add(image, rng.integers(0, 12, image.shape, np.uint8))
        path = f"{index // 1000:02d}/{index:05d}.jpg"
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / path), image)
        samples.append(Sample(path, index // 8, index % 6))
    return samples


def manifest_rows(folder: Path, samples: list[Sample]) -> pd.DataFrame:
    """The manifest columns the check reads: image_path and image_sha256 (hex)."""
    digests = [hashlib.sha256((folder / s.path).read_bytes()).hexdigest() for s in samples]
    return pd.DataFrame({"image_path": [s.path for s in samples], "image_sha256": digests})


def in_memory_hashes(folder: Path, samples: list[Sample]) -> dict[str, float]:
    """Microseconds per image to hash bytes already read, SHA-256 and BLAKE2b."""
    data = [(folder / s.path).read_bytes() for s in samples[:4096]]
    out = {}
    for name in ("sha256", "blake2b"):
        start = time.perf_counter()
        for chunk in data:
            hashlib.new(name, chunk).digest()
        out[name] = (time.perf_counter() - start) / len(data) * 1e6
    return out


def measure(folder: Path, samples: list[Sample], repeats: int) -> dict[str, float]:
    """Median seconds of the check on 1 and DIGEST_THREADS threads and of one epoch's data."""
    rows = manifest_rows(folder, samples)
    train_set = TrainSet(samples, folder, DataConfig())
    augmentations = train_set.augmentations(0)

    def epoch() -> None:
        for index, augmentation in enumerate(augmentations):
            train_set.item(index, augmentation)

    def check(threads: int):
        def run() -> None:
            changed = image_mismatches(rows, samples, folder, threads=threads)
            assert not changed, changed[:3]

        return run

    runs = {
        "check, 1 thread": check(1),
        f"check, {DIGEST_THREADS} threads": check(DIGEST_THREADS),
        "epoch data, 1 process": epoch,
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=MARKET1501_IMAGES)
    parser.add_argument("--repeats", type=int, default=3, help="passes; the median is reported")
    parser.add_argument("--out", type=Path, default=None, help="folder for the images (kept)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    folder = args.out or Path(tempfile.mkdtemp(prefix="daaf-digests-"))
    try:
        samples = make_images(folder, args.images)
        sizes = [(folder / s.path).stat().st_size for s in samples]
        hashes = in_memory_hashes(folder, samples)
        seconds = measure(folder, samples, args.repeats)
    finally:
        if args.out is None:
            shutil.rmtree(folder)
    epoch = seconds["epoch data, 1 process"]
    mean_kib = np.mean(sizes) / 1024
    print(f"{len(samples)} JPEGs, mean {mean_kib:.1f} KiB, median of {args.repeats} passes")
    print(f"{'':<26}{'seconds':>9}{'us/image':>10}{'vs epoch':>10}")
    for name, value in seconds.items():
        per_image = value / len(samples) * 1e6
        print(f"{name:<26}{value:>9.2f}{per_image:>10.1f}{value / epoch:>10.3f}")
    sha256, blake2b = hashes["sha256"], hashes["blake2b"]
    print(f"hashing bytes in memory, us/image: sha256 {sha256:.1f}, blake2b {blake2b:.1f}")


if __name__ == "__main__":
    main()
