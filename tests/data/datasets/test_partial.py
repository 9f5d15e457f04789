"""Partial-REID and Partial-iLIDS: test-only, query camera 0, gallery camera 1."""

import pytest

from daaf.data.datasets import Sample, build_dataset
from daaf.errors import DaafError


def test_partial_reid(tmp_path, write_images):
    base = tmp_path / "Partial-REID_Dataset"
    write_images(base / "partial_body_images", ["001_01.jpg", "001_02.jpg", "060_05.jpg", "x.jpg"])
    write_images(base / "whole_body_images", ["001_01.jpg", "060_01.jpg"])
    write_images(base / "occluded_body_images", ["002_01.jpg"])  # not used
    dataset = build_dataset("partial_reid", tmp_path)
    assert dataset.image_dir == base
    assert dataset.train == []
    assert dataset.query == [
        Sample("partial_body_images/001_01.jpg", 1, 0),
        Sample("partial_body_images/001_02.jpg", 1, 0),
        Sample("partial_body_images/060_05.jpg", 60, 0),
    ]
    assert dataset.gallery == [
        Sample("whole_body_images/001_01.jpg", 1, 1),
        Sample("whole_body_images/060_01.jpg", 60, 1),
    ]
    assert dataset.skipped == {"file name does not parse": ["partial_body_images/x.jpg"]}
    assert dataset.summary()["train"] == {"images": 0, "ids": 0, "cameras": 0}
    assert build_dataset("partial_reid", base).query == dataset.query


@pytest.mark.parametrize(
    ("query_dir", "gallery_dir"),
    [("Probe", "Gallery"), ("partial_body_images", "whole_body_images")],
)
def test_partial_ilids(tmp_path, write_images, query_dir, gallery_dir):
    base = tmp_path / "Partial_iLIDS"
    write_images(base / query_dir, ["001.jpg", "119.jpg"])
    write_images(base / gallery_dir, ["001.jpg", "119.jpg"])
    dataset = build_dataset("partial_ilids", tmp_path)
    assert dataset.query == [
        Sample(f"{query_dir}/001.jpg", 1, 0),
        Sample(f"{query_dir}/119.jpg", 119, 0),
    ]
    assert dataset.gallery == [
        Sample(f"{gallery_dir}/001.jpg", 1, 1),
        Sample(f"{gallery_dir}/119.jpg", 119, 1),
    ]
    assert dataset.skipped == {}


def test_partial_ilids_wrong_layout(tmp_path, write_images):
    write_images(tmp_path / "Partial_iLIDS" / "query", ["001.jpg"])
    with pytest.raises(
        DaafError,
        match="Probe, Gallery in ROOT/Partial_iLIDS or ROOT itself; or partial_body_images",
    ):
        build_dataset("partial_ilids", tmp_path)
