"""Gaussian keypoint heatmaps: the PAB's regression targets (paper eq. 4, as in CPN)."""

from __future__ import annotations

import numpy as np


def render_heatmaps(
    keypoints: np.ndarray, size: tuple[int, int], sigma: float, score_threshold: float
) -> np.ndarray:
    """One Gaussian peak of height 1 per keypoint, in pixel coordinates of an image of ``size``.

    Args:
        keypoints: (K, 3) x, y, score in the pixels of the (H, W) map.
        size: (H, W) of the maps.
        sigma: standard deviation in pixels.
        score_threshold: keypoints with a lower score, NaN coordinates or a centre outside the
            map get an all-zero map (no peak). The PAB loss then pulls that channel toward zero
            everywhere ("this keypoint is not here"); only a whole sample whose annotation
            status is not ok is left out of the loss (docs/paper.md).

    Returns:
        float32 (K, H, W) in [0, 1].
    """
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
