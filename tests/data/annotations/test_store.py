"""Writer and reader: round trip of every field, atomic and deterministic shards, reader errors."""

import json
import os
import pickle

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from daaf.data.annotations import (
    DEFAULT_MASK_SIZE,
    MANIFEST_COLUMNS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    AnnotationStore,
    AnnotationWriter,
    encode_mask,
    plan_shards,
)
from daaf.data.annotations.shards import hash_datasets
from daaf.data.datasets import Sample
from daaf.data.keypoints import KEYPOINT_NAMES
from daaf.errors import DaafError


def assert_same(stored, record):
    for name in ("image_path", "split", "pid", "camid", "image_size", "status"):
        assert getattr(stored, name) == getattr(record, name), name
    assert stored.mask.dtype == np.uint8
    np.testing.assert_array_equal(stored.mask, record.mask)
    np.testing.assert_array_equal(stored.keypoints, record.keypoints)  # NaN == NaN here
    np.testing.assert_array_equal(stored.person_box, record.person_box)
    assert stored.person_score == pytest.approx(record.person_score, abs=1e-6)


def test_round_trip_of_every_field(store, records):
    with AnnotationStore(store) as reader:
        assert len(reader) == len(records) and reader.dataset == "market1501"
        assert reader.mask_size == (32, 16) and reader.labeler == {"backend": "test"}
        for record in records:
            assert_same(reader.get(record.image_path), record)
        paths = [r.image_path for r in records][::-1]  # bulk reads across shards, any order
        np.testing.assert_array_equal(reader.masks(paths), [r.mask for r in records][::-1])
        keypoints = reader.keypoints(paths)
        assert keypoints.dtype == np.float32 and keypoints.shape == (10, 17, 3)
        np.testing.assert_array_equal(keypoints, [r.keypoints for r in records][::-1])
        np.testing.assert_array_equal(reader.status(paths), [r.status for r in records][::-1])
        assert reader.status([]).shape == (0,) and reader.masks([]).shape == (0, 32, 16)
        assert reader.missing(["query/nope.jpg", paths[0], "x.jpg"]) == ["query/nope.jpg", "x.jpg"]
        assert paths[0] in reader and "x.jpg" not in reader
        with pytest.raises(DaafError, match="x.jpg is not in the annotation store"):
            reader.masks(["x.jpg"])
    unreadable = records[-1]
    assert np.isnan(unreadable.keypoints[:, :2]).all() and unreadable.image_size == (0, 0)


def test_shard_attributes_and_layout(store):
    with h5py.File(store / "train-00001.h5", "r") as f:
        attrs = dict(f.attrs)
        assert attrs["schema"] == SCHEMA_NAME and attrs["schema_version"] == SCHEMA_VERSION
        assert (attrs["dataset"], attrs["split"], attrs["shard_index"]) == (
            "market1501",
            "train",
            1,
        )
        assert json.loads(attrs["labeler"]) == {"backend": "test"}
        assert list(attrs["keypoint_names"]) == list(KEYPOINT_NAMES)
        assert tuple(attrs["mask_size"]) == (32, 16)
        assert attrs["created_utc"] == "2024-01-01T00:00:00Z" and attrs["daaf_version"]
        assert attrs["content_sha256"] == hash_datasets(f)
        mask = f["mask"]
        assert mask.chunks == (1, 32, 16) and mask.compression == "gzip" and mask.fletcher32
        assert mask.compression_opts == 4
        dtypes = {name: f[name].dtype.str for name in ("pid", "camid", "image_size", "status")}
        assert dtypes == {"pid": "<i4", "camid": "<i2", "image_size": "<u2", "status": "|u1"}
        assert f["keypoints"].chunks == (2, 17, 3)  # small arrays: one chunk for the shard
    assert sorted(p.name for p in store.iterdir()) == [
        "gallery-00000.h5",
        "gallery-00001.h5",
        "manifest.csv",
        "query-00000.h5",
        "train-00000.h5",
        "train-00001.h5",
        "train-00002.h5",
    ]


def test_manifest_rows_ordered_by_split_shard_row(store, records):
    reader = AnnotationStore(store)
    manifest = reader.manifest
    assert list(manifest.columns) == list(MANIFEST_COLUMNS)
    assert list(manifest["image_path"]) == [r.image_path for r in records]
    assert list(manifest["shard"][:3]) == ["train-00000.h5", "train-00000.h5", "train-00001.h5"]
    assert list(manifest["row"][:3]) == [0, 1, 0]
    assert list(manifest["status"]) == [r.status for r in records]
    first = records[0]
    assert manifest["mean_keypoint_score"][0] == pytest.approx(
        first.keypoints[:, 2].mean(), abs=1e-6
    )
    assert manifest["mask_area"][0] == pytest.approx((first.mask >= 128).mean(), abs=1e-6)
    assert manifest["mask_area"][1] == 0 and manifest["person_score"][1] == 0


def test_reader_without_manifest_indexes_the_shards_and_writes_nothing(store):
    expected = AnnotationStore(store).manifest
    (store / "manifest.csv").unlink()
    before = sorted(os.listdir(store))
    reader = AnnotationStore(store)
    assert sorted(os.listdir(store)) == before
    np.testing.assert_allclose(reader.manifest["mask_area"], expected["mask_area"])
    assert list(reader.manifest["image_path"]) == list(expected["image_path"])


