"""validate_store: every kind of problem is named, coverage against a dataset, nothing modified."""

import dataclasses
import re

import h5py
import pytest

from daaf.data.annotations import validate_store
from daaf.data.datasets import Sample


def _snapshot(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_valid_store_and_dataset_coverage(store, helpers):
    assert validate_store(store) == []
    assert validate_store(store, helpers.make_dataset()) == []


def test_coverage_names_missing_extra_and_mismatched_images(store, helpers):
    dataset = helpers.make_dataset()
    dataset.query.append(Sample("query/0009_c1s1_000001_01.jpg", 9, 0))
    dataset.gallery.pop()  # now stored but not in the dataset
    dataset.train[0] = dataclasses.replace(dataset.train[0], pid=5)
    problems = validate_store(store, dataset)
    assert problems == [
        "train: 1 stored image(s) have another pid/camid than dataset 'market1501' reports, "
        "e.g. bounding_box_train/0002_c1s1_000451_03.jpg",
        "query: 1 image(s) of dataset 'market1501' are not in the store, "
        "e.g. query/0009_c1s1_000001_01.jpg",
        "gallery: 1 stored image(s) are not in dataset 'market1501', "
        "e.g. bounding_box_test/0000_c6s1_000701_01.jpg",
    ]


def test_many_missing_images_are_summarised(store, helpers):
    dataset = helpers.make_dataset()
    dataset.train += [
        Sample(f"bounding_box_train/{i:04d}_c1s1_000001_01.jpg", 3, 0) for i in range(5)
    ]
    (problem,) = validate_store(store, dataset)
    assert problem.startswith("train: 5 image(s) of dataset 'market1501' are not in the store")
    assert problem.endswith("0002_c1s1_000001_01.jpg and 2 more")


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


def _cut(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _set_keypoint(f):
    f["keypoints"][0, 0, 0] = 1.5


PROBLEMS = {
    "truncated": (
        lambda s: _cut(s / "train-00001.h5"),
        r"train-00001.h5 cannot be opened: truncated",
    ),
    "modified": (
        lambda s: _edit(s / "train-00000.h5", _set_keypoint),
        r"train-00000.h5: content does not match its content_sha256",
    ),
    "version": (
        lambda s: _edit(s / "query-00000.h5", lambda f: f.attrs.modify("schema_version", 7)),
        r"query-00000.h5 has annotation schema version 7",
    ),
    "dataset": (
        lambda s: _edit(s / "gallery-00001.h5", lambda f: f.attrs.modify("dataset", "msmt17")),
        r"gallery-00001.h5 belongs to dataset 'msmt17', but train-00000.h5 to 'market1501'",
    ),
    "renamed": (
        lambda s: (s / "gallery-00001.h5").rename(s / "gallery-00004.h5"),
        r"gallery-00004.h5: attributes say split 'gallery' shard 1",
    ),
    "no manifest": (lambda s: (s / "manifest.csv").unlink(), r"manifest.csv is missing"),
    "manifest row": (
        lambda s: (s / "manifest.csv").write_text(
            (s / "manifest.csv").read_text().replace(",train,0,0,", ",train,0,3,", 1)
        ),
        r"manifest.csv disagrees with the shards on 1 row\(s\), e.g. bounding_box_train/0002_c1s1",
    ),
    "unlisted shard": (
        lambda s: (s / "manifest.csv").write_text(
            "".join(line for line in (s / "manifest.csv").open() if "query-00000" not in line)
        ),
        r"manifest.csv does not list the rows of shard query-00000.h5",
    ),
}


@pytest.mark.parametrize("damage,message", PROBLEMS.values(), ids=PROBLEMS.keys())
def test_problems_are_named_and_nothing_is_modified(store, damage, message):
    damage(store)
    before = _snapshot(store)
    problems = validate_store(store)
    assert any(re.search(message, p) for p in problems), problems
    assert _snapshot(store) == before


def test_missing_folder_and_empty_folder(tmp_path):
    assert validate_store(tmp_path / "nope") == [
        f"{tmp_path / 'nope'}: annotation store folder does not exist"
    ]
    assert validate_store(tmp_path) == [f"{tmp_path}: no shard files (<split>-<nnnnn>.h5)"]


def _write_info(store, helpers, splits=("train", "query", "gallery"), **changes):
    from daaf.data.annotations.info import make_store_info, write_store_info

    dataset = helpers.make_dataset()
    samples = {split: dataset.split(split) for split in splits}
    info = make_store_info("market1501", samples, 2, helpers.MASK_SIZE, {"backend": "test"})
    write_store_info(store, info | changes)


def test_store_json_must_agree_with_the_shards(store, helpers):
    _write_info(store, helpers)
    assert validate_store(store, helpers.make_dataset()) == []
    _write_info(store, helpers, dataset="dukemtmc", images={"count": 12, "sha256": "0"})
    assert validate_store(store) == [
        f"{store / 'store.json'} names dataset 'dukemtmc', the shards 'market1501'",
        f"{store / 'store.json'} records 12 images, the shards hold 10 (an interrupted "
        "`daaf label`? re-run it to finish the store)",
    ]
    (store / "store.json").write_text("{not json")
    assert validate_store(store)[0].startswith(f"{store / 'store.json'} cannot be read as JSON")


def test_coverage_is_checked_for_the_splits_store_json_names(tmp_path, helpers):
    records = [r for r in helpers.make_records() if r.split != "query"]
    store = helpers.write_store(tmp_path / "store", records=records)
    dataset = helpers.make_dataset()
    assert validate_store(store, dataset)[0].startswith("query: 2 image(s) of dataset")
    _write_info(store, helpers, splits=("train", "gallery"))
    assert validate_store(store, dataset) == []
