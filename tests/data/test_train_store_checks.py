"""Training refuses a tampered annotation store in one line naming the problem, and says so when
images have no labels; an honest store, or one whose other splits are unfinished, passes. It
refuses, too, a store labelled from other files than the images on disk."""

import logging
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from daaf.data.annotations import AnnotationWriter, validate_store
from daaf.data.annotations.info import make_store_info, write_store_info
from daaf.data.annotations.shards import hash_datasets
from daaf.data.config import DataConfig
from daaf.data.datasets import build_dataset
from daaf.data.train_set import TrainSet, open_store_for
from daaf.errors import DaafError

SHARD = "train-00000.h5"


def _edit(store, fn, rehash=True):
    """Change the training shard; ``rehash`` signs the change, as a careful forger would."""
    with h5py.File(store / SHARD, "r+") as f:
        fn(f)
        if rehash:
            f.attrs.modify("content_sha256", hash_datasets(f))


def _overwrite_masks(store):
    _edit(store, lambda f: f["mask"].__setitem__(0, 255), rehash=False)


def _reverse_rows(store):
    lines = (store / "manifest.csv").read_text().splitlines()
    train = [i for i, line in enumerate(lines) if ",train," in line]
    rows = [lines[i].split(",") for i in train]
    for i, reversed_row in zip(train, [r[5] for r in rows][::-1], strict=True):
        fields = lines[i].split(",")
        fields[5] = reversed_row  # column "row"
        lines[i] = ",".join(fields)
    (store / "manifest.csv").write_text("\n".join(lines) + "\n")


def _keypoints(value):
    def set_keypoint(f):
        keypoints = f["keypoints"][()]
        keypoints[0, 0] = (value, value, 1.0)
        f["keypoints"][...] = keypoints

    return lambda store: _edit(store, set_keypoint)


def _zero_size(store):
    _edit(store, lambda f: f["image_size"].__setitem__(0, (0, 0)))


def _duplicate_shard(store):
    shutil.copy(store / SHARD, store / "train-00001.h5")
    AnnotationWriter(store, "market1501", {}).write_manifest()


def _float_masks(store):
    def to_float(f):
        masks = f["mask"][()].astype(np.float32)
        del f["mask"]
        f.create_dataset("mask", data=masks, chunks=(1, *masks.shape[1:]))

    _edit(store, to_float)


def _info(store, **changes):
    dataset = build_dataset("market1501", store.parent)
    samples = {split: dataset.split(split) for split in ("train", "query", "gallery")}
    info = make_store_info("market1501", samples, 4096, (256, 128), {"backend": "test"})
    write_store_info(store, info | changes)


TAMPERED = {
    "masks overwritten": (_overwrite_masks, r"train-00000.h5: content does not match"),
    "rows reversed": (_reverse_rows, r"manifest.csv disagrees with the shards on 48 row"),
    "keypoint at 1e9": (_keypoints(1e9), r"1 keypoint\(s\) of 1 image\(s\) lie outside"),
    "keypoint at -1e9": (_keypoints(-1e9), r"1 keypoint\(s\) of 1 image\(s\) lie outside"),
    "keypoint NaN, score 1": (_keypoints(np.nan), r"lie outside their image and are not"),
    "image size 0": (_zero_size, r"17 keypoint\(s\) of 1 image\(s\) lie outside"),
    "duplicated shard": (_duplicate_shard, r"train-00001.h5: attributes say split 'train' shard 0"),
    "float32 masks": (_float_masks, r"datasets of the wrong type: mask float32 \(expected u1\)"),
    "store.json unreadable": (
        lambda s: (s / "store.json").write_text("{not json"),
        r"store.json cannot be read as JSON",
    ),
    "store.json of a future schema": (
        lambda s: _info(s, schema_version=7),
        r"store.json describes schema 'daaf.annotations' version 7, but this daaf reads",
    ),
}


