"""A tiny Market-1501-layout dataset that a fast, deterministic fake labeler reads."""

import functools
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from daaf.labeling.base import LabelResult

# The tiny dataset's files; 128x64 images like Market-1501.
FILES = [
    "bounding_box_train/0002_c1s1_000451_03.jpg",
    "bounding_box_train/0002_c2s1_000301_01.jpg",
    "bounding_box_train/0007_c1s1_000551_01.jpg",
    "query/0002_c3s1_000551_01.jpg",
    "bounding_box_test/0002_c4s1_000601_01.jpg",
    "bounding_box_test/0007_c5s1_000651_01.jpg",
]


def bright_block(rng, colors):
    """A 128x64 image: the person is a bright rectangle on dark noise, what FakeLabeler finds."""
    image = rng.integers(0, 100, (128, 64, 3), dtype=np.uint8)
    cv2.rectangle(image, (16, 16), (48, 112), (200, 200, 200), -1)
    mask = (image.mean(axis=2) > 150).astype(np.float32)
    return image, mask, np.zeros((17, 3), np.float32)


class FakeLabeler:
    """Deterministic labels computed from the pixels: the bright rectangle is the person."""

    name = "fake"

    def __init__(self, delay: float = 0.0):
        self.delay = delay
        self.batches: list[int] = []

    def describe(self) -> dict:
        return {"backend": "fake", "weights": "none"}

    def to(self, device):
        return self

    def label(self, images):
        self.batches.append(len(images))
        time.sleep(self.delay)
        results = []
        for image in images:
            mask = (image.mean(axis=2) > 150).astype(np.float32)
            ys, xs = np.nonzero(mask)
            keypoints = np.zeros((17, 3), np.float32)
            keypoints[:, 0], keypoints[:, 1], keypoints[:, 2] = (
                xs.mean(),
                np.linspace(ys.min(), ys.max(), 17),
                0.8,
            )
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
            results.append(LabelResult(mask, keypoints, box, float(image.mean() / 255)))
        return results


@pytest.fixture
def make_market_dataset(dataset_maker):
    """``make_market_dataset(root, corrupt=())``: FILES drawn by ``bright_block``, no store."""
    return functools.partial(dataset_maker, names=FILES, picture=bright_block, annotations=False)


@pytest.fixture
def market(tmp_path, make_market_dataset) -> Path:
    return make_market_dataset(tmp_path / "data")


@pytest.fixture
def fake_labeler():
    return FakeLabeler


def label_args(root: Path, out: Path, *extra: str, dataset: str = "market1501") -> list[str]:
    """``daaf label`` arguments labelling ``dataset`` at ``root`` into ``out``, then ``extra``."""
    return ["label", "--dataset", dataset, "--root", str(root), "--out", str(out), *extra]
