"""Random-access reads of (mask, keypoints) by image path: annotation store vs one .npz per image.

Writes N synthetic person masks (soft ellipses, 256x128) with keypoints both as an annotation
store (shards of 4096) and as one ``np.savez_compressed`` file per image (the layout other
projects use), then reads R random images one at a time, single process, from each, in the
same run. Both layouts were just written, so both are read from the OS page cache.

    python benchmarks/annotation_store.py [--n 12000] [--reads 5000] [--out DIR]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from daaf.data.annotations import AnnotationStore, AnnotationWriter, ImageAnnotation

MASK_SIZE = (256, 128)
SHARD_SIZE = 4096


def make_record(index: int, rng: np.random.Generator) -> ImageAnnotation:
    """A soft person-shaped mask (head, torso, legs) and 17 keypoints, varied per image."""
    height, width = MASK_SIZE
    canvas = np.zeros(MASK_SIZE, np.float32)
    cx, top = int(rng.integers(50, 78)), int(rng.integers(5, 30))
    cv2.circle(canvas, (cx, top + 15), int(rng.integers(10, 16)), 1.0, -1)
    cv2.ellipse(canvas, (cx, top + 80), (int(rng.integers(22, 34)), 50), 0, 0, 360, 1.0, -1)
    for dx in (-12, 12):
        cv2.line(canvas, (cx, top + 120), (cx + dx + int(rng.integers(-8, 8)), height - 5), 1.0, 14)
    mask = np.rint(cv2.GaussianBlur(canvas, (7, 7), 0) * 255).astype(np.uint8)
    keypoints = np.stack(
        [rng.uniform(0, 64, 17), rng.uniform(0, 128, 17), rng.uniform(0, 1, 17)], axis=1
    ).astype(np.float32)
    return ImageAnnotation(
        image_path=f"bounding_box_train/{index // 20:04d}_c1s1_{index:06d}_01.jpg",
        split="train",
        pid=index // 20,
        camid=0,
        image_size=(128, 64),
        mask=mask,
        keypoints=keypoints,
        person_box=np.array([8, 4, 56, 124], np.float32),
        person_score=0.9,
        status=0,
    )


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12000, help="images written (36000 = Market-ish)")
    parser.add_argument("--reads", type=int, default=5000, help="random reads timed per layout")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()

    work = Path(args.out or tempfile.mkdtemp(prefix="daaf-bench-"))
    store_dir, npz_dir = work / "store", work / "npz"
    npz_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    records = [make_record(i, rng) for i in range(args.n)]

    start = time.perf_counter()
    writer = AnnotationWriter(store_dir, "synthetic", {"backend": "benchmark"}, mask_size=MASK_SIZE)
    for index, first in enumerate(range(0, args.n, SHARD_SIZE)):
        writer.write_shard("train", index, records[first : first + SHARD_SIZE])
    writer.write_manifest()
    store_write = time.perf_counter() - start

    start = time.perf_counter()
    npz_files = {}
    for r in records:
        path = npz_dir / (Path(r.image_path).stem + ".npz")
        np.savez_compressed(path, mask=r.mask, keypoints=r.keypoints)
        npz_files[r.image_path] = path
    npz_write = time.perf_counter() - start

    order = rng.integers(0, args.n, args.reads)
    paths = [records[i].image_path for i in order]

    store = AnnotationStore(store_dir)
    start = time.perf_counter()
    for path in paths:
        mask, keypoints = store.masks([path])[0], store.keypoints([path])[0]
    store_read = time.perf_counter() - start
    np.testing.assert_array_equal(mask, records[order[-1]].mask)
    np.testing.assert_array_equal(keypoints, records[order[-1]].keypoints)

    start = time.perf_counter()
    for path in paths:
        with np.load(npz_files[path]) as z:
            mask, keypoints = z["mask"], z["keypoints"]
    npz_read = time.perf_counter() - start
    np.testing.assert_array_equal(mask, records[order[-1]].mask)
    np.testing.assert_array_equal(keypoints, records[order[-1]].keypoints)

    batch = 64
    start = time.perf_counter()
    for first in range(0, len(paths), batch):
        store.masks(paths[first : first + batch]), store.keypoints(paths[first : first + batch])
    store_bulk = time.perf_counter() - start
    store.close()

    rows = [
        ("annotation store, one path per call", store_read, store_write, folder_bytes(store_dir)),
        (f"annotation store, {batch} paths per call", store_bulk, None, None),
        ("one .npz per image (reference)", npz_read, npz_write, folder_bytes(npz_dir)),
    ]
    print(f"{args.n} images, masks {MASK_SIZE[0]}x{MASK_SIZE[1]}, {args.reads} random reads")
    print(f"{'layout':<40} {'reads/s':>9} {'vs npz':>7} {'write s':>8} {'bytes/img':>10}")
    for name, seconds, write, size in rows:
        print(
            f"{name:<40} {args.reads / seconds:>9.0f} {npz_read / seconds:>6.1f}x "
            f"{'' if write is None else f'{write:.1f}':>8} "
            f"{'' if size is None else f'{size / args.n:.0f}':>10}"
        )
    if args.out is None:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
