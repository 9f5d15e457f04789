"""Training data pipeline: joint transforms, heatmaps and the P x K sampler."""

import numpy as np
import pytest

from daaf.data.heatmaps import render_heatmaps
from daaf.data.keypoints import FLIP_INDEX, KEYPOINT_NAMES
from daaf.data.sampler import PKBatchSampler
from daaf.data.transforms import Sample3, hflip, pad, random_crop, resize, train_transform
from daaf.training.config import DataConfig


def marked_item(h=32, w=16):
    """An image black but for one bright pixel per keypoint, with keypoints on those pixels."""
    rng = np.random.default_rng(0)
    image = np.zeros((h, w, 3), np.uint8)
    keypoints = np.zeros((17, 3), np.float32)
    for k in range(17):
        x, y = int(rng.integers(1, w - 1)), int(rng.integers(1, h - 1))
        image[y, x] = 255
        keypoints[k] = (x, y, 1.0)
    mask = image[..., 0].astype(np.float32) / 255
    return Sample3(image, mask, keypoints)


def assert_on_bright_pixels(item):
    for x, y, _ in item.keypoints:
        xi, yi = int(round(x)), int(round(y))
        assert item.image[yi, xi, 0] == 255 and item.mask[yi, xi] == 1.0


def test_flip_pad_crop_keep_keypoints_on_their_pixels():
    item = marked_item()
    rng = np.random.default_rng(1)
    for _ in range(5):
        out = random_crop(pad(hflip(item), 4), 32, 16, rng)
        visible = (out.keypoints[:, 0] >= 0) & (out.keypoints[:, 0] < 16)
        visible &= (out.keypoints[:, 1] >= 0) & (out.keypoints[:, 1] < 32)
        assert_on_bright_pixels(Sample3(out.image, out.mask, out.keypoints[visible]))


def test_flip_swaps_left_and_right_keypoints():
    item = marked_item()
    flipped = hflip(item)
    left, right = KEYPOINT_NAMES.index("left_wrist"), KEYPOINT_NAMES.index("right_wrist")
    assert FLIP_INDEX[left] == right
    assert flipped.keypoints[left, 0] == 15 - item.keypoints[right, 0]
    assert flipped.keypoints[left, 1] == item.keypoints[right, 1]
    np.testing.assert_array_equal(hflip(flipped).keypoints, item.keypoints)


def test_resize_scales_keypoints_with_pixel_centres():
    item = marked_item(8, 4)
    out = resize(item, 16, 8)
    np.testing.assert_allclose(out.keypoints[:, 0], (item.keypoints[:, 0] + 0.5) * 2 - 0.5)
    assert out.image.shape == (16, 8, 3) and out.mask.shape == (16, 8)


def test_train_transform_is_reproducible_from_its_generator():
    cfg = DataConfig(height=32, width=16, pad=2)
    item = marked_item()
    a, item_a = train_transform(item, cfg, np.random.default_rng(7))
    b, item_b = train_transform(item, cfg, np.random.default_rng(7))
    assert a.shape == (3, 32, 16)
    assert np.array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(item_a.keypoints, item_b.keypoints)


def test_heatmap_peak_and_thresholds():
    keypoints = np.full((17, 3), np.nan, np.float32)
    keypoints[0] = (5, 9, 0.9)
    keypoints[1] = (5, 9, 0.1)  # below threshold
    keypoints[2] = (40, 9, 1.0)  # outside the map
    maps = render_heatmaps(keypoints, (32, 16), sigma=2.0, score_threshold=0.3)
    assert maps.shape == (17, 32, 16)
    assert maps[0].max() == 1.0 and np.unravel_index(maps[0].argmax(), (32, 16)) == (9, 5)
    assert maps[0, 9, 7] == pytest.approx(np.exp(-4 / 8))
    assert not maps[1:].any()


def test_pk_sampler_structure_determinism_and_ranks():
    pids = np.repeat(np.arange(10), [6, 5, 4, 3, 2, 6, 5, 4, 3, 8])
    sampler = PKBatchSampler(pids, num_identities=4, num_instances=2, seed=3)
    batches = list(sampler)
    assert batches and all(len(b) == 8 for b in batches)
    for batch in batches:
        ids = pids[batch]
        assert len(set(ids)) == 4 and all((ids == i).sum() == 2 for i in set(ids))
    assert batches == list(PKBatchSampler(pids, 4, 2, seed=3))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    ranks = [list(PKBatchSampler(pids, 4, 2, seed=3, rank=r, world_size=2)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1])
    assert not {tuple(b) for b in ranks[0]} & {tuple(b) for b in ranks[1]}
    assert (
        ranks[0] + ranks[1]
        == [b for i, b in enumerate(batches) if i < 2 * len(ranks[0])][0::2]
        + [b for i, b in enumerate(batches) if i < 2 * len(ranks[0])][1::2]
    )


def test_pk_sampler_needs_p_identities():
    with pytest.raises(ValueError, match="at least P=4 identities"):
        PKBatchSampler([0, 0, 1, 1], num_identities=4, num_instances=2)
