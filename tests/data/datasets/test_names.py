"""File names a loader cannot keep: ids the annotation store cannot hold and camera 0 are refused
when the dataset is loaded (before any labelling), naming the file; entries named like images
that are no files (folders, link loops) are skipped and reported, never silently."""

import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from daaf.data.annotations.schema import DATASET_DTYPES
from daaf.data.datasets import ReIDDataset, Sample, build_dataset
from daaf.data.datasets.base import ID_DTYPES
from daaf.data.datasets.folders import NAME_NOT_UTF8, NOT_A_FILE
from daaf.errors import DaafError

from .conftest import MARKET_GALLERY, MARKET_QUERY, MARKET_TRAIN

MARKET = "Market-1501-v15.09.15"


@pytest.fixture
def market(tmp_path, write_images):
    """A Market-1501 tree; returns ``add(split_folder, name)`` writing one more image."""
    write_images(tmp_path / MARKET / "bounding_box_train", MARKET_TRAIN)
    write_images(tmp_path / MARKET / "query", MARKET_QUERY)
    write_images(tmp_path / MARKET / "bounding_box_test", MARKET_GALLERY)
    return lambda folder, name: write_images(tmp_path / MARKET / folder, [name]) / name


@pytest.mark.parametrize(
    ("folder", "name", "message"),
    [
        (
            "query",
            "9999999999_c1s1_000001_00.jpg",
            "pid 9999999999 is out of range: the annotation store keeps pids as int32 "
            "(-2147483648 to 2147483647); rename the file",
        ),
        ("bounding_box_train", "9999999999_c1s1_000001_00.jpg", "pid 9999999999 is out of range"),
        (
            "bounding_box_test",
            "0002_c99999s1_000001_00.jpg",
            "camid 99998 is out of range: the annotation store keeps camids as int16",
        ),
        ("query", "0002_c0s1_000001_00.jpg", "camera c0: this dataset numbers its cameras from 1"),
    ],
)
def test_names_that_do_not_fit_are_refused_naming_the_file(
    tmp_path, market, folder, name, message, cli
):
    path = market(folder, name)
    with pytest.raises(DaafError, match=f"^{re.escape(f'{path}: {message}')}"):
        build_dataset("market1501", tmp_path)
    result = cli("datasets", "check", "market1501", "--root", tmp_path, ok=False)
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {path}: {message}")
    assert len(result.output.splitlines()) == 1


@pytest.mark.parametrize("name", ["dukemtmc", "occluded_duke"])
def test_duke_camera_0_is_refused(tmp_path, write_images, name):
    folder = {"dukemtmc": "DukeMTMC-reID", "occluded_duke": "Occluded_Duke"}[name]
    write_images(tmp_path / folder / "bounding_box_train", ["0001_c2_f0046182.jpg"])
    write_images(tmp_path / folder / "query", ["0003_c0_f0044158.jpg"])
    write_images(tmp_path / folder / "bounding_box_test", ["0003_c5_f0045731.jpg"])
    with pytest.raises(DaafError, match=r"query/0003_c0_f0044158.jpg: camera c0: this dataset"):
        build_dataset(name, tmp_path)


def test_any_loader_s_ids_are_checked():
    """A registered loader (or MSMT17's list files, or a custom CSV) goes through the same check."""
    with pytest.raises(DaafError, match=r"^/d/q/a.jpg: pid 2147483648 is out of range"):
        ReIDDataset("mine", Path("/d"), [], [Sample("q/a.jpg", 2**31, 0)], [])
    assert DATASET_DTYPES["pid"] == ID_DTYPES["pid"] == np.dtype(np.int32).str
    assert DATASET_DTYPES["camid"] == ID_DTYPES["camid"] == np.dtype(np.int16).str


def test_folders_and_link_loops_named_like_images_are_reported(tmp_path, market, caplog, cli):
    train = tmp_path / MARKET / "bounding_box_train"
    (train / "0002_c1s1_009999_00.jpg").mkdir()
    os.symlink("0003_c1s1_000002_00.jpg", train / "0003_c1s1_000001_00.jpg")
    os.symlink("0003_c1s1_000001_00.jpg", train / "0003_c1s1_000002_00.jpg")
    os.symlink("missing.jpg", tmp_path / MARKET / "query" / "0007_c2s1_000001_00.jpg")
    os.mkfifo(train / "0004_c1s1_000009_00.jpg")  # never opened: reading it would wait for ever
    odd = os.fsdecode(bytes(train) + b"/0005_c1s1_00000\xff_00.jpg")
    shutil.copy(train / "0002_c1s1_000451_03.jpg", odd)
    reason = NOT_A_FILE
    with caplog.at_level(logging.WARNING):
        dataset = build_dataset("market1501", tmp_path)
    assert dataset.skipped[reason] == [
        "bounding_box_train/0002_c1s1_009999_00.jpg",
        "bounding_box_train/0003_c1s1_000001_00.jpg",
        "bounding_box_train/0003_c1s1_000002_00.jpg",
        "bounding_box_train/0004_c1s1_000009_00.jpg",
        "query/0007_c2s1_000001_00.jpg",
    ]
    assert dataset.skipped[NAME_NOT_UTF8] == ["bounding_box_train/0005_c1s1_00000\\xff_00.jpg"]
    assert len(dataset.train) == 4  # the readable images are kept
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"warning: market1501: skipped 7 file(s) under {tmp_path / MARKET}: ")
    assert f"{reason}: 5 (e.g. bounding_box_train/0002_c1s1_009999_00.jpg, " in warning
    assert "file name does not parse: 1 (e.g. bounding_box_train/IMG_1234.jpg)" in warning
    assert warning.endswith(f"(`daaf datasets check market1501 --root {tmp_path}` lists them)")
    caplog.clear()
    result = cli("datasets", "check", "market1501", "--root", tmp_path)
    assert "skipped 7 files:" in result.output
    assert f"  {reason}: 5 (e.g. bounding_box_train/0002_c1s1_009999_00.jpg, " in result.output
    assert not caplog.records  # the command lists them; no second report


def test_custom_tree_reports_folders_named_like_images(tmp_path, write_images):
    write_images(tmp_path / "query" / "1", ["0_a.jpg"])
    write_images(tmp_path / "gallery" / "1", ["1_a.jpg"])
    (tmp_path / "gallery" / "1" / "1_b.jpg").mkdir()
    dataset = build_dataset("custom", tmp_path)
    assert list(dataset.skipped.values()) == [["gallery/1/1_b.jpg"]]
