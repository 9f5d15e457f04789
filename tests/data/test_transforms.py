"""Joint transforms keep image, mask and keypoints aligned; a flip swaps left and right; an
epoch's draws follow the configured probabilities and ranges."""

import cv2
import numpy as np
import pytest
import torch

from daaf.data.config import DataConfig
from daaf.data.device_batch import erase, normalize_images
from daaf.data.keypoints import FLIP_INDEX, KEYPOINT_NAMES
from daaf.data.transforms import (
    NO_ERASING,
    Augmentation,
    Sample3,
    crop,
    draw_augmentations,
    erasing_rectangles,
    resize,
    train_transform,
)


def marked_item(h=32, w=16):
    """An image black but for one bright pixel per keypoint, with keypoints on those pixels'
    centres (pixel c covers [c, c + 1): its centre is c + 0.5)."""
    rng = np.random.default_rng(0)
    image = np.zeros((h, w, 3), np.uint8)
    keypoints = np.zeros((17, 3), np.float32)
    for k in range(17):
        x, y = int(rng.integers(1, w - 1)), int(rng.integers(1, h - 1))
        image[y, x] = 255
        keypoints[k] = (x + 0.5, y + 0.5, 1.0)
    mask = image[..., 0].astype(np.float32) / 255
    return Sample3(image, mask, keypoints)


def visible(item):
    h, w = item.image.shape[:2]
    x, y = np.floor(item.keypoints[:, 0]), np.floor(item.keypoints[:, 1])  # the pixel it is on
    return (x >= 0) & (x < w) & (y >= 0) & (y < h)


def assert_on_bright_pixels(item):
    for x, y, _ in item.keypoints[visible(item)]:
        xi, yi = int(np.floor(x)), int(np.floor(y))
        assert item.image[yi, xi, 0] == 255 and item.mask[yi, xi] == 1.0


def test_flip_pad_crop_keep_keypoints_on_their_pixels():
    item = marked_item()
    for top, left, flip in [(-4, 3, True), (2, -4, False), (4, 4, True), (-3, -2, False)]:
        out = crop(item, top, left, 32, 16, flip=flip)
        assert out.image.shape == (32, 16, 3) and out.mask.shape == (32, 16)
        assert visible(out).sum() >= 10
        assert_on_bright_pixels(out)


def test_a_flipped_crop_is_the_crop_mirrored():
    """One copy does both: the window first (zero outside the image), then the mirror."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 16, 3), dtype=np.uint8)
    item = Sample3(image, image[..., 0].copy(), None)
    for top, left in [(-3, 2), (0, 0), (3, -4), (-5, -5), (40, 0)]:
        plain, flipped = crop(item, top, left, 32, 16), crop(item, top, left, 32, 16, flip=True)
        np.testing.assert_array_equal(flipped.image, cv2.flip(plain.image, 1))
        np.testing.assert_array_equal(flipped.mask, cv2.flip(plain.mask, 1))
    assert not crop(item, 40, 0, 32, 16).image.any()  # a window off the image is all padding


def test_flip_swaps_left_and_right_keypoints():
    item = marked_item()
    flipped = crop(item, 0, 0, 32, 16, flip=True)
    left, right = KEYPOINT_NAMES.index("left_wrist"), KEYPOINT_NAMES.index("right_wrist")
    assert FLIP_INDEX[left] == right
    assert flipped.keypoints[left, 0] == 16 - item.keypoints[right, 0]  # x -> W - x
    assert flipped.keypoints[left, 1] == item.keypoints[right, 1]
    assert flipped.keypoints[0, 0] == 16 - item.keypoints[0, 0]  # the nose stays the nose
    np.testing.assert_array_equal(crop(flipped, 0, 0, 32, 16, flip=True).keypoints, item.keypoints)


def test_resize_scales_keypoints_by_the_size_ratio():
    """The store's frame: x -> x * s, so pixel [c, c + 1) becomes [c * s, (c + 1) * s)."""
    item = marked_item(8, 4)
    out = resize(item, 16, 12)
    np.testing.assert_allclose(out.keypoints[:, 0], item.keypoints[:, 0] * 3)
    np.testing.assert_allclose(out.keypoints[:, 1], item.keypoints[:, 1] * 2)
    assert out.image.shape == (16, 12, 3) and out.mask.shape == (16, 12)


