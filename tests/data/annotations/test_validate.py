"""validate_store: every kind of problem is named, coverage against a dataset, nothing modified;
the keypoints-inside-the-image rule."""

import dataclasses
import re

import h5py
import numpy as np
import pytest

from daaf.data.annotations import validate_store
from daaf.data.annotations.schema import keypoints_in_image, keypoints_off_image
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
    "status 9": (
        lambda s: _edit(s / "train-00001.h5", lambda f: f["status"].__setitem__(1, 9)),
        r"train-00001.h5: 1 row\(s\) of status 9, which the schema does not define \(0 ok, "
        r"1 no person, 2 unreadable, 3 labeler error\), first bounding_box_train/",
    ),
    "nothing labelled": (
        lambda s: [
            _edit(shard, lambda f: f["status"].__setitem__(Ellipsis, 1))
            for shard in s.glob("query-*.h5")
        ],
        r"store: none of the \d+ query images is labelled \(status 0\): \d+ no person$",
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


@pytest.mark.parametrize("kind", ["FIFO", "link to /dev/zero"])
def test_a_shard_that_is_a_fifo_or_a_device_is_named_without_waiting(store, kind):
    """HDF5 would wait for ever on a FIFO; the shard is refused before it is opened."""
    import os

    shard = store / "query-00000.h5"
    shard.unlink()
    if kind == "FIFO":
        os.mkfifo(shard)
    else:
        shard.symlink_to("/dev/zero")
    said = "a FIFO (named pipe)" if kind == "FIFO" else "a character device"
    assert f"annotation shard {shard}: {said}, not a regular file" in validate_store(store)


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


NAN = float("nan")


@pytest.mark.parametrize(
    ("x", "y", "score", "off"),
    [
        (0.0, 0.0, 0.9, False),  # the top-left corner is inside
        (63.99, 127.99, 0.9, False),  # just inside the bottom-right pixel
        (64.0, 10.0, 0.9, True),  # x = width is the right border: outside
        (10.0, 128.0, 0.9, True),  # y = height: outside
        (-0.01, 10.0, 0.9, True),
        (-28.0, 10.0, 0.0, True),  # outside even with score 0
        (NAN, NAN, 0.0, False),  # not found
        (NAN, NAN, 0.5, True),  # NaN with a score
        (NAN, 10.0, 0.0, True),  # half NaN
        (float("inf"), 10.0, 0.9, True),
    ],
)
def test_keypoints_inside_the_image_rule(x, y, score, off):
    keypoints = np.tile(np.array([[5.0, 5.0, 1.0]], np.float32), (17, 1))
    keypoints[4] = (x, y, score)
    assert keypoints_off_image(keypoints, (128, 64)).tolist() == [False] * 4 + [off] + [False] * 12
    kept = keypoints_in_image(keypoints, (128, 64))
    expected = np.array([NAN, NAN, 0.0]) if off else keypoints[4]
    np.testing.assert_array_equal(kept[4], expected)
    np.testing.assert_array_equal(np.delete(kept, 4, 0), np.delete(keypoints, 4, 0))
    assert kept.dtype == np.float32 and keypoints[4, 2] == np.float32(score)  # a copy


def test_keypoints_off_image_takes_one_size_per_image():
    keypoints = np.full((2, 17, 3), (40.0, 20.0, 1.0), np.float32)
    off = keypoints_off_image(keypoints, np.array([[128, 64], [16, 32]], np.uint16))
    assert off.tolist() == [[False] * 17, [True] * 17]  # x 40 is off a 32-wide image


def test_a_keypoint_outside_its_image_fails_validation(tmp_path, helpers, cli):
    records = helpers.make_records()
    records[2].keypoints[5] = (89.5, 40.0, 0.7)  # beyond the 64-pixel-wide image
    records[3].keypoints[0] = (-28.0, 10.0, 0.2)
    records[3].keypoints[1] = (10.0, 10.0, 0.0)  # inside: fine whatever its score
    store = helpers.write_store(tmp_path / "store", records)
    problems = validate_store(store)
    assert problems == [
        f"{store / 'train-00001.h5'}: 2 keypoint(s) of 2 image(s) lie outside their image and "
        f"are not (NaN, NaN, 0), first in bounding_box_train/0007_c1s1_000551_01.jpg"
    ]
    result = cli("annotations", "validate", store, ok=False)
    assert result.exit_code == 1
    assert f"- {problems[0]}\nINVALID: 1 problem(s) in {store}" in result.output


def test_store_json_of_another_schema_or_version_fails_validation(store, helpers):
    _write_info(store, helpers, schema_version=7)
    assert validate_store(store) == [
        f"{store / 'store.json'} describes schema 'daaf.annotations' version 7, but this daaf "
        "reads 'daaf.annotations' versions 1, 2; relabel the dataset or use a daaf release that "
        "reads that version"
    ]
    (store / "store.json").write_text("[1, 2]")
    assert validate_store(store) == [f"{store / 'store.json'} holds a JSON list, not an object"]


def test_a_dataset_of_another_type_fails_validation(store):
    with h5py.File(store / "train-00000.h5", "r+") as f:
        status = f["status"][()]
        del f["status"]
        f.create_dataset("status", data=status.astype(np.int64))
    problems = validate_store(store)
    assert (
        f"{store / 'train-00000.h5'} has datasets of the wrong type: status int64 (expected u1)"
        in problems
    )
