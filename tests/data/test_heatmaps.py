"""Gaussian keypoint heatmaps (daaf.data.device_batch): peak location and height, no peak for unreliable keypoints."""

import numpy as np
import pytest
import torch

from daaf.data.device_batch import render_heatmap_batch


def render_heatmaps(keypoints, size, sigma, score_threshold):
    """One sample through the batched renderer, as numpy."""
    return render_heatmap_batch(torch.from_numpy(keypoints)[None], size, sigma, score_threshold)[
        0
    ].numpy()


def test_heatmap_peak_location_and_value():
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[:, 2] = 0.0
    keypoints[3] = (5, 9, 0.9)
    keypoints[4] = (2.5, 4.0, 1.0)  # between pixels: two equal maxima below 1
    maps = render_heatmaps(keypoints, (32, 16), sigma=2.0, score_threshold=0.3)
    assert maps.shape == (17, 32, 16) and maps.dtype == np.float32
    assert maps[3].max() == 1.0
    assert np.unravel_index(maps[3].argmax(), (32, 16)) == (9, 5)
    assert maps[3, 9, 7] == pytest.approx(np.exp(-4 / 8))
    assert maps[3, 11, 5] == pytest.approx(np.exp(-4 / 8))
    assert maps[4, 4, 2] == pytest.approx(maps[4, 4, 3]) == pytest.approx(np.exp(-0.25 / 8))


def test_low_score_nan_and_outside_keypoints_get_no_peak():
    keypoints = np.full((17, 3), np.nan, np.float32)
    keypoints[:, 2] = 0.0  # the store's "not found": NaN, NaN, 0
    keypoints[0] = (5, 9, 0.9)
    keypoints[1] = (5, 9, 0.29)  # below threshold
    keypoints[2] = (40, 9, 1.0)  # outside the map (cropped away)
    keypoints[5] = (np.nan, 3, 1.0)
    maps = render_heatmaps(keypoints, (32, 16), sigma=2.0, score_threshold=0.3)
    assert maps[0].max() == 1.0
    assert not maps[1:].any() and np.isfinite(maps).all()