def test_resize_takes_the_mask_straight_from_its_own_size():
    """A mask stored at another size than the image (the store's) goes to the target once."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (16, 8, 3), dtype=np.uint8)
    stored = rng.integers(0, 256, (64, 32), dtype=np.uint8)
    out = resize(Sample3(image, stored, None), 32, 16)
    np.testing.assert_array_equal(out.mask, cv2.resize(stored, (16, 32)))
    assert resize(Sample3(image, stored, None), 64, 32).mask is stored  # already there: as is


def test_trinet_pre_crop_resize_then_crop_keeps_alignment():
    """Upscale 2x (a bright pixel becomes a 2x2 block) then random-crop, as TriNet does."""
    cfg = DataConfig(
        height=56, width=28, pre_crop_size=[64, 32], pad=0, flip_prob=1.0, erasing_prob=0.0
    )
    item = marked_item()
    item = Sample3(np.repeat(np.repeat(item.image, 2, 0), 2, 1), None, item.keypoints)
    item.mask = item.image[..., 0].astype(np.float32) / 255
    item.keypoints[:, :2] = item.keypoints[:, :2] * 2  # the block's centre
    small = resize(item, 32, 16)  # back to the original size: keypoints on the pixels again
    for augmentation in draw_augmentations(3, cfg, np.random.default_rng(0)):
        assert augmentation.flip and 0 <= augmentation.top <= 8 and 0 <= augmentation.left <= 4
        out = train_transform(small, cfg, augmentation)
        assert out.image.shape == (56, 28, 3) and out.mask.shape == (56, 28)
        for x, y, _ in out.keypoints[visible(out)]:
            # bilinear upsampling spreads each bright pixel over ~2x2: the pixel under it is bright
            assert out.image[int(y), int(x), 0] > 100
            assert out.mask[int(y), int(x)] > 0.4


def test_train_transform_is_the_crop_of_the_resized_item():
    cfg = DataConfig(height=32, width=16, pad=2)
    item = marked_item(16, 8)
    out = train_transform(item, cfg, Augmentation(True, -2, 1, NO_ERASING))
    expected = crop(resize(item, 32, 16), -2, 1, 32, 16, flip=True)
    assert out.image.shape == (32, 16, 3) and out.image.dtype == np.uint8
    np.testing.assert_array_equal(out.image, expected.image)
    np.testing.assert_array_equal(out.mask, expected.mask)
    np.testing.assert_array_equal(out.keypoints, expected.keypoints)


def test_targets_not_learned_cost_nothing():
    """A base network's item carries no mask and no keypoints through the geometry."""
    cfg = DataConfig(height=24, width=12, pad=2, flip_prob=1.0)
    item = marked_item()
    out = train_transform(
        Sample3(item.image, None, None), cfg, Augmentation(True, 1, 2, NO_ERASING)
    )
    assert out.mask is None and out.keypoints is None and out.image.shape == (24, 12, 3)


def test_draws_are_reproducible_from_their_generator():
    cfg = DataConfig(height=32, width=16, pad=2)
    first = draw_augmentations(50, cfg, np.random.default_rng(7))
    assert first == draw_augmentations(50, cfg, np.random.default_rng(7))
    assert first != draw_augmentations(50, cfg, np.random.default_rng(8))
    assert all(isinstance(a.flip, bool) and isinstance(a.top, int) for a in first)


def test_draws_follow_the_configured_distribution():
    """Flip and erasing at their probabilities, BoT's crop offsets uniform over [-pad, pad]."""
    count = 20_000
    cfg = DataConfig(height=256, width=128, pad=10, flip_prob=0.5, erasing_prob=0.3)
    draws = draw_augmentations(count, cfg, np.random.default_rng(0))
    flips = np.array([a.flip for a in draws])
    offsets = np.array([(a.top, a.left) for a in draws])
    erasing = np.array([a.erasing for a in draws])
    tolerance = 4 * np.sqrt(0.25 / count)  # four standard deviations of a frequency
    assert abs(flips.mean() - 0.5) < tolerance
    assert abs((erasing[:, 2] > 0).mean() - 0.3) < tolerance
    for axis in range(2):
        counts = np.bincount(offsets[:, axis] + 10)
        assert len(counts) == 21 and offsets[:, axis].min() == -10  # every offset in [-10, 10]
        assert abs(counts / count - 1 / 21).max() < 4 * np.sqrt(1 / 21 / count)
    none = DataConfig(height=32, width=16, pad=0, flip_prob=0.0, erasing_prob=0.0)
    plain = draw_augmentations(100, none, np.random.default_rng(0))
    assert set(plain) == {Augmentation(False, 0, 0, NO_ERASING)}


def test_erasing_rectangles_fit_and_follow_area_and_aspect():
    rectangles = erasing_rectangles(5000, 256, 128, np.random.default_rng(0))
    top, left, height, width = rectangles.T
    assert (height > 0).all() and (width > 0).all()  # 256x128 always fits within ten tries
    assert (top >= 0).all() and (top + height <= 256).all()
    assert (left >= 0).all() and (left + width <= 128).all()
    area = height * width / (256 * 128)
    assert area.min() > 0.015 and area.max() < 0.42  # (0.02, 0.4), up to rounding
    aspect = height / width
    assert aspect.min() > 0.25 and aspect.max() < 3.5  # (0.3, 3.3), up to rounding
    square = erasing_rectangles(5000, 128, 128, np.random.default_rng(0))
    assert abs(np.median(np.log(square[:, 2] / square[:, 3]))) < 0.05  # log-uniform around 1
    impossible = erasing_rectangles(10, 32, 16, np.random.default_rng(0), area=(2.0, 3.0))
    assert (impossible == NO_ERASING).all()


@pytest.mark.parametrize("rectangle", [(3, 2, 10, 5), NO_ERASING])
def test_random_erasing_sets_the_rectangle_to_the_mean(rectangle):
    cfg = DataConfig(height=32, width=16)
    clean = normalize_images(torch.from_numpy(marked_item().image), cfg.pixel_mean, cfg.pixel_std)
    image = erase(clean[None], torch.tensor([rectangle]))[0]
    top, left, height, width = rectangle
    erased = torch.zeros(32, 16, dtype=torch.bool)
    erased[top : top + height, left : left + width] = True
    assert (image[:, erased] == 0).all() and torch.equal(image[:, ~erased], clean[:, ~erased])
