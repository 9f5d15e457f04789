"""Images/s of the torchvision labeler (random weights) batched vs one image at a time, same run.

Random weights keep every detection (up to 10 per image), so the ROI heads do at least as much
work as on real crops: an upper bound on the per-image cost. Prints the projected time for all
36,036 Market-1501 images (train 12,936 + query 3,368 + gallery 19,732 files).

    OMP_NUM_THREADS=2 python benchmarks/label_speed.py --images 16 --batch-size 8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from daaf.labeling.backends import build_labeler
from daaf.labeling.torchvision_backend import DEFAULT_MIN_SIZE

MARKET_IMAGES = 36_036


def images_per_second(labeler, images: list[np.ndarray], batch_size: int) -> float:
    labeler.label(images[:batch_size])  # warm-up: allocator, oneDNN kernels
    start = time.perf_counter()
    for i in range(0, len(images), batch_size):
        labeler.label(images[i : i + batch_size])
    return len(images) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--min-size", type=int, default=DEFAULT_MIN_SIZE)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    labeler = build_labeler("torchvision", weights="random", min_size=args.min_size).to(args.device)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (128, 64, 3), dtype=np.uint8) for _ in range(args.images)]
    rows = [(f"batch {b}", images_per_second(labeler, images, b)) for b in (1, args.batch_size)]

    print(f"torchvision labeler, random weights, 128x64 crops at min_size {args.min_size}, "
          f"{args.device}, {torch.get_num_threads()} threads, {args.images} images")  # fmt: skip
    print(f"{'mode':<10}{'images/s':>10}{'vs batch 1':>12}{'Market-1501 (36,036)':>24}")
    for name, rate in rows:
        hours = MARKET_IMAGES / rate / 3600
        print(f"{name:<10}{rate:>10.3f}{rate / rows[0][1]:>11.2f}x{hours:>21.1f} h")


if __name__ == "__main__":
    main()
