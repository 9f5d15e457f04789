"""Partial-REID (Zheng et al. 2015) and Partial-iLIDS (He et al. 2018): test-only partial-body sets.

Query = the partial-body crops, gallery = the whole-body images, no training split. Every
query image gets camera 0 and every gallery image camera 1, so that the Market-style protocol
(which removes same-camera matches) keeps all of them.

- Partial-REID: ``ROOT/Partial-REID_Dataset/{partial_body_images,whole_body_images}/001_01.jpg``
  (pid 1; the ``occluded_body_images`` folder is not used).
- Partial-iLIDS: ``ROOT/Partial_iLIDS/{Probe,Gallery}/001.jpg`` or
  ``ROOT/Partial_iLIDS/{partial_body_images,whole_body_images}/001.jpg``.
"""

from __future__ import annotations

import re
from pathlib import Path

from daaf.data.datasets.base import ReIDDataset, register_dataset
from daaf.data.datasets.folders import Layout, find_layout, parse_split_folder

QUERY_CAMID, GALLERY_CAMID = 0, 1
NAME_PATTERN = re.compile(r"^(\d+)(?:_\d+)?$")

PARTIAL_REID = Layout(("Partial-REID_Dataset",), ("partial_body_images", "whole_body_images"))
PARTIAL_ILIDS = (
    Layout(("Partial_iLIDS",), ("Probe", "Gallery")),
    Layout(("Partial_iLIDS",), ("partial_body_images", "whole_body_images")),
)


def parse_partial_name(stem: str, camid: int) -> tuple[int, int] | None:
    """``001_01`` or ``001`` -> pid 1 with the given camera; None if the name does not parse."""
    match = NAME_PATTERN.match(stem)
    return None if match is None else (int(match.group(1)), camid)


def load_partial(root: Path, name: str, *layouts: Layout) -> ReIDDataset:
    """Query from the layout's first folder (camera 0), gallery from its second (camera 1)."""
    image_dir, layout = find_layout(root, *layouts)
    query_folder, gallery_folder = layout.entries
    skipped: dict[str, list[str]] = {}
    query = parse_split_folder(
        image_dir, query_folder, lambda s: parse_partial_name(s, QUERY_CAMID), skipped
    )
    gallery = parse_split_folder(
        image_dir, gallery_folder, lambda s: parse_partial_name(s, GALLERY_CAMID), skipped
    )
    return ReIDDataset(name, image_dir, [], query, gallery, skipped)


@register_dataset(
    "partial_reid",
    "Partial-REID_Dataset/partial_body_images/001_01.jpg  (query)\n"
    "Partial-REID_Dataset/whole_body_images/001_01.jpg  (gallery; test only)",
)
def load_partial_reid(root: Path) -> ReIDDataset:
    return load_partial(root, "partial_reid", PARTIAL_REID)


@register_dataset(
    "partial_ilids",
    "Partial_iLIDS/Probe/001.jpg  (query), Partial_iLIDS/Gallery/001.jpg  (gallery; test only)\n"
    "or Partial_iLIDS/{partial_body_images,whole_body_images}/001.jpg",
)
def load_partial_ilids(root: Path) -> ReIDDataset:
    return load_partial(root, "partial_ilids", *PARTIAL_ILIDS)
