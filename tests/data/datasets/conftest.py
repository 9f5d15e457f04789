"""Tiny dataset trees with each dataset's real file naming; images are 8x4 JPEGs."""

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pytest

# Files every split folder also gets: not images, so ignored without being counted.
NOT_IMAGES = ("Thumbs.db", "readme.txt")


def grey(rng, colors):
    """An 8x4 mid-grey image: the layout tests read names, not pixels."""
    return np.full((8, 4, 3), 127, np.uint8), np.zeros((8, 4), np.float32), np.zeros((17, 3))


@pytest.fixture
def write_images(dataset_maker) -> Callable[[Path, Iterable[str]], Path]:
    """``write_images(folder, names)`` writes a tiny image per name (plus non-image traps)."""

    def write(folder: Path, names: Iterable[str]) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        dataset_maker(folder, folder="", names=list(names), picture=grey, annotations=False)
        for name in NOT_IMAGES:
            (folder / name).write_text("not an image")
        return folder

    return write


MARKET_TRAIN = [
    "0002_c1s1_000451_03.jpg",
    "0002_c2s1_000551_01.jpg",
    "0007_c3s1_000101_01.jpg",
    "0010_c6s2_000001_01.jpg",
    "IMG_1234.jpg",  # misnamed: skipped and counted
]
MARKET_QUERY = ["0002_c2s1_000301_00.jpg", "0007_c1s1_000011_00.jpg"]
MARKET_GALLERY = [
    "0002_c3s1_000001_01.jpg",
    "0007_c4s1_000001_01.jpg",
    "0000_c1s1_000001_01.jpg",  # distractor: kept
    "-1_c1s1_000002_01.jpg",  # junk: dropped
    "-1_c5s1_000003_01.jpg",  # junk: dropped
]


@pytest.fixture
def market_root(tmp_path, write_images) -> Path:
    """ROOT/Market-1501-v15.09.15 with junk, a distractor, a misnamed file and a non-split folder."""
    market = tmp_path / "Market-1501-v15.09.15"
    write_images(market / "bounding_box_train", MARKET_TRAIN)
    write_images(market / "query", MARKET_QUERY)
    write_images(market / "bounding_box_test", MARKET_GALLERY)
    write_images(market / "gt_bbox", ["0002_c1s1_000451_03.jpg"])  # not a split
    (market / "bounding_box_train" / "nested").mkdir()  # a folder inside a split
    (market / "readme.txt").write_text("Market-1501")
    return tmp_path
