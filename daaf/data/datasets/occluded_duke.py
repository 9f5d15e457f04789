"""Occluded-DukeMTMC (Miao et al. 2019): DukeMTMC-reID images re-split so that queries are occluded.

Layout: ``ROOT/Occluded_Duke/{bounding_box_train,query,bounding_box_test}/`` with Duke file
names (``0001_c2_f0046182.jpg``).
"""

from __future__ import annotations

from pathlib import Path

from daaf.data.datasets.base import ReIDDataset, register_dataset
from daaf.data.datasets.dukemtmc import parse_duke_name
from daaf.data.datasets.market1501 import load_market_layout

OCCLUDED_DUKE_DIR = "Occluded_Duke"


@register_dataset(
    "occluded_duke",
    f"{OCCLUDED_DUKE_DIR}/{{bounding_box_train,query,bounding_box_test}}/0001_c2_f0046182.jpg",
)
def load_occluded_duke(root: Path) -> ReIDDataset:
    return load_market_layout(root, "occluded_duke", (OCCLUDED_DUKE_DIR,), parse_duke_name)
