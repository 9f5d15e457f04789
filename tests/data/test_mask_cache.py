"""The decoded-mask cache: the store's masks, row for row, mapped by every worker, cleaned up."""

import gc
import io
import os
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from daaf.data.config import DataConfig
from daaf.data.datasets import build_dataset
from daaf.data.mask_cache import MaskCache
from daaf.data.train_set import TrainSet, open_store_for
from daaf.errors import DaafError


def test_rows_equal_the_stores_masks_and_the_file_goes_with_its_maker(tiny_dataset):
    dataset = build_dataset("market1501", tiny_dataset)
    store = open_store_for(dataset.train, tiny_dataset / "annotations", "market1501")
    names = [sample.path for sample in dataset.train][::-1]  # not the store's order
    cache = MaskCache(store, names)
    expected = store.masks(names)
    assert cache.rows.shape == expected.shape and not cache.rows.flags.writeable
    assert np.array_equal(cache.rows, expected) and expected.any()
    copy = pickle.loads(pickle.dumps(cache))  # what a spawned worker gets: the path, not rows
    assert len(pickle.dumps(cache)) < 1000 and np.array_equal(copy[5], expected[5])
    path = cache.path
    del cache, copy
    gc.collect()
    assert not path.exists()


def test_cached_and_stored_masks_make_the_same_samples(tiny_dataset):
    dataset = build_dataset("market1501", tiny_dataset)
    store = open_store_for(dataset.train, tiny_dataset / "annotations", "market1501")

    def train_set(cache: bool) -> TrainSet:
        cfg = DataConfig(height=64, width=32, pad=4, cache_masks=cache)
        return TrainSet(dataset.train, dataset.image_dir, cfg, store, 3, masks=True)

    cached, stored = train_set(True), train_set(False)
    assert cached._masks is not None and stored._masks is None
    for index in range(len(dataset.train)):
        a, b = cached[index], stored[index]
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    workers = DataLoader(cached, batch_size=8, num_workers=2, multiprocessing_context="spawn")
    batches = list(workers)
    assert torch.equal(batches[1]["masks"], torch.stack([stored[i]["masks"] for i in range(8, 16)]))


def test_a_cache_that_cannot_be_written_says_what_to_do(tiny_dataset, tmp_path, monkeypatch):
    import daaf.data.mask_cache as mask_cache

    dataset = build_dataset("market1501", tiny_dataset)
    store = open_store_for(dataset.train, tiny_dataset / "annotations", "market1501")
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    written = []

    class FullDisk(io.FileIO):
        """Takes the .npy header, then runs out of space, as a full TMPDIR would."""

        def write(self, data):
            if written:
                raise OSError(28, os.strerror(28))
            written.append(len(data))
            return super().write(data)

    monkeypatch.setattr(mask_cache, "open", FullDisk, raising=False)
    with pytest.raises(DaafError, match="No space left on device; .*data.cache_masks=false"):
        MaskCache(store, [sample.path for sample in dataset.train])
    gc.collect()
    assert written and not any(folder.iterdir())  # nothing half-made left behind
