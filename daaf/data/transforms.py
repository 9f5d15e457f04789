"""Joint training transforms: one geometry applied to the image, the person mask and the keypoints.

Order (BoT): resize -> pad + random crop, mirrored with probability ``flip_prob`` (one
zero-filled window; a flip also swaps left/right keypoints) -> random erasing (image only).
TriNet instead resizes to ``pre_crop_size`` and random-crops to (height, width). Workers run
the geometry on uint8 arrays and hand the erasing rectangle over; normalisation and erasing run
batched on the device (``daaf.data.device_batch``). An epoch's random draws are made at once
(``draw_augmentations``) from a generator seeded by the seed and the epoch, so an image's
augmentation does not depend on the DataLoader's worker layout.

Keypoints stay in the annotation store's frame throughout: pixel (c, r) covers [c, c + 1) x
[r, r + 1) (torchvision, detectron2), so a resize scales x by the size ratio, a mirror maps x to
W - x, and a keypoint on a pixel's centre has coordinates c + 0.5 (docs/annotations.md).
``cv2.resize`` and ``cv2.flip`` move the image and mask by the same maps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import torch

from daaf.data.config import DataConfig
from daaf.data.device_batch import normalize_images
from daaf.data.keypoints import FLIP_INDEX, resize_keypoints

NO_ERASING = (0, 0, 0, 0)
ERASING_TRIES = 10
FLIP_ORDER = np.array(FLIP_INDEX)


@dataclass
class Sample3:
    """An image with its person mask and keypoints, covering the same scene.

    image: uint8 (H, W, 3) RGB; mask: (h, w), uint8 or float in [0, 1], at any size (the
    store's) until ``resize`` brings it to the image's grid; keypoints: float32 (17, 3) in the
    image's pixels. A target the network does not learn is None and costs nothing.
    """

    image: np.ndarray
    mask: np.ndarray | None
    keypoints: np.ndarray | None


class Augmentation(NamedTuple):
    """One sample's random draws: mirror it or not, the (top, left) of its crop window in the
    resized image (negative: in the zero padding) and its erasing rectangle (top, left,
    height, width; ``NO_ERASING`` for none)."""

    flip: bool
    top: int
    left: int
    erasing: tuple[int, int, int, int]


def _apply(value: np.ndarray | None, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray | None:
    return None if value is None else fn(value)


def resize(item: Sample3, height: int, width: int) -> Sample3:
    """Resize all three to (height, width), the mask straight from its own size; keypoints
    scale by the size ratio (the store's continuous frame; ``cv2.resize`` maps pixel centres
    c + 0.5 to (c + 0.5) * ratio, the same map)."""
    size = item.image.shape[:2]

    def scale(keypoints: np.ndarray) -> np.ndarray:
        return resize_keypoints(keypoints, size, (height, width))

    def linear(array: np.ndarray) -> np.ndarray:
        if array.shape[:2] == (height, width):  # e.g. a mask stored at the training size
            return array
        return cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)

    return Sample3(linear(item.image), _apply(item.mask, linear), _apply(item.keypoints, scale))


def crop(
    item: Sample3, top: int, left: int, height: int, width: int, flip: bool = False
) -> Sample3:
    """The (height, width) window at (top, left), mirrored left-right when ``flip`` (the
    person's left keypoints then become right ones, COCO flip order; x becomes width - x, as
    pixel [c, c + 1) becomes [width - c - 1, width - c)). Where the window leaves
    the image it is zero: the padding of pad + random crop, without a padded copy. One copy
    per array."""

    def place(keypoints: np.ndarray) -> np.ndarray:
        keypoints = keypoints - np.array([left, top, 0], np.float32)
        if flip:
            keypoints = keypoints[FLIP_ORDER]
            keypoints[:, 0] = width - keypoints[:, 0]
        return keypoints

    def window(array: np.ndarray) -> np.ndarray:
        out = np.zeros((height, width, *array.shape[2:]), array.dtype)
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + height, array.shape[0]), min(left + width, array.shape[1])
        if y1 > y0 and x1 > x0:
            source = array[y0:y1, x0:x1]
            if flip:  # the columns [x0, x1) of the window land mirrored
                cv2.flip(
                    source, 1, dst=out[y0 - top : y1 - top, left + width - x1 : left + width - x0]
                )
            else:
                out[y0 - top : y1 - top, x0 - left : x1 - left] = source
        return out

    return Sample3(window(item.image), _apply(item.mask, window), _apply(item.keypoints, place))


def erasing_rectangles(
    count: int,
    height: int,
    width: int,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 3.3),
) -> np.ndarray:
    """Zhong et al.'s random erasing for ``count`` images: int (count, 4) top, left, height,
    width of the rectangle to set to 0 after normalisation; the first of ten (area, aspect
    ratio) draws that fits the image, ``NO_ERASING`` when none does."""
    target = rng.uniform(*area, (count, ERASING_TRIES)) * height * width
    aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1]), (count, ERASING_TRIES)))
    heights = np.rint(np.sqrt(target * aspect)).astype(np.int64)
    widths = np.rint(np.sqrt(target / aspect)).astype(np.int64)
    fits = (heights > 0) & (heights < height) & (widths > 0) & (widths < width)
    found, first = fits.any(axis=1), fits.argmax(axis=1)[:, None]
    eh = np.where(found, np.take_along_axis(heights, first, 1)[:, 0], 0)
    ew = np.where(found, np.take_along_axis(widths, first, 1)[:, 0], 0)
    top, left = rng.integers(0, height - eh + 1), rng.integers(0, width - ew + 1)
    rectangles = np.stack([top, left, eh, ew], axis=1)
    rectangles[~found] = NO_ERASING
    return rectangles


def crop_offsets(
    count: int, size: tuple[int, int], window: tuple[int, int], pad: int, rng: np.random.Generator
) -> np.ndarray:
    """int (count, 2) top, left of random (height, width) ``window``s of an image of ``size``
    zero-padded by ``pad`` on every side."""
    room = np.array(size) + 2 * pad - np.array(window) + 1
    return rng.integers(0, room, (count, 2)) - pad


def draw_augmentations(count: int, cfg: DataConfig, rng: np.random.Generator) -> list[Augmentation]:
    """The random draws of ``count`` samples at once (a generator per sample would cost a
    worker more than its geometry): flip with ``cfg.flip_prob``, the crop window (TriNet: in
    the ``pre_crop_size`` image; BoT: in the image padded by ``cfg.pad``; else none) and the
    erasing rectangle with ``cfg.erasing_prob``."""
    window = (cfg.height, cfg.width)
    flips = rng.random(count) < cfg.flip_prob
    if cfg.pre_crop_size:
        offsets = crop_offsets(count, tuple(cfg.pre_crop_size), window, 0, rng)
    else:
        offsets = crop_offsets(count, window, window, cfg.pad, rng)
    erasing = erasing_rectangles(count, *window, rng)
    erasing[rng.random(count) >= cfg.erasing_prob] = NO_ERASING
    return [
        Augmentation(flip, top, left, tuple(rectangle))
        for flip, (top, left), rectangle in zip(
            flips.tolist(), offsets.tolist(), erasing.tolist(), strict=True
        )
    ]


def train_transform(item: Sample3, cfg: DataConfig, augmentation: Augmentation) -> Sample3:
    """The training geometry: resize (to ``pre_crop_size`` for TriNet), then the augmentation's
    crop window, mirrored when it says so. Erasing is left to the device."""
    item = resize(item, *(cfg.pre_crop_size or (cfg.height, cfg.width)))
    top, left, flip = augmentation.top, augmentation.left, augmentation.flip
    return crop(item, top, left, cfg.height, cfg.width, flip=flip)


def eval_resize(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 (height, width, 3): what evaluation's workers hand over."""
    return torch.from_numpy(cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR))


def eval_transform(
    image: np.ndarray, height: int, width: int, mean: list[float], std: list[float]
) -> torch.Tensor:
    """Resize + normalise: what evaluation and export feed the network."""
    return normalize_images(eval_resize(image, height, width), mean, std)
