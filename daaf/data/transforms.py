"""Joint training transforms: one geometry applied to the image, the person mask and the keypoints.

Order (BoT): resize -> horizontal flip (also swaps left/right keypoints) -> pad + random crop
(one zero-filled crop) -> random erasing (image only). TriNet instead resizes to ``pre_crop_size`` and random-crops to
(height, width). Workers run the geometry on uint8 arrays and only draw the erasing rectangle;
normalisation and erasing run batched on the device (``daaf.data.device_batch``). Randomness
comes from a ``numpy.random.Generator`` the caller seeds, so an image's augmentation does not
depend on the DataLoader's worker layout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from daaf.data.config import DataConfig
from daaf.data.device_batch import normalize_images
from daaf.data.keypoints import FLIP_INDEX

NO_ERASING = (0, 0, 0, 0)


@dataclass
class Sample3:
    """An image with its person mask and keypoints, in the same pixel frame.

    image: uint8 (H, W, 3) RGB; mask: (H, W), uint8 or float in [0, 1]; keypoints: float32
    (17, 3). A target the network does not learn is None and costs nothing.
    """

    image: np.ndarray
    mask: np.ndarray | None
    keypoints: np.ndarray | None


def _apply(value: np.ndarray | None, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray | None:
    return None if value is None else fn(value)


def resize(item: Sample3, height: int, width: int) -> Sample3:
    """Resize all three; keypoints scale with the pixel grid (pixel centres stay aligned)."""
    h, w = item.image.shape[:2]

    def scale(keypoints: np.ndarray) -> np.ndarray:
        keypoints = keypoints.copy()
        keypoints[:, 0] = (keypoints[:, 0] + 0.5) * (width / w) - 0.5
        keypoints[:, 1] = (keypoints[:, 1] + 0.5) * (height / h) - 0.5
        return keypoints

    def linear(array: np.ndarray) -> np.ndarray:
        return cv2.resize(array, (width, height), interpolation=cv2.INTER_LINEAR)

    return Sample3(linear(item.image), _apply(item.mask, linear), _apply(item.keypoints, scale))


def hflip(item: Sample3) -> Sample3:
    """Mirror left-right; the person's left keypoints become right ones (COCO flip order)."""
    width = item.image.shape[1]

    def mirror(keypoints: np.ndarray) -> np.ndarray:
        keypoints = keypoints[list(FLIP_INDEX)].copy()
        keypoints[:, 0] = width - 1 - keypoints[:, 0]
        return keypoints

    def flip(array: np.ndarray) -> np.ndarray:
        return cv2.flip(array, 1)  # 1: around the vertical axis

    return Sample3(flip(item.image), _apply(item.mask, flip), _apply(item.keypoints, mirror))


def crop(item: Sample3, top: int, left: int, height: int, width: int) -> Sample3:
    """The (height, width) window at (top, left); where it leaves the image it is zero (the
    padding of pad + random crop, without a padded copy)."""

    def shift(keypoints: np.ndarray) -> np.ndarray:
        keypoints = keypoints.copy()
        keypoints[:, 0] -= left
        keypoints[:, 1] -= top
        return keypoints

    def window(array: np.ndarray) -> np.ndarray:
        out = np.zeros((height, width, *array.shape[2:]), array.dtype)
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(top + height, array.shape[0]), min(left + width, array.shape[1])
        if y1 > y0 and x1 > x0:
            out[y0 - top : y1 - top, x0 - left : x1 - left] = array[y0:y1, x0:x1]
        return out

    return Sample3(window(item.image), _apply(item.mask, window), _apply(item.keypoints, shift))


def random_crop(
    item: Sample3, height: int, width: int, rng: np.random.Generator, pad: int = 0
) -> Sample3:
    """A random (height, width) window of the item zero-padded by ``pad`` on every side."""
    h, w = item.image.shape[:2]
    top = int(rng.integers(0, h + 2 * pad - height + 1)) - pad
    left = int(rng.integers(0, w + 2 * pad - width + 1)) - pad
    return crop(item, top, left, height, width)


def erasing_rectangle(
    height: int,
    width: int,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 3.3),
) -> tuple[int, int, int, int]:
    """Zhong et al.'s random erasing: (top, left, height, width) of the rectangle to set to 0
    after normalisation; ``NO_ERASING`` when ten draws do not fit the image."""
    for _ in range(10):
        target = rng.uniform(*area) * height * width
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        eh, ew = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
        if 0 < eh < height and 0 < ew < width:
            top, left = int(rng.integers(0, height - eh + 1)), int(rng.integers(0, width - ew + 1))
            return top, left, eh, ew
    return NO_ERASING


def train_transform(
    item: Sample3, cfg: DataConfig, rng: np.random.Generator
) -> tuple[Sample3, tuple[int, int, int, int]]:
    """The training augmentation: the geometry-matched item and the erasing rectangle to apply
    on the device (``NO_ERASING`` for none)."""
    if cfg.pre_crop_size:
        item = resize(item, *cfg.pre_crop_size)
        item = random_crop(item, cfg.height, cfg.width, rng)
    else:
        item = resize(item, cfg.height, cfg.width)
    if rng.random() < cfg.flip_prob:
        item = hflip(item)
    if cfg.pad > 0 and not cfg.pre_crop_size:
        item = random_crop(item, cfg.height, cfg.width, rng, pad=cfg.pad)
    erasing = NO_ERASING
    if rng.random() < cfg.erasing_prob:
        erasing = erasing_rectangle(*item.image.shape[:2], rng)
    return item, erasing


def eval_resize(image: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 (height, width, 3): what evaluation's workers hand over."""
    return torch.from_numpy(cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR))


def eval_transform(
    image: np.ndarray, height: int, width: int, mean: list[float], std: list[float]
) -> torch.Tensor:
    """Resize + normalise: what evaluation and export feed the network."""
    return normalize_images(eval_resize(image, height, width), mean, std)
