"""MSMT17 V1 and V2 from their list files."""

import pytest

from daaf.data.datasets import Sample, build_dataset
from daaf.errors import DaafError

TRAIN = ["0000/0000_000_01_0303morning_0015_0.jpg", "0000/0000_001_15_0303morning_0016_1.jpg"]
VAL = ["0005/0005_002_03_0303noon_0101_0.jpg"]
QUERY = ["0001/0001_000_04_0303afternoon_0200_0.jpg"]
GALLERY = ["0001/0001_003_07_0303afternoon_0201_1.jpg", "3059/3059_004_02_0113morning_0300_0.jpg"]


def write_msmt17(root, write_images, version, train_dir, test_dir):
    base = root / version
    write_images(base / train_dir, TRAIN + VAL)
    write_images(base / test_dir, QUERY + GALLERY)
    lines = {
        "train": [f"{p} {int(p[:4])}" for p in TRAIN],
        "val": [f"{p} {int(p[:4])}" for p in VAL],
        "query": [f"{p} {int(p[:4])}" for p in QUERY] + ["bad line without pid"],
        "gallery": [f"{p} {int(p[:4])}" for p in GALLERY]
        + ["0002/0002_000_05_0303noon_0001_0.jpg 2"],
    }
    for split, split_lines in lines.items():
        (base / f"list_{split}.txt").write_text("\n".join(split_lines) + "\n")
    return base


@pytest.mark.parametrize(
    ("version", "train_dir", "test_dir"),
    [("MSMT17_V1", "train", "test"), ("MSMT17_V2", "mask_train_v2", "mask_test_v2")],
)
def test_msmt17_versions(tmp_path, write_images, version, train_dir, test_dir):
    base = write_msmt17(tmp_path, write_images, version, train_dir, test_dir)
    dataset = build_dataset("msmt17", tmp_path)
    assert dataset.image_dir == base
    # train + val lists, ids 0 and 5 relabelled to 0 and 1; camera = third field - 1.
    assert dataset.train == [
        Sample(f"{train_dir}/{TRAIN[0]}", 0, 0),
        Sample(f"{train_dir}/{TRAIN[1]}", 0, 14),
        Sample(f"{train_dir}/{VAL[0]}", 1, 2),
    ]
    assert dataset.query == [Sample(f"{test_dir}/{QUERY[0]}", 1, 3)]
    assert dataset.gallery == [
        Sample(f"{test_dir}/{GALLERY[0]}", 1, 6),
        Sample(f"{test_dir}/{GALLERY[1]}", 3059, 1),
    ]
    assert dataset.skipped == {
        "line of list_query.txt does not parse": ["bad line without pid"],
        "listed in list_gallery.txt but missing": [
            f"{test_dir}/0002/0002_000_05_0303noon_0001_0.jpg"
        ],
    }
    assert build_dataset("msmt17", base).gallery == dataset.gallery


def test_msmt17_without_lists(tmp_path, write_images):
    write_images(tmp_path / "MSMT17_V1" / "train", TRAIN)
    write_images(tmp_path / "MSMT17_V1" / "test", QUERY)
    with pytest.raises(DaafError) as error:
        build_dataset("msmt17", tmp_path)
    message = str(error.value)
    assert (
        "list_train.txt, list_val.txt, list_query.txt, list_gallery.txt in ROOT/MSMT17_V1"
        in message
    )
    assert "mask_train_v2, mask_test_v2" in message
    assert f"in {tmp_path / 'MSMT17_V1'}: test/, train/" in message
