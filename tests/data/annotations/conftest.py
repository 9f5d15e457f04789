"""Small annotation stores written with the real writer: records with every kind of status."""

from pathlib import Path

import numpy as np
import pytest

from daaf.data.annotations import AnnotationWriter, ImageAnnotation, empty_annotation, encode_mask
from daaf.data.datasets import ReIDDataset, Sample

MASK_SIZE = (32, 16)
CREATED = "2024-01-01T00:00:00Z"
# (split, path, pid, camid): Market-1501 names, 5 train, 2 query, 3 gallery images.
SAMPLES = [
    ("train", "bounding_box_train/0002_c1s1_000451_03.jpg", 0, 0),
    ("train", "bounding_box_train/0002_c2s1_000301_01.jpg", 0, 1),
    ("train", "bounding_box_train/0007_c1s1_000551_01.jpg", 1, 0),
    ("train", "bounding_box_train/0007_c3s1_000601_01.jpg", 1, 2),
    ("train", "bounding_box_train/0010_c1s1_000701_02.jpg", 2, 0),
    ("query", "query/0002_c3s1_000551_01.jpg", 2, 2),
    ("query", "query/0007_c2s1_000651_01.jpg", 7, 1),
    ("gallery", "bounding_box_test/0002_c4s1_000601_01.jpg", 2, 3),
    ("gallery", "bounding_box_test/0007_c5s1_000651_01.jpg", 7, 4),
    ("gallery", "bounding_box_test/0000_c6s1_000701_01.jpg", 0, 5),
]


def make_record(split, path, pid, camid, seed, mask_size=MASK_SIZE) -> ImageAnnotation:
    """A deterministic status-0 record; keypoint 3 is 'not found' (NaN, NaN, 0)."""
    rng = np.random.default_rng(seed)
    height, width = 128, 64
    probability = np.zeros((height, width), np.float32)
    probability[16 + seed : 112, 16:48] = rng.uniform(0.6, 1.0)
    keypoints = np.stack(
        [rng.uniform(0, width, 17), rng.uniform(0, height, 17), rng.uniform(0, 1, 17)], axis=1
    ).astype(np.float32)
    keypoints[3] = (np.nan, np.nan, 0.0)
    return ImageAnnotation(
        image_path=path,
        split=split,
        pid=pid,
        camid=camid,
        image_size=(height, width),
        mask=encode_mask(probability, mask_size),
        keypoints=keypoints,
        person_box=np.array([16, 16 + seed, 48, 112], np.float32),
        person_score=float(rng.uniform(0.5, 1.0)),
        status=0,
    )


def make_records() -> list[ImageAnnotation]:
    """One record per sample; train image 2 has no person (status 1), the last is unreadable (2)."""
    records = []
    for seed, (split, path, pid, camid) in enumerate(SAMPLES):
        if seed == 1:
            records.append(empty_annotation(path, split, pid, camid, (128, 64), 1, MASK_SIZE))
        elif seed == len(SAMPLES) - 1:
            records.append(empty_annotation(path, split, pid, camid, (0, 0), 2, MASK_SIZE))
        else:
            records.append(make_record(split, path, pid, camid, seed))
    return records


def write_store(store_dir: Path, records=None, shard_size=2, dataset="market1501", labeler=None):
    """Write ``records`` (default: make_records()) in shards of ``shard_size`` plus the manifest."""
    records = make_records() if records is None else records
    writer = AnnotationWriter(
        store_dir, dataset, labeler or {"backend": "test"}, mask_size=MASK_SIZE, created_utc=CREATED
    )
    for split in ("train", "query", "gallery"):
        mine = [r for r in records if r.split == split]
        for index, start in enumerate(range(0, len(mine), shard_size)):
            writer.write_shard(split, index, mine[start : start + shard_size])
    writer.write_manifest()
    return store_dir


def make_dataset(image_dir: Path = Path("unused")) -> ReIDDataset:
    """The ReIDDataset that SAMPLES describe."""
    splits = {"train": [], "query": [], "gallery": []}
    for split, path, pid, camid in SAMPLES:
        splits[split].append(Sample(path, pid, camid))
    return ReIDDataset("market1501", image_dir, **splits)


@pytest.fixture
def records():
    return make_records()


@pytest.fixture
def store(tmp_path):
    return write_store(tmp_path / "store")


@pytest.fixture
def helpers():
    """This module's helpers (a conftest cannot be imported under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(
        make_record=make_record,
        make_records=make_records,
        write_store=write_store,
        make_dataset=make_dataset,
        MASK_SIZE=MASK_SIZE,
        CREATED=CREATED,
        SAMPLES=SAMPLES,
    )
