"""Joint training transforms: one geometry applied to the image, the person mask and the keypoints.

Order (BoT): resize -> horizontal flip (also swaps left/right keypoints) -> pad + random crop ->
normalise -> random erasing (image only). TriNet instead resizes to ``pre_crop_size`` and
random-crops to (height, width). Randomness comes from a ``numpy.random.Generator`` the caller
seeds, so an image's augmentation does not depend on the DataLoader's worker layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from daaf.data.config import DataConfig
from daaf.data.keypoints import FLIP_INDEX


@dataclass
class Sample3:
    """An image with its person mask and keypoints, in the same pixel frame.

    image: uint8 (H, W, 3) RGB; mask: float32 (H, W) in [0, 1]; keypoints: float32 (17, 3).
    """

    image: np.ndarray
    mask: np.ndarray
    keypoints: np.ndarray


def resize(item: Sample3, height: int, width: int) -> Sample3:
    """Resize all three; keypoints scale with the pixel grid (pixel centres stay aligned)."""
    h, w = item.image.shape[:2]
    image = cv2.resize(item.image, (width, height), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(item.mask, (width, height), interpolation=cv2.INTER_LINEAR)
    keypoints = item.keypoints.copy()
    keypoints[:, 0] = (keypoints[:, 0] + 0.5) * (width / w) - 0.5
    keypoints[:, 1] = (keypoints[:, 1] + 0.5) * (height / h) - 0.5
    return Sample3(image, mask, keypoints)


def hflip(item: Sample3) -> Sample3:
    """Mirror left-right; the person's left keypoints become right ones (COCO flip order)."""
    width = item.image.shape[1]
    keypoints = item.keypoints[list(FLIP_INDEX)].copy()
    keypoints[:, 0] = width - 1 - keypoints[:, 0]
    return Sample3(item.image[:, ::-1].copy(), item.mask[:, ::-1].copy(), keypoints)


def crop(item: Sample3, top: int, left: int, height: int, width: int) -> Sample3:
    keypoints = item.keypoints.copy()
    keypoints[:, 0] -= left
    keypoints[:, 1] -= top
    window = (slice(top, top + height), slice(left, left + width))
    return Sample3(item.image[window].copy(), item.mask[window].copy(), keypoints)


def pad(item: Sample3, amount: int) -> Sample3:
    """Zero-pad every side by ``amount`` pixels."""
    widths = ((amount, amount), (amount, amount))
    keypoints = item.keypoints.copy()
    keypoints[:, :2] += amount
    return Sample3(np.pad(item.image, widths + ((0, 0),)), np.pad(item.mask, widths), keypoints)


def random_crop(item: Sample3, height: int, width: int, rng: np.random.Generator) -> Sample3:
    h, w = item.image.shape[:2]
    top = int(rng.integers(0, h - height + 1))
    left = int(rng.integers(0, w - width + 1))
    return crop(item, top, left, height, width)


def normalize(image: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float (3, H, W) standardised with ``mean``/``std`` in [0, 1] units."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    return (tensor - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def random_erasing(
    image: torch.Tensor,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.02, 0.4),
    ratio: tuple[float, float] = (0.3, 3.3),
) -> torch.Tensor:
    """Zhong et al.'s random erasing: one rectangle set to 0 (the mean, after normalisation)."""
    _, h, w = image.shape
    for _ in range(10):
        target = rng.uniform(*area) * h * w
        aspect = np.exp(rng.uniform(np.log(ratio[0]), np.log(ratio[1])))
        eh, ew = int(round(np.sqrt(target * aspect))), int(round(np.sqrt(target / aspect)))
        if 0 < eh < h and 0 < ew < w:
            top, left = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            image = image.clone()
            image[:, top : top + eh, left : left + ew] = 0
            return image
    return image


def train_transform(
    item: Sample3, cfg: DataConfig, rng: np.random.Generator
) -> tuple[torch.Tensor, Sample3]:
    """The training augmentation; returns the normalised image tensor and the geometry-matched item."""
    if cfg.pre_crop_size:
        item = resize(item, *cfg.pre_crop_size)
        item = random_crop(item, cfg.height, cfg.width, rng)
    else:
        item = resize(item, cfg.height, cfg.width)
    if rng.random() < cfg.flip_prob:
        item = hflip(item)
    if cfg.pad > 0 and not cfg.pre_crop_size:
        item = random_crop(pad(item, cfg.pad), cfg.height, cfg.width, rng)
    image = normalize(item.image, cfg.pixel_mean, cfg.pixel_std)
    if rng.random() < cfg.erasing_prob:
        image = random_erasing(image, rng)
    return image, item


def eval_transform(
    image: np.ndarray, height: int, width: int, mean: list[float], std: list[float]
) -> torch.Tensor:
    """Resize + normalise: what evaluation and export feed the network."""
    resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    return normalize(resized, mean, std)
