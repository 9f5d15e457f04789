"""Image digests: how files are hashed (never blocking on a FIFO), and stores of schema 1, which
record none: they load, validate and train, with one line saying their labels cannot be checked."""

import hashlib
import logging
import os
import shutil
import threading
from pathlib import Path

import cv2
import h5py
import pytest

from daaf.data.annotations import AnnotationStore, AnnotationWriter, validate_store
from daaf.data.annotations.digests import file_digests, file_sha256
from daaf.data.annotations.info import make_store_info, write_store_info
from daaf.data.annotations.shards import hash_datasets, list_shard_paths
from daaf.data.config import DataConfig
from daaf.data.datasets import build_dataset
from daaf.data.train_set import TrainSet, open_store_for

from ...conftest import load_script

REPO = Path(__file__).resolve().parents[3]


def test_file_sha256_is_the_sha256_of_the_bytes_and_none_without_a_regular_file(tmp_path):
    image = tmp_path / "a.jpg"
    image.write_bytes(os.urandom(3 * 1024 * 1024 + 7))  # more than one read
    assert file_sha256(image) == hashlib.sha256(image.read_bytes()).digest()
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert file_sha256(tmp_path / "empty.jpg") == hashlib.sha256(b"").digest()
    (tmp_path / "folder.jpg").mkdir()
    assert file_sha256(tmp_path / "folder.jpg") is None
    assert file_sha256(tmp_path / "missing.jpg") is None


def test_a_fifo_named_like_an_image_is_not_read(tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    found = []
    worker = threading.Thread(target=lambda: found.append(file_sha256(fifo)), daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and found == [None]


@pytest.mark.parametrize("threads", [1, 3, 8])
def test_file_digests_keeps_the_order_of_the_paths(tmp_path, threads):
    paths = []
    for i in range(7):
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(bytes([i]) * (i + 1))
    paths.insert(3, tmp_path / "missing.jpg")
    expected = [file_sha256(path) for path in paths]
    assert file_digests(paths, threads) == expected and expected[3] is None
    assert file_digests([], threads) == []


def test_the_writer_refuses_a_digest_of_another_length(tmp_path, records):
    records[0].image_sha256 = b"\1" * 31
    writer = AnnotationWriter(tmp_path / "store", "market1501", {}, mask_size=(32, 16))
    with pytest.raises(ValueError, match="image_sha256 must be 32 bytes"):
        writer.write_shard("train", 0, [r for r in records if r.split == "train"])


def to_schema_1(store):
    """Rewrite a store as a daaf of schema 1 wrote it: no image_sha256 in the shards or the
    manifest, ``schema_version`` 1 and the content hash of schema 1; a ``store.json`` of
    version 1, as `daaf label` wrote one."""
    for path in list_shard_paths(store):
        with h5py.File(path, "r+") as f:
            del f["image_sha256"]
            f.attrs["schema_version"] = 1
            f.attrs["content_sha256"] = hash_datasets(f, version=1)
    manifest = AnnotationWriter(store, "market1501", {}).write_manifest()
    lines = manifest.read_text().splitlines()
    assert lines[0].endswith(",image_sha256")
    manifest.write_text("".join(line.rsplit(",", 1)[0] + "\n" for line in lines))
    dataset = build_dataset("market1501", store.parent)
    samples = {split: dataset.split(split) for split in ("train", "query", "gallery")}
    info = make_store_info("market1501", samples, 4096, (256, 128), {"backend": "test"})
    write_store_info(store, info | {"schema_version": 1})


@pytest.fixture
def old_store(tiny_dataset, tmp_path):
    """A copy of the tiny dataset whose store has schema 1."""
    root = shutil.copytree(tiny_dataset, tmp_path / "data")
    to_schema_1(root / "annotations")
    return root / "annotations"


def _note(store, labelled):
    image_dir = store.parent / "Market-1501-v15.09.15"
    return (
        f"{labelled} of {labelled} labelled images have no image digest in the store (stores of "
        "annotation schema 1 record none), so their labels cannot be checked against the images; "
        f"relabel to check them: `daaf label --dataset market1501 --root {image_dir} --out {store} "
        "--backend test --splits train,query,gallery --shard-size 4096 --overwrite`"
    )


def test_a_schema_1_store_loads_and_validates_with_one_note(old_store, cli):
    with AnnotationStore(old_store) as store:
        assert store.schema_version == 1 and len(store) == 96
        assert set(store.manifest["image_sha256"]) == {""}
        path = store.manifest["image_path"][0]
        assert store.get(path).image_sha256 is None and store.masks([path]).shape == (1, 256, 128)
    notes = []
    dataset = build_dataset("market1501", old_store.parent)
    assert validate_store(old_store, dataset, notes=notes) == []
    assert notes == [_note(old_store, 96)]
    result = cli("annotations", "validate", old_store, "--root", old_store.parent)
    assert result.stdout == (
        f"note: {_note(old_store, 96)}\nOK: {old_store}, covers dataset market1501 at "
        f"{old_store.parent}\n"
    )


def test_a_schema_1_store_trains_with_one_warning(old_store, caplog):
    dataset = build_dataset("market1501", old_store.parent)
    with caplog.at_level(logging.WARNING):
        store = open_store_for(dataset.train, old_store, "market1501")
        TrainSet(dataset.train, dataset.image_dir, DataConfig(), store, masks=True, keypoints=True)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"WARNING: annotation store {old_store}: {_note(old_store, 48)}"]


def test_shards_of_two_schema_versions_are_one_problem(old_store, tiny_dataset):
    shutil.copy(tiny_dataset / "annotations" / "query-00000.h5", old_store)  # schema 2
    AnnotationWriter(old_store, "market1501", {}).write_manifest()
    problems = validate_store(old_store)
    assert (
        f"{old_store / 'query-00000.h5'} has schema version 2, but train-00000.h5 1; a store "
        "holds one version"
    ) in problems


def test_the_benchmark_prints_the_check_against_the_epoch(tmp_path, monkeypatch, capsys):
    benchmark = load_script(REPO / "benchmarks" / "image_digests.py")
    argv = ["image_digests.py", "--images", "24", "--repeats", "1", "--out", str(tmp_path)]
    monkeypatch.setattr("sys.argv", argv)
    benchmark.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("24 JPEGs, mean ") and lines[0].endswith(" median of 1 passes")
    names = [line[:26].strip() for line in lines[2:5]]
    assert names == ["check, 1 thread", "check, 4 threads", "epoch data, 1 process"]
    assert lines[4].endswith(" 1.000") and lines[5].startswith("hashing bytes in memory")
    sizes = {tuple(cv2.imread(str(p)).shape[:2]) for p in tmp_path.rglob("*.jpg")}
    assert len(sizes) > 5 and all(128 <= h <= 256 and w == h // 2 for h, w in sizes)