@pytest.fixture
def store(tiny_dataset, tmp_path):
    """A copy of the tiny dataset's store, beside a link to its images."""
    (tmp_path / "Market-1501-v15.09.15").symlink_to(tiny_dataset / "Market-1501-v15.09.15")
    return shutil.copytree(tiny_dataset / "annotations", tmp_path / "annotations")


@pytest.mark.parametrize("tamper,message", TAMPERED.values(), ids=TAMPERED.keys())
def test_a_tampered_store_is_refused_in_one_line(store, tamper, message):
    train = build_dataset("market1501", store.parent).train
    open_store_for(train, store, "market1501")  # the honest store passes
    tamper(store)
    with pytest.raises(DaafError) as info:
        open_store_for(train, store, "market1501")
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"annotation store {store} is not fit to train")
    assert re.search(message, text), text
    assert text.endswith(f"`daaf annotations validate {store}` lists every problem")


def _swap_paths(f):
    paths = f["image_path"].asstr()[()]
    paths[[0, -1]] = paths[[-1, 0]]  # the first and last image: two identities
    f["image_path"][...] = paths


@pytest.mark.parametrize(
    ("tamper", "wrong"),
    [(_swap_paths, 2), (lambda f: f["pid"].__setitem__(5, 7), 1)],
    ids=["paths swapped", "pid changed"],
)
def test_labels_of_other_images_are_refused_even_when_rehashed(store, tamper, wrong):
    """A careful forger: the shard is rehashed and the manifest rebuilt, so the store is
    whole, but its labels name other images than the dataset's file names do."""
    train = build_dataset("market1501", store.parent).train
    _edit(store, tamper)
    AnnotationWriter(store, "market1501", {}).write_manifest()
    with pytest.raises(DaafError) as info:
        open_store_for(train, store, "market1501")
    assert re.fullmatch(
        f"annotation store {re.escape(str(store))} gives {wrong} of 48 training images another pid "
        r"or camid than the dataset does, first: bounding_box_train/\S+; its labels belong to "
        "other images: relabel the dataset",
        str(info.value),
    ), str(info.value)


def test_unfinished_other_splits_and_no_manifest_still_train(store):
    train = build_dataset("market1501", store.parent).train
    _info(store)
    (store / "gallery-00000.h5").unlink()  # an interrupted `daaf label` of the gallery
    (store / "manifest.csv").unlink()  # written only at the end of a labeling run
    assert len(open_store_for(train, store, "market1501")) == 48 + 16


def _set_status(store, status):
    def set_status(f):
        f["status"][...] = status

    _edit(store, set_status)
    AnnotationWriter(store, "market1501", {}).write_manifest()


def test_a_store_without_one_labeled_training_image_is_refused(store):
    train = build_dataset("market1501", store.parent).train
    _set_status(store, 2)
    with pytest.raises(
        DaafError,
        match=r"none of the 48 train images is labelled \(status 0\): "
        r"48 unreadable; `daaf annotations validate ",
    ):
        open_store_for(train, store, "market1501")


def test_unlabeled_training_images_are_named_in_one_warning(store, caplog):
    train = build_dataset("market1501", store.parent).train
    status = np.zeros(48, np.uint8)
    status[[3, 7]], status[9] = 2, 3
    _set_status(store, status)
    with caplog.at_level(logging.WARNING):
        open_store_for(train, store, "market1501")
    (line,) = [r.getMessage() for r in caplog.records if "no labels" in r.getMessage()]
    with h5py.File(store / SHARD) as f:
        first = f["image_path"].asstr()[3]
    assert "3 of 48 training images have no labels (2 unreadable, 1 labeler error)" in line
    assert f"first: {first}" in line and line.endswith("the HAB/PAB losses leave them out")


