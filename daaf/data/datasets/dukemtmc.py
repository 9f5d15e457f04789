"""DukeMTMC-reID (Ristani et al. 2016; Zheng et al. 2017): Market-1501's folders, Duke's file names.

Layout: ``ROOT/DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}/``; file
``0001_c2_f0046182.jpg`` is pid 1, camera 2 (1 in memory), 8 cameras.
"""

from __future__ import annotations

import re
from pathlib import Path

from daaf.data.datasets.base import ReIDDataset, register_dataset
from daaf.data.datasets.folders import camera_index
from daaf.data.datasets.market1501 import load_market_layout

DUKE_DIR = "DukeMTMC-reID"
NAME_PATTERN = re.compile(r"^(-1|\d+)_c(\d+)_f\d+$")


def parse_duke_name(stem: str) -> tuple[int, int] | None:
    """``0001_c2_f0046182`` -> (1, 1): pid and 0-based camera; None if the name does not parse,
    ValueError for camera c0."""
    match = NAME_PATTERN.match(stem)
    if match is None:
        return None
    return int(match.group(1)), camera_index(match.group(2))


@register_dataset(
    "dukemtmc", f"{DUKE_DIR}/{{bounding_box_train,query,bounding_box_test}}/0001_c2_f0046182.jpg"
)
def load_dukemtmc(root: Path) -> ReIDDataset:
    return load_market_layout(root, "dukemtmc", (DUKE_DIR,), parse_duke_name)
