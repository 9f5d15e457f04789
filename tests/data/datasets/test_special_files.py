"""A dataset's list, CSV or MATLAB file that is a FIFO or a device is refused in one line naming
it, without being opened (reading a FIFO waits for a writer for ever); images listed there that
are no regular files are skipped and reported, as missing ones are."""

import os
from pathlib import Path

import pytest

from daaf.data.datasets import build_dataset
from daaf.errors import DaafError
from tests.data.test_images import finishes

FIFO = "a FIFO (named pipe), not a regular file"


def refused(name: str, root: Path) -> str:
    with pytest.raises(DaafError) as info:
        finishes(lambda: build_dataset(name, root))
    return str(info.value)


def test_msmt17_list_files(tmp_path, write_images):
    folder = tmp_path / "MSMT17_V1"
    write_images(
        folder / "train" / "0000",
        ["0000_000_01_0303morning_0015_0.jpg", "0000_001_01_0303morning_0016_0.jpg"],
    )
    write_images(folder / "test" / "0001", ["0001_000_02_0303morning_0016_0.jpg"])
    for split in ("train", "val", "query", "gallery"):
        (folder / f"list_{split}.txt").write_text("")
    os.mkfifo(folder / "test" / "0001" / "0001_001_03_0303morning_0017_0.jpg")
    (folder / "list_train.txt").write_text("0000/0000_000_01_0303morning_0015_0.jpg 0\n")
    (folder / "list_query.txt").write_text("0001/0001_000_02_0303morning_0016_0.jpg 1\n")
    (folder / "list_gallery.txt").write_text(
        "0001/0001_001_03_0303morning_0017_0.jpg 1\n0001/0001_000_02_0303morning_0016_0.jpg 1\n"
    )
    (folder / "list_val.txt").unlink()
    os.mkfifo(folder / "list_val.txt")
    assert refused("msmt17", tmp_path) == f"{folder / 'list_val.txt'}: {FIFO}"
    (folder / "list_val.txt").unlink()
    (folder / "list_val.txt").write_bytes(b"0000/caf\xe9.jpg 0\n")
    assert refused("msmt17", tmp_path) == (
        f"{folder / 'list_val.txt'}: not a UTF-8 text list file (invalid continuation byte)"
    )
    (folder / "list_val.txt").write_text("0000/0000_001_01_0303morning_0016_0.jpg 0\n")
    dataset = build_dataset("msmt17", tmp_path)
    assert [s.path for s in dataset.gallery] == ["test/0001/0001_000_02_0303morning_0016_0.jpg"]
    assert dataset.skipped[f"listed in list_gallery.txt but {FIFO}"] == [
        "test/0001/0001_001_03_0303morning_0017_0.jpg"
    ]


def test_custom_csv(tmp_path, write_images):
    write_images(tmp_path / "img", ["a.jpg", "b.jpg"])
    (tmp_path / "img" / "zero.jpg").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "dataset.csv")
    assert refused("custom", tmp_path) == f"{tmp_path / 'dataset.csv'}: {FIFO}"
    (tmp_path / "dataset.csv").unlink()
    (tmp_path / "dataset.csv").write_text(
        "path,pid,camid,split\nimg/a.jpg,1,0,query\nimg/b.jpg,1,1,gallery\n"
        "img/zero.jpg,2,1,gallery\nimg/nul\0.jpg,2,0,gallery\n"
    )
    dataset = build_dataset("custom", tmp_path)
    assert [s.path for s in dataset.gallery] == ["img/b.jpg"]
    assert dataset.skipped["a character device, not a regular file"] == ["line 4: img/zero.jpg"]
    assert dataset.skipped["cannot be read (embedded null byte)"] == ["line 5: img/nul\0.jpg"]


def test_cuhk03_matlab_files(tmp_path):
    folder = tmp_path / "cuhk03"
    (folder / "cuhk03_release").mkdir(parents=True)
    os.mkfifo(folder / "cuhk03_release" / "cuhk-03.mat")
    os.mkfifo(folder / "cuhk03_new_protocol_config_labeled.mat")
    assert refused("cuhk03_labeled", tmp_path) == (
        f"{folder / 'cuhk03_release' / 'cuhk-03.mat'}: {FIFO}"
    )
    assert not (folder / "images_labeled.partial").exists()
    (folder / "images_labeled").mkdir()
    assert refused("cuhk03_labeled", tmp_path) == (
        f"{folder / 'cuhk03_new_protocol_config_labeled.mat'}: {FIFO}"
    )