def test_identical_input_gives_identical_bytes(tmp_path, helpers):
    a = helpers.write_store(tmp_path / "a")
    b = helpers.write_store(tmp_path / "b")
    for name in ("train-00000.h5", "gallery-00001.h5", "manifest.csv"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_failed_write_leaves_no_file(tmp_path, records, monkeypatch):
    writer = AnnotationWriter(tmp_path, "market1501", {}, mask_size=(32, 16))
    bad = records[:2]
    bad[1].mask = np.zeros((31, 16), np.uint8)
    with pytest.raises(ValueError, match="0002_c2s1_000301_01.jpg: uint8 mask must have shape"):
        writer.write_shard("train", 0, bad)
    assert list(tmp_path.iterdir()) == []

    import daaf.data.annotations.writer as writer_module

    def fail(*args):  # fails after the temporary file has been created and partly written
        raise RuntimeError("disk full")

    monkeypatch.setattr(writer_module, "hash_datasets", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        writer.write_shard("train", 0, records[:1])
    assert list(tmp_path.iterdir()) == [] and not writer.shard_exists("train", 0)


def test_shard_exists_and_plan_shards(tmp_path, records):
    writer = AnnotationWriter(tmp_path, "market1501", {}, mask_size=(32, 16))
    assert not writer.shard_exists("query", 0)
    writer.write_shard("query", 0, [r for r in records if r.split == "query"])
    assert writer.shard_exists("query", 0)
    assert writer.shard_path("query", 0) == tmp_path / "query-00000.h5"
    other = AnnotationWriter(tmp_path, "dukemtmc", {}, mask_size=(32, 16))
    with pytest.raises(DaafError, match="query-00000.h5 holds dataset 'market1501'"):
        other.shard_exists("query", 0)
    samples = [Sample(str(i), i, 0) for i in range(5)]
    assert plan_shards(samples, 2) == [samples[0:2], samples[2:4], samples[4:5]]
    assert plan_shards([], 4) == []


def test_encode_mask_resizes_and_scales():
    probability = np.zeros((128, 64), np.float32)
    probability[:, 32:] = 1.0
    mask = encode_mask(probability)
    assert mask.shape == DEFAULT_MASK_SIZE and mask.dtype == np.uint8
    assert mask[:, :60].max() == 0 and mask[:, 68:].min() == 255
    assert encode_mask(np.full((10, 5), 0.5), (4, 2)).tolist() == [[128, 128]] * 4


def _cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _set_attr(path, name, value):
    with h5py.File(path, "r+") as f:
        f.attrs[name] = value


DAMAGES = {
    "truncated": (
        lambda s: _cut_in_half(s / "query-00000.h5"),
        r"query-00000.h5 cannot be opened: truncated",
    ),
    "not hdf5": (
        lambda s: (s / "query-00000.h5").write_bytes(b"nope" * 100),
        r"query-00000.h5 cannot be opened",
    ),
    "other version": (
        lambda s: _set_attr(s / "train-00001.h5", "schema_version", 3),
        r"train-00001.h5 has annotation schema version 3, but this daaf reads versions 1, 2;",
    ),
    "other schema": (
        lambda s: _set_attr(s / "train-00001.h5", "schema", "other"),
        r"train-00001.h5 is not a daaf annotation shard",
    ),
    "other dataset": (
        lambda s: _set_attr(s / "gallery-00000.h5", "dataset", "dukemtmc"),
        r"gallery-00000.h5 belongs to dataset 'dukemtmc'",
    ),
    "missing shard": (
        lambda s: (s / "train-00002.h5").unlink(),
        r"annotation shard .*train-00002.h5 does not exist",
    ),
}


@pytest.mark.parametrize("damage,message", DAMAGES.values(), ids=DAMAGES.keys())
def test_reader_errors_name_the_file(store, damage, message):
    damage(store)
    with pytest.raises(DaafError, match=message):
        AnnotationStore(store)


def test_missing_store_folder(tmp_path):
    with pytest.raises(DaafError, match=r"annotation store .*nowhere does not exist"):
        AnnotationStore(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DaafError, match="holds no images"):
        AnnotationStore(tmp_path / "empty")


class _Masks(Dataset):
    def __init__(self, store, paths):
        self.store, self.paths = store, paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        path = self.paths[i]
        return os.getpid(), self.store.masks([path])[0], self.store.keypoints([path])[0]


def test_reader_in_dataloader_workers(store, records):
    reader = AnnotationStore(store)
    paths = [r.image_path for r in records]
    reader.masks(paths)  # the parent opens its handles before the workers fork
    loader = DataLoader(_Masks(reader, paths), batch_size=2, num_workers=2)
    pids, masks, keypoints = zip(*[(p, m, k) for p, m, k in loader], strict=True)
    assert os.getpid() not in set(torch.cat(pids).tolist())
    np.testing.assert_array_equal(torch.cat(masks).numpy(), [r.mask for r in records])
    np.testing.assert_array_equal(torch.cat(keypoints).numpy(), [r.keypoints for r in records])
    clone = pickle.loads(pickle.dumps(reader))  # spawn-started workers get a pickled store
    np.testing.assert_array_equal(clone.masks(paths[:1]), reader.masks(paths[:1]))
    reader.close()
