"""The loaders: persistent workers follow the epoch; an unreadable image is one line naming it."""

import shutil
from pathlib import Path

import pytest
import torch

from daaf.config import load_config
from daaf.data.datasets import build_dataset
from daaf.data.loader import build_loader
from daaf.errors import DaafError
from daaf.evaluation.features import EvalSet, FeatureOptions, extract_features
from daaf.models import ModelMeta
from daaf.training.trainer import build_train_loader

REPO = Path(__file__).resolve().parents[2]


def small_config(root: Path, *extra: str):
    return load_config(
        REPO / "configs" / "daaf_bot.yaml",
        [
            f"data.root={root}",
            f"data.annotations={root / 'annotations'}",
            "data.height=32",
            "data.width=16",
            "data.pad=2",
            "data.num_identities=2",
            "data.num_instances=2",
            "train.iters_per_epoch=2",
            *extra,
        ],
    )


def epochs(loader, train_set, sampler, count=2):
    out = []
    for epoch in range(count):
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        out.append([batch for batch in loader])
    return out


def test_persistent_workers_follow_the_epoch(tiny_dataset):
    """Augmentation is seeded by the epoch: a worker kept alive must see set_epoch."""
    dataset = build_dataset("market1501", tiny_dataset)
    cpu = torch.device("cpu")
    with_workers = build_train_loader(small_config(tiny_dataset, "data.workers=1"), dataset, cpu)
    assert with_workers[0].persistent_workers and with_workers[0].prefetch_factor == 4
    in_process = build_train_loader(small_config(tiny_dataset, "data.workers=0"), dataset, cpu)
    got, expected = epochs(*with_workers), epochs(*in_process)
    for got_epoch, expected_epoch in zip(got, expected, strict=True):
        for a, b in zip(got_epoch, expected_epoch, strict=True):
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(got[0][0]["images"], got[1][0]["images"])


@pytest.fixture
def broken_dataset(tiny_dataset, tmp_path) -> tuple[Path, list[Path], Path]:
    """A copy of the tiny dataset where the first training identity's images and the first
    query image are not images (a P x K pass draws every identity, not every image)."""
    root = tmp_path / "broken"
    shutil.copytree(tiny_dataset, root)
    dataset = build_dataset("market1501", root)
    pid = dataset.train[0].pid
    train = [dataset.image_dir / s.path for s in dataset.train if s.pid == pid]
    query = dataset.image_dir / dataset.query[0].path
    for path in [*train, query]:
        path.write_bytes(b"not an image")
    return root, train, query


def test_an_unreadable_training_image_is_one_line_naming_it(broken_dataset, monkeypatch):
    root, train_images, _ = broken_dataset
    # The images broke after labelling, which the store's digest check would refuse before any
    # worker starts (tests/data/test_train_store_checks.py); here the worker's error is tested.
    monkeypatch.setattr("daaf.data.train_set.check_store_images", lambda *args: None)
    cfg = small_config(root, "data.workers=1", "train.iters_per_epoch=null")
    loader, _, _ = build_train_loader(cfg, build_dataset("market1501", root), torch.device("cpu"))
    with pytest.raises(DaafError) as info:
        for _ in loader:
            pass
    messages = [f"{path}: missing or not a readable image" for path in train_images]
    assert str(info.value) in messages


def test_an_unreadable_query_image_is_one_line_naming_it(broken_dataset):
    root, _, query_image = broken_dataset
    dataset = build_dataset("market1501", root)
    meta = ModelMeta(32, 16, [0.5] * 3, [0.25] * 3)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(4))
    with pytest.raises(DaafError) as info:
        extract_features(
            model,
            dataset.query,
            dataset.image_dir,
            meta,
            torch.device("cpu"),
            FeatureOptions(batch_size=4, workers=1),
        )
    assert str(info.value) == f"{query_image}: missing or not a readable image"


def test_without_workers_the_error_is_unchanged(broken_dataset):
    root, _, query_image = broken_dataset
    dataset = build_dataset("market1501", root)
    loader = build_loader(
        EvalSet(dataset.query, dataset.image_dir, ModelMeta(8, 4, [0.5] * 3, [0.25] * 3)),
        torch.device("cpu"),
        workers=0,
        batch_size=2,
    )
    with pytest.raises(DaafError, match="not a readable image") as info:
        next(iter(loader))
    assert str(query_image) in str(info.value) and "Traceback" not in str(info.value)
