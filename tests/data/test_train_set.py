"""The training set: images joined with their stored masks and keypoints, one geometry for all."""

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from daaf.data.annotations import AnnotationStore
from daaf.data.config import DataConfig
from daaf.data.datasets import Sample, build_dataset
from daaf.data.device_batch import prepare_batch
from daaf.data.train_set import TrainSet, open_store_for
from daaf.errors import DaafError


def test_items_follow_the_contract_and_stay_aligned(tiny_dataset):
    """The fixture draws flat-coloured blocks on noise: mask and keypoints must land on the block."""
    dataset = build_dataset("market1501", tiny_dataset)
    store = open_store_for(dataset.train, tiny_dataset / "annotations", "market1501")
    assert store.mask_size != (64, 32)  # masks come back at the store's size and get resized
    cfg = DataConfig(height=64, width=32, pad=4, flip_prob=0.5, erasing_prob=0.0)
    cfg.keypoint_score_threshold = 0.3  # resolved, as build_train_set does
    train_set = TrainSet(
        dataset.train, dataset.image_dir, cfg, store, 0, masks=True, keypoints=True
    )
    items = [train_set[index] for index in range(6)]
    assert items[0]["images"].shape == (64, 32, 3) and items[0]["images"].dtype == torch.uint8
    assert items[0]["masks"].shape == (1, 64, 32) and items[0]["masks"].dtype == torch.uint8
    assert items[0]["keypoints"].shape == (17, 3)
    batch = prepare_batch(default_collate(items), cfg, torch.device("cpu"))
    for index in range(6):
        item = {key: value[index] for key, value in batch.items()}
        assert item["images"].shape == (3, 64, 32) and item["images"].dtype == torch.float32
        assert item["masks"].shape == (1, 64, 32) and item["heatmaps"].shape == (17, 64, 32)
        assert item["pids"] == dataset.train[index].pid and item["valid"].item() is True
        mask = item["masks"][0]
        assert mask.min() >= 0 and mask.max() <= 1
        inside, outside = mask > 0.99, mask < 0.01
        # image texture: flat inside the block, noise outside (misalignment would mix them)
        rough = (item["images"][:, :, 1:] - item["images"][:, :, :-1]).abs().sum(0)
        assert rough[inside[:, 1:] & inside[:, :-1]].mean() < 0.3 * rough[outside[:, 1:]].mean()
        for heatmap in item["heatmaps"]:
            if heatmap.max() > 0.5:
                y, x = np.unravel_index(int(heatmap.argmax()), heatmap.shape)
                assert mask[y, x] > 0.99
        assert (item["heatmaps"].amax(dim=(1, 2)) > 0.9).sum() >= 12
    again = TrainSet(dataset.train, dataset.image_dir, cfg, store, 0, masks=True, keypoints=True)
    assert all(torch.equal(again[3][k], train_set[3][k]) for k in again[3])


def test_augmentation_is_a_function_of_seed_epoch_and_index(tiny_dataset):
    """Whatever the order or the process a sample is made in; a new epoch or seed draws anew."""
    dataset = build_dataset("market1501", tiny_dataset)
    cfg = DataConfig(height=32, width=16, pad=4, flip_prob=0.5, erasing_prob=0.5)

    def train_set(seed: int) -> TrainSet:
        return TrainSet(dataset.train, dataset.image_dir, cfg, seed=seed)

    forward, backward = train_set(0), train_set(0)
    later = [backward[i] for i in reversed(range(len(backward)))][::-1]
    for a, b in zip([forward[i] for i in range(len(forward))], later, strict=True):
        assert all(torch.equal(a[key], b[key]) for key in a)
    draws = forward.augmentations(0)
    assert len(draws) == len(dataset.train) and draws == train_set(0).augmentations(0)
    assert draws != train_set(1).augmentations(0) and draws != forward.augmentations(1)
    forward.set_epoch(1)
    other = train_set(0)
    assert torch.equal(forward[3]["images"], other.item(3, other.augmentations(1)[3])["images"])
    assert {a.flip for a in draws} == {True, False} and len({a.erasing for a in draws}) > 10


def test_without_a_store_there_are_no_branch_targets(tiny_dataset):
    dataset = build_dataset("market1501", tiny_dataset)
    item = TrainSet(dataset.train, dataset.image_dir, DataConfig(height=32, width=16))[0]
    assert set(item) == {"images", "pids", "valid", "erasing"} and item["valid"].item() is False
    assert item["images"].shape == (32, 16, 3)
    with pytest.raises(ValueError, match="annotation store"):
        TrainSet(dataset.train, dataset.image_dir, DataConfig(), masks=True)


def test_only_the_targets_asked_for_are_handed_over(tiny_dataset):
    dataset = build_dataset("market1501", tiny_dataset)
    store = open_store_for(dataset.train, tiny_dataset / "annotations", "market1501")
    cfg = DataConfig(height=32, width=16)
    hab = TrainSet(dataset.train, dataset.image_dir, cfg, store, masks=True)[0]
    pab = TrainSet(dataset.train, dataset.image_dir, cfg, store, keypoints=True)[0]
    assert "masks" in hab and "keypoints" not in hab and hab["valid"].item() is True
    assert "keypoints" in pab and "masks" not in pab


def test_missing_images_are_listed(tiny_dataset):
    store = tiny_dataset / "annotations"
    train = build_dataset("market1501", tiny_dataset).train
    unlabeled = [
        Sample(f"bounding_box_train/{i:04d}_c1s1_000001_00.jpg", 0, 0) for i in (90, 91, 92)
    ]
    with pytest.raises(DaafError, match="does not cover the training split: 3 of 51") as info:
        open_store_for(train + unlabeled, store, "market1501")
    assert all(sample.path in str(info.value) for sample in unlabeled)
    assert str(store) in str(info.value)


def test_store_of_another_dataset_is_refused(tiny_dataset):
    train = build_dataset("market1501", tiny_dataset).train
    with pytest.raises(DaafError, match="made for dataset 'market1501', not 'dukemtmc'"):
        open_store_for(train, tiny_dataset / "annotations", "dukemtmc")
    assert len(AnnotationStore(tiny_dataset / "annotations")) == 96
