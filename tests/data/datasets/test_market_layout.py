"""Market-1501, synthetic, DukeMTMC-reID and Occluded-Duke: the three-folder layouts."""

import pytest

from daaf.data.datasets import DATASETS, Sample, build_dataset
from daaf.errors import DaafError


def test_market1501_rules(market_root):
    dataset = build_dataset("market1501", market_root)
    assert dataset.image_dir == market_root / "Market-1501-v15.09.15"
    # Train ids 2, 7, 10 relabelled by sorting to 0, 1, 2; cameras 0-based.
    assert dataset.train == [
        Sample("bounding_box_train/0002_c1s1_000451_03.jpg", 0, 0),
        Sample("bounding_box_train/0002_c2s1_000551_01.jpg", 0, 1),
        Sample("bounding_box_train/0007_c3s1_000101_01.jpg", 1, 2),
        Sample("bounding_box_train/0010_c6s2_000001_01.jpg", 2, 5),
    ]
    assert dataset.query == [
        Sample("query/0002_c2s1_000301_00.jpg", 2, 1),
        Sample("query/0007_c1s1_000011_00.jpg", 7, 0),
    ]
    # Junk (-1) dropped, distractor (0) kept with its own id.
    assert sorted(dataset.gallery, key=lambda s: s.path) == [
        Sample("bounding_box_test/0000_c1s1_000001_01.jpg", 0, 0),
        Sample("bounding_box_test/0002_c3s1_000001_01.jpg", 2, 2),
        Sample("bounding_box_test/0007_c4s1_000001_01.jpg", 7, 3),
    ]
    assert dataset.num_train_pids == 3
    assert dataset.skipped == {"file name does not parse": ["bounding_box_train/IMG_1234.jpg"]}
    assert dataset.summary() == {
        "train": {"images": 4, "ids": 3, "cameras": 4},
        "query": {"images": 2, "ids": 2, "cameras": 2},
        "gallery": {"images": 3, "ids": 3, "cameras": 3},
    }
    for sample in dataset.train + dataset.query + dataset.gallery:
        assert (dataset.image_dir / sample.path).is_file()


def test_a_negative_pid_other_than_junk_is_reported_not_dropped(market_root, write_images):
    """pid -1 marks junk, dropped without a word; -5 is a misnamed file, reported as one."""
    write_images(
        market_root / "Market-1501-v15.09.15" / "bounding_box_test", ["-5_c1s1_000001_01.jpg"]
    )
    dataset = build_dataset("market1501", market_root)
    assert sorted(dataset.skipped["file name does not parse"]) == [
        "bounding_box_test/-5_c1s1_000001_01.jpg",
        "bounding_box_train/IMG_1234.jpg",
    ]


def test_root_may_be_the_dataset_folder(market_root):
    parent = build_dataset("market1501", market_root)
    direct = build_dataset("market1501", market_root / "Market-1501-v15.09.15")
    assert direct.image_dir == parent.image_dir
    assert (direct.train, direct.query, direct.gallery) == (
        parent.train,
        parent.query,
        parent.gallery,
    )


def test_synthetic_reads_the_market_layout(market_root):
    market = build_dataset("market1501", market_root)
    synthetic = build_dataset("synthetic", market_root)
    assert synthetic.name == "synthetic"
    assert (synthetic.train, synthetic.query, synthetic.gallery) == (
        market.train,
        market.query,
        market.gallery,
    )


@pytest.mark.parametrize(
    ("name", "folder"), [("dukemtmc", "DukeMTMC-reID"), ("occluded_duke", "Occluded_Duke")]
)
def test_duke_naming(tmp_path, write_images, name, folder):
    duke = tmp_path / folder
    write_images(
        duke / "bounding_box_train",
        ["0001_c2_f0046182.jpg", "0001_c6_f0061141.jpg", "0005_c8_f0000001.jpg"]
        + ["0002_c1s1_000451_03.jpg"],  # a Market name is not a Duke name
    )
    write_images(duke / "query", ["0003_c1_f0044158.jpg"])
    write_images(duke / "bounding_box_test", ["0003_c5_f0045731.jpg", "0009_c7_f0100001.jpg"])
    dataset = build_dataset(name, tmp_path)
    assert dataset.train == [
        Sample("bounding_box_train/0001_c2_f0046182.jpg", 0, 1),
        Sample("bounding_box_train/0001_c6_f0061141.jpg", 0, 5),
        Sample("bounding_box_train/0005_c8_f0000001.jpg", 1, 7),
    ]
    assert dataset.query == [Sample("query/0003_c1_f0044158.jpg", 3, 0)]
    assert [s.camid for s in dataset.gallery] == [4, 6]
    assert dataset.skipped == {
        "file name does not parse": ["bounding_box_train/0002_c1s1_000451_03.jpg"]
    }
    assert build_dataset(name, duke).train == dataset.train


def test_wrong_layout_names_the_expected_folder(tmp_path, write_images):
    write_images(tmp_path / "Market1501" / "train", ["0002_c1s1_000451_03.jpg"])
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(DaafError) as error:
        build_dataset("market1501", tmp_path)
    message = str(error.value)
    assert "bounding_box_train, query, bounding_box_test in ROOT/Market-1501-v15.09.15" in message
    assert f"found in {tmp_path}: Market1501/, notes.txt" in message


def test_missing_split_folder_is_reported(market_root):
    missing = market_root / "Market-1501-v15.09.15" / "query"
    for path in missing.iterdir():
        path.unlink()
    missing.rmdir()
    with pytest.raises(
        DaafError,
        match="found in .*Market-1501-v15.09.15: bounding_box_test/, bounding_box_train/, gt_bbox/",
    ):
        build_dataset("market1501", market_root)


def test_empty_split_folder_is_an_error(market_root):
    query = market_root / "Market-1501-v15.09.15" / "query"
    for path in query.glob("*.jpg"):
        path.unlink()
    with pytest.raises(DaafError, match=rf"{query}: no images found .*found Thumbs.db, readme.txt"):
        build_dataset("market1501", market_root)


def test_unknown_dataset_lists_known_ones(tmp_path):
    with pytest.raises(DaafError) as error:
        build_dataset("market", tmp_path)
    assert str(error.value).startswith(
        "unknown dataset 'market'; known: cuhk03_detected, cuhk03_labeled"
    )
    for name in DATASETS:
        assert name in str(error.value)


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(DaafError, match="does not exist"):
        build_dataset("market1501", tmp_path / "nowhere")
