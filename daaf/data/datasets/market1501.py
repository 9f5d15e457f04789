"""Market-1501 (Zheng et al. 2015), and the synthetic pedestrians ``daaf synth`` writes in its layout.

Layout: ``ROOT/Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}/`` (ROOT may
also be the ``Market-1501-v15.09.15`` folder itself). File ``0002_c1s1_000451_03.jpg`` is
pid 2, camera 1 (0 in memory). pid -1 marks junk (dropped everywhere); pid 0 marks
distractors (kept in the gallery as negatives). Other folders (gt_bbox, gt_query) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from daaf.data.datasets.base import ReIDDataset, register_dataset
from daaf.data.datasets.folders import (
    Layout,
    camera_index,
    find_layout,
    parse_split_folder,
    relabel,
)

MARKET_DIR = "Market-1501-v15.09.15"
SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
NAME_PATTERN = re.compile(r"^(-1|\d+)_c(\d+)s\d+_\d+_\d+$")  # -1: junk; -5 does not parse

LAYOUT = f"{MARKET_DIR}/{{bounding_box_train,query,bounding_box_test}}/0002_c1s1_000451_03.jpg"


def parse_market_name(stem: str) -> tuple[int, int] | None:
    """``0002_c1s1_000451_03`` -> (2, 0): pid and 0-based camera; None if the name does not
    parse, ValueError for camera c0."""
    match = NAME_PATTERN.match(stem)
    if match is None:
        return None
    return int(match.group(1)), camera_index(match.group(2))


def load_market_layout(
    root: Path,
    name: str,
    dataset_dirs: tuple[str, ...],
    parse_name: Callable[[str], tuple[int, int] | None] = parse_market_name,
) -> ReIDDataset:
    """Any dataset in Market-1501's three folders (Market-1501, DukeMTMC-reID, CUHK03-NP, ...).

    ``parse_name`` maps a file stem to ``(pid, 0-based camid)``. Junk (pid -1) is dropped
    everywhere; distractors (pid 0) stay in the gallery only.
    """
    image_dir, _ = find_layout(root, Layout(dataset_dirs, tuple(SPLIT_FOLDERS.values())))
    skipped: dict[str, list[str]] = {}
    splits = {
        split: parse_split_folder(image_dir, folder, parse_name, skipped)
        for split, folder in SPLIT_FOLDERS.items()
    }
    train = relabel([s for s in splits["train"] if s.pid > 0])
    query = [s for s in splits["query"] if s.pid > 0]
    gallery = [s for s in splits["gallery"] if s.pid >= 0]
    return ReIDDataset(name, image_dir, train, query, gallery, skipped)


@register_dataset("market1501", LAYOUT)
def load_market1501(root: Path) -> ReIDDataset:
    return load_market_layout(root, "market1501", (MARKET_DIR,))


@register_dataset("synthetic", f"{LAYOUT}  (what `daaf synth --out ROOT` writes)")
def load_synthetic(root: Path) -> ReIDDataset:
    return load_market_layout(root, "synthetic", (MARKET_DIR,))
