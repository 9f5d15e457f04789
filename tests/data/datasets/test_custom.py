"""The custom dataset: a CSV file or a folder tree."""

import pytest

from daaf.data.datasets import Sample, build_dataset
from daaf.errors import DaafError

CSV = """path,pid,camid,split,note
images/a.jpg,10,0,train,
images/b.jpg,10,2,train,
images/c.jpg,3,1,train,
images/d.jpg,10,1,query,
images/e.jpg,10,0,gallery,
images/f.jpg,4,3,gallery,
images/g.jpg,4,0,validation,
images/h.jpg,x,0,train,
images/missing.jpg,4,0,gallery,
images/readme.txt,4,0,gallery,
../outside.jpg,4,0,gallery,
"""


def test_custom_csv(tmp_path, write_images):
    write_images(tmp_path / "images", [f"{c}.jpg" for c in "abcdefgh"])
    (tmp_path / "dataset.csv").write_text(CSV)
    dataset = build_dataset("custom", tmp_path)
    assert dataset.image_dir == tmp_path
    assert dataset.train == [
        Sample("images/a.jpg", 1, 0),
        Sample("images/b.jpg", 1, 2),
        Sample("images/c.jpg", 0, 1),
    ]
    assert dataset.query == [Sample("images/d.jpg", 10, 1)]
    assert dataset.gallery == [Sample("images/e.jpg", 10, 0), Sample("images/f.jpg", 4, 3)]
    assert dataset.skipped == {
        "split is not train, query or gallery": ["line 8: images/g.jpg"],
        "pid or camid is not a non-negative integer": ["line 9: images/h.jpg"],
        "file does not exist": ["line 10: images/missing.jpg"],
        "not an image file": ["line 11: images/readme.txt"],
        "path is not relative to ROOT": ["line 12: ../outside.jpg"],
    }


def test_custom_csv_errors(tmp_path):
    (tmp_path / "dataset.csv").write_text("file,id,split\nimages/a.jpg,1,train\n")
    with pytest.raises(
        DaafError,
        match=r"dataset.csv: expected the columns path,pid,camid,split; missing path, pid, camid",
    ):
        build_dataset("custom", tmp_path)
    (tmp_path / "dataset.csv").write_text("path,pid,camid,split\n")
    with pytest.raises(DaafError, match="dataset.csv: no usable query row"):
        build_dataset("custom", tmp_path)


def test_custom_folder_tree(tmp_path, write_images):
    write_images(tmp_path / "train" / "0007", ["0_a.jpg", "1_b.png"])
    write_images(tmp_path / "train" / "12", ["2_c.jpg"])
    write_images(tmp_path / "train" / "bob", ["0_d.jpg"])  # pid folder is not an integer
    write_images(tmp_path / "train", ["0_loose.jpg"])  # not inside a pid folder
    write_images(tmp_path / "query" / "0007", ["3_q.jpg", "nocam.jpg"])
    write_images(tmp_path / "gallery" / "0007", ["4_g.jpg"])
    write_images(tmp_path / "gallery" / "0", ["5_distractor.jpg"])
    write_images(tmp_path / "unused" / "0001", ["0_x.jpg"])  # not a split folder
    dataset = build_dataset("custom", tmp_path)
    assert dataset.train == [
        Sample("train/0007/0_a.jpg", 0, 0),
        Sample("train/0007/1_b.png", 0, 1),
        Sample("train/12/2_c.jpg", 1, 2),
    ]
    assert dataset.query == [Sample("query/0007/3_q.jpg", 7, 3)]
    assert dataset.gallery == [
        Sample("gallery/0/5_distractor.jpg", 0, 5),
        Sample("gallery/0007/4_g.jpg", 7, 4),
    ]
    assert dataset.skipped == {
        "image not inside a <pid> folder": ["train/0_loose.jpg"],
        "pid folder name is not an integer": ["train/bob/0_d.jpg"],
        "file name does not start with <camid>_": ["query/0007/nocam.jpg"],
    }


def test_custom_tree_without_train_and_empty_split(tmp_path, write_images):
    write_images(tmp_path / "query" / "1", ["0_q.jpg"])
    write_images(tmp_path / "gallery" / "1", ["1_g.jpg"])
    dataset = build_dataset("custom", tmp_path)
    assert dataset.summary()["train"] == {"images": 0, "ids": 0, "cameras": 0}
    assert len(dataset.gallery) == 1
    (tmp_path / "train").mkdir()
    with pytest.raises(DaafError, match=rf"{tmp_path / 'train'}: no images found"):
        build_dataset("custom", tmp_path)


def test_custom_wrong_layout(tmp_path, write_images):
    write_images(tmp_path / "probe", ["0_a.jpg"])
    with pytest.raises(
        DaafError,
        match=r"expected dataset.csv in ROOT itself; or query, gallery in ROOT itself; found in .*: probe/",
    ):
        build_dataset("custom", tmp_path)
