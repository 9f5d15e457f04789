"""Joint transforms keep image, mask and keypoints aligned; a flip swaps left and right."""

import numpy as np
import torch

from daaf.data.config import DataConfig
from daaf.data.device_batch import erase, normalize_images
from daaf.data.keypoints import FLIP_INDEX, KEYPOINT_NAMES
from daaf.data.transforms import (
    NO_ERASING,
    Sample3,
    erasing_rectangle,
    hflip,
    random_crop,
    resize,
    train_transform,
)


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


def visible(item):
    h, w = item.image.shape[:2]
    x, y = item.keypoints[:, 0], item.keypoints[:, 1]
    return (x >= 0) & (x < w) & (y >= 0) & (y < h)


def assert_on_bright_pixels(item):
    for x, y, _ in item.keypoints[visible(item)]:
        xi, yi = int(round(x)), int(round(y))
        assert item.image[yi, xi, 0] == 255 and item.mask[yi, xi] == 1.0


def test_flip_pad_crop_keep_keypoints_on_their_pixels():
    item = marked_item()
    rng = np.random.default_rng(1)
    for _ in range(5):
        out = random_crop(hflip(item), 32, 16, rng, pad=4)
        assert out.image.shape == (32, 16, 3) and out.mask.shape == (32, 16)
        assert visible(out).sum() >= 10
        assert_on_bright_pixels(out)


def test_flip_swaps_left_and_right_keypoints():
    item = marked_item()
    flipped = hflip(item)
    left, right = KEYPOINT_NAMES.index("left_wrist"), KEYPOINT_NAMES.index("right_wrist")
    assert FLIP_INDEX[left] == right
    assert flipped.keypoints[left, 0] == 15 - item.keypoints[right, 0]
    assert flipped.keypoints[left, 1] == item.keypoints[right, 1]
    assert flipped.keypoints[0, 0] == 15 - item.keypoints[0, 0]  # the nose stays the nose
    np.testing.assert_array_equal(hflip(flipped).keypoints, item.keypoints)


def test_resize_scales_keypoints_with_pixel_centres():
    item = marked_item(8, 4)
    out = resize(item, 16, 8)
    np.testing.assert_allclose(out.keypoints[:, 0], (item.keypoints[:, 0] + 0.5) * 2 - 0.5)
    np.testing.assert_allclose(out.keypoints[:, 1], (item.keypoints[:, 1] + 0.5) * 2 - 0.5)
    assert out.image.shape == (16, 8, 3) and out.mask.shape == (16, 8)


def test_trinet_pre_crop_resize_then_crop_keeps_alignment():
    """Upscale 2x (a bright pixel becomes a 2x2 block) then random-crop, as TriNet does."""
    cfg = DataConfig(height=56, width=28, pre_crop_size=[64, 32], pad=0, flip_prob=1.0,
                     erasing_prob=0.0)  # fmt: skip
    item = marked_item()
    item = Sample3(np.repeat(np.repeat(item.image, 2, 0), 2, 1), None, item.keypoints)
    item.mask = item.image[..., 0].astype(np.float32) / 255
    item.keypoints[:, :2] = item.keypoints[:, :2] * 2 + 0.5  # the block's centre
    small = resize(item, 32, 16)  # back to the original size: keypoints on the pixels again
    for seed in range(3):
        out, _ = train_transform(small, cfg, np.random.default_rng(seed))
        assert out.image.shape == (56, 28, 3) and out.mask.shape == (56, 28)
        for x, y, _ in out.keypoints[visible(out)]:
            # bilinear upsampling spreads each bright pixel over ~2x2: the nearest pixel is bright
            assert out.image[int(round(y)), int(round(x)), 0] > 100
            assert out.mask[int(round(y)), int(round(x))] > 0.4


def test_train_transform_is_reproducible_from_its_generator():
    cfg = DataConfig(height=32, width=16, pad=2)
    item = marked_item()
    item_a, erasing_a = train_transform(item, cfg, np.random.default_rng(7))
    item_b, erasing_b = train_transform(item, cfg, np.random.default_rng(7))
    assert item_a.image.shape == (32, 16, 3) and item_a.image.dtype == np.uint8
    np.testing.assert_array_equal(item_a.image, item_b.image)
    np.testing.assert_array_equal(item_a.keypoints, item_b.keypoints)
    assert erasing_a == erasing_b
    item_c, erasing_c = train_transform(item, cfg, np.random.default_rng(8))
    assert not np.array_equal(item_a.image, item_c.image) or erasing_a != erasing_c


def test_targets_not_learned_cost_nothing():
    """A base network's item carries no mask and no keypoints through the geometry."""
    cfg = DataConfig(height=24, width=12, pad=2, flip_prob=1.0)
    item = marked_item()
    out, _ = train_transform(Sample3(item.image, None, None), cfg, np.random.default_rng(0))
    assert out.mask is None and out.keypoints is None and out.image.shape == (24, 12, 3)


def test_random_erasing_touches_the_image_only():
    cfg = DataConfig(height=32, width=16, pad=0, flip_prob=0.0, erasing_prob=1.0)
    item = marked_item()
    out, (top, left, height, width) = train_transform(item, cfg, np.random.default_rng(0))
    assert height > 0 and width > 0
    np.testing.assert_array_equal(out.image, item.image)
    np.testing.assert_array_equal(out.mask, item.mask)
    np.testing.assert_array_equal(out.keypoints, item.keypoints)
    clean = normalize_images(torch.from_numpy(item.image), cfg.pixel_mean, cfg.pixel_std)
    image = erase(clean[None], torch.tensor([[top, left, height, width]]))[0]
    erased = torch.zeros(32, 16, dtype=torch.bool)
    erased[top : top + height, left : left + width] = True
    assert (image[:, erased] == 0).all() and torch.equal(image[:, ~erased], clean[:, ~erased])
    assert erasing_rectangle(32, 16, np.random.default_rng(0), area=(2.0, 3.0)) == NO_ERASING
    assert torch.equal(erase(clean[None], torch.tensor([NO_ERASING]))[0], clean)


def test_normalize_uses_mean_and_std_in_unit_range():
    image = np.full((2, 2, 3), 255, np.uint8)
    out = normalize_images(torch.from_numpy(image), [0.5, 0.5, 0.5], [0.25, 0.5, 1.0])
    assert out.shape == (3, 2, 2)
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([2.0, 1.0, 0.5]))