def test_train_refuses_a_tampered_store_before_building_anything(store, tmp_path, cli):

    _reverse_rows(store)
    out = tmp_path / "run"
    config = Path(__file__).parents[2] / "configs" / "daaf_bot.yaml"
    args = [
        "train",
        "--config",
        str(config),
        "--out",
        str(out),
        f"data.root={store.parent}",
        f"data.annotations={store}",
    ]
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"Error: annotation store {store} is not fit to train on: ")
    assert "manifest.csv disagrees with the shards on 48 row(s)" in line


@pytest.fixture
def data(tiny_dataset, tmp_path):
    """A copy of the tiny dataset, images and store, whose images a test may change."""
    return shutil.copytree(tiny_dataset, tmp_path / "data")


def _train_set(root):
    """The checks `daaf train` makes before the first step: the store's, then the images'."""
    dataset = build_dataset("market1501", root)
    store = open_store_for(dataset.train, root / "annotations", "market1501")
    return TrainSet(dataset.train, dataset.image_dir, DataConfig(), store, masks=True)


def _refusal(root, paths, count, total=48):
    """The one line refusing a store labelled from other files than ``paths`` of ``total``."""
    image_dir = root / "Market-1501-v15.09.15"
    named = ", ".join(paths[:3]) + (f" and {count - 3} more" if count > 3 else "")
    return (
        f"annotation store {root / 'annotations'} was labelled from other images: {count} of {total} "
        f"images in {image_dir} are not the files they were labelled from (SHA-256 of the file "
        "differs from the store's image_sha256: replaced, re-cropped, or another dataset's images "
        f"of the same names), e.g. {named}; relabel: `daaf label --dataset market1501 --root "
        f"{image_dir} --out {root / 'annotations'} --backend test --overwrite`"
    )


def test_an_image_replaced_under_its_name_is_refused_naming_it(data):
    _train_set(data)  # the honest store passes
    train = build_dataset("market1501", data).train
    image_dir = data / "Market-1501-v15.09.15"
    first, other = train[0].path, train[-1].path  # two identities, the same size
    (image_dir / first).write_bytes((image_dir / other).read_bytes())
    with pytest.raises(DaafError) as info:
        _train_set(data)
    assert str(info.value) == _refusal(data, [first], 1)
    (problem,) = validate_store(data / "annotations", build_dataset("market1501", data))
    assert problem == _refusal(data, [first], 1, 96).split(" was labelled from other images: ")[1]


def test_train_refuses_a_replaced_image_in_one_line(data, cli):

    train = build_dataset("market1501", data).train
    image = data / "Market-1501-v15.09.15" / train[5].path
    image.write_bytes(image.read_bytes() + b"\0")  # a tool rewrote it: one byte more
    config = Path(__file__).parents[2] / "configs" / "daaf_bot.yaml"
    args = [
        "train",
        "--config",
        str(config),
        "--out",
        str(data / "run"),
        f"data.root={data}",
        f"data.annotations={data / 'annotations'}",
    ]
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line == f"Error: {_refusal(data, [train[5].path], 1)}"
    assert not (data / "run" / "checkpoints").exists()


def _reorder_labels(f):
    """Every dataset but image_path, pid and camid in reverse row order: each image keeps its
    identity and gets another image's mask, keypoints, box, status and digest."""
    labels = ["image_size", "mask", "keypoints", "person_box", "person_score", "status"]
    for name in [*labels, "image_sha256"]:
        f[name][...] = f[name][()][::-1]


def test_labels_rewritten_in_another_order_are_refused(data):
    """The careless-user pass: rows reordered, content_sha256 recomputed, manifest rebuilt, so
    that the store is whole and every image keeps its pid and camid."""
    store = data / "annotations"
    _edit(store, _reorder_labels)
    AnnotationWriter(store, "market1501", {}).write_manifest()
    dataset = build_dataset("market1501", data)
    assert validate_store(store, splits=("train",)) == []  # whole, and the identities agree
    with pytest.raises(DaafError) as info:
        _train_set(data)
    paths = [s.path for s in dataset.train]  # 48 rows reversed: none stays in place
    assert str(info.value) == _refusal(data, paths, 48)
