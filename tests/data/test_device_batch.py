"""The device side of a batch: heatmaps, images and masks equal what the workers made on main."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from daaf.data.datasets import build_dataset
from daaf.data.device_batch import prepare_batch, render_heatmap_batch
from daaf.data.transforms import Augmentation
from daaf.training.config import load_config
from daaf.training.trainer import build_train_set

REPO = Path(__file__).resolve().parents[2]
MAKER = REPO / "tests" / "data" / "fixtures" / "make_pipeline_reference.py"
# Masks resized once vs main's twice: the largest and the mean difference allowed (measured
# 0.062 and 0.003 for DAAF-BoT, 0.075 and 0.006 for DAAF-TriNet).
MASK_MAX, MASK_MEAN = 0.08, 0.01


def reference_heatmaps(
    keypoints: np.ndarray, size: tuple[int, int], sigma: float, score_threshold: float
) -> np.ndarray:
    """The per-keypoint numpy renderer the workers ran before issue 11: (K, 3) -> (K, H, W)."""
    height, width = size
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    maps = np.zeros((len(keypoints), height, width), np.float32)
    for k, (x, y, score) in enumerate(keypoints):
        inside = 0 <= x <= width - 1 and 0 <= y <= height - 1  # False for NaN
        if score < score_threshold or not inside:
            continue
        maps[k] = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return maps


def reference_maker():
    """The script that made the reference fixture: its configs, seeds and sample indices."""
    spec = importlib.util.spec_from_file_location("make_pipeline_reference", MAKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("size", [(32, 16), (64, 32)])
def test_device_heatmaps_equal_the_renderer(size):
    height, width = size
    rng = np.random.default_rng(0)
    keypoints = np.stack(
        [
            rng.uniform(-5, width + 5, (6, 17)),  # some centres outside the map
            rng.uniform(-5, height + 5, (6, 17)),
            rng.uniform(0, 1, (6, 17)),  # some scores below the threshold
        ],
        axis=-1,
    ).astype(np.float32)
    keypoints[0, :4] = np.nan  # the store's "not found"
    keypoints[1, 2, 0] = np.nan
    keypoints[2, 3] = (width - 1, height - 1, 0.3)  # on the border, at the threshold
    keypoints[3, 4] = (0.0, 0.0, np.nan)
    expected = np.stack([reference_heatmaps(k, size, 2.0, 0.3) for k in keypoints])
    got = render_heatmap_batch(torch.from_numpy(keypoints), size, 2.0, 0.3)
    assert got.shape == (6, 17, height, width) and got.dtype == torch.float32
    assert expected.any(axis=(2, 3)).sum() > 20 and (~expected.any(axis=(2, 3))).sum() > 20
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-6)


def test_images_masks_and_heatmaps_equal_mains(tiny_dataset):
    """Against the fixture main's TrainSet made (before workers handed over uint8 tensors), given
    the augmentation main drew (stored with it): images bit-identical, heatmaps to 1e-6.

    Masks are resized once, from the store's 256x128 straight to 32x16, where main went
    through the image's 64x32 first: they sample other store pixels, so they differ along the
    mask's soft edge, by up to ``MASK_MAX`` and ``MASK_MEAN`` on average, with the same mass.
    """
    maker = reference_maker()
    reference = np.load(maker.OUT)
    dataset = build_dataset("market1501", tiny_dataset)
    root = [f"data.root={tiny_dataset}", f"data.annotations={tiny_dataset / 'annotations'}"]
    erased = flipped = 0
    for name, (file, overrides) in maker.CONFIGS.items():
        for seed in maker.SEEDS:
            cfg = load_config(REPO / "configs" / file, [*overrides, *root, f"train.seed={seed}"])
            train_set = build_train_set(cfg, dataset)
            key = f"{name}.seed{seed}"
            draws = zip(
                reference[f"{key}.flip"].tolist(),
                reference[f"{key}.crop"].tolist(),
                reference[f"{key}.erasing"].tolist(),
                strict=True,
            )
            augmentations = [Augmentation(f, *crop, tuple(e)) for f, crop, e in draws]
            items = [
                train_set.item(i, a) for i, a in zip(maker.INDICES, augmentations, strict=True)
            ]
            erased += sum(a.erasing[2] > 0 for a in augmentations)
            flipped += sum(a.flip for a in augmentations)
            batch = prepare_batch(default_collate(items), cfg.data, torch.device("cpu"))
            daaf = cfg.model.hab or cfg.model.pab
            assert ("masks" in batch) == ("heatmaps" in batch) == daaf
            np.testing.assert_array_equal(batch["images"].numpy(), reference[f"{key}.images"])
            if daaf:
                heatmaps, masks = reference[f"{key}.heatmaps"], reference[f"{key}.masks"]
                np.testing.assert_allclose(batch["heatmaps"].numpy(), heatmaps, rtol=0, atol=1e-6)
                difference = np.abs(batch["masks"].numpy() - masks)
                assert difference.max() <= MASK_MAX and difference.mean() <= MASK_MEAN, key
                assert batch["masks"].sum().item() == pytest.approx(masks.sum(), rel=1e-3), key
    assert erased >= 3 and flipped >= 3  # erasing and the flip are among what is compared


def test_a_base_networks_batch_has_no_branch_targets(tiny_dataset):
    cfg = load_config(REPO / "configs" / "bot.yaml", [f"data.root={tiny_dataset}"])
    train_set = build_train_set(cfg, build_dataset("market1501", tiny_dataset))
    worker_batch = default_collate([train_set[0], train_set[1]])
    assert set(worker_batch) == {"images", "pids", "valid", "erasing"}
    batch = prepare_batch(worker_batch, cfg.data, torch.device("cpu"))
    assert set(batch) == {"images", "pids", "valid"}
    assert batch["images"].shape == (2, 3, 256, 128) and batch["images"].dtype == torch.float32


def test_a_daaf_bot_batch_of_64_stays_well_under_64_mb(tiny_dataset):
    """Docker's default /dev/shm is 64 MB: a worker's batch must fit many times over."""
    cfg = load_config(
        REPO / "configs" / "daaf_bot.yaml",
        [f"data.root={tiny_dataset}", f"data.annotations={tiny_dataset / 'annotations'}"],
    )
    item = build_train_set(cfg, build_dataset("market1501", tiny_dataset))[0]
    assert item["images"].shape == (256, 128, 3) and set(item) >= {"masks", "keypoints"}
    per_sample = sum(t.numel() * t.element_size() for t in item.values())
    assert per_sample <= 150 * 1024
    assert 64 * per_sample < 16 * 2**20
