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
    """The store's frame: pixel c covers [c, c + 1), so a keypoint at a pixel's centre c + 0.5
    peaks at 1 there and one at an integer x lies between pixels x - 1 and x."""
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[:, 2] = 0.0
    keypoints[3] = (5.5, 9.5, 0.9)  # the centre of pixel (5, 9)
    keypoints[4] = (3.0, 4.5, 1.0)  # between pixels 2 and 3: two equal maxima below 1
    maps = render_heatmaps(keypoints, (32, 16), sigma=2.0, score_threshold=0.3)
    assert maps.shape == (17, 32, 16) and maps.dtype == np.float32
    assert maps[3].max() == 1.0
    assert np.unravel_index(maps[3].argmax(), (32, 16)) == (9, 5)
    assert maps[3, 9, 7] == pytest.approx(np.exp(-4 / 8))
    assert maps[3, 11, 5] == pytest.approx(np.exp(-4 / 8))
    assert maps[4, 4, 2] == pytest.approx(maps[4, 4, 3]) == pytest.approx(np.exp(-0.25 / 8))
    assert maps[4].max() < 1


def test_a_keypoint_on_the_border_keeps_its_peak_when_mirrored():
    """[0, W] is inside on both ends, so x and its mirror W - x are kept or dropped alike."""
    keypoints = np.zeros((17, 3), np.float32)
    keypoints[:4] = [(0.0, 5.0, 1.0), (16.0, 5.0, 1.0), (-0.01, 5.0, 1.0), (16.01, 5.0, 1.0)]
    maps = render_heatmaps(keypoints, (32, 16), sigma=2.0, score_threshold=0.3)
    assert maps[0].any() and maps[1].any() and not maps[2:].any()
    np.testing.assert_allclose(maps[0], maps[1][:, ::-1], atol=1e-6)


def test_low_score_nan_and_outside_keypoints_get_no_peak():
    keypoints = np.full((17, 3), np.nan, np.float32)
    keypoints[:, 2] = 0.0  # the store's "not found": NaN, NaN, 0
    keypoints[0] = (5.5, 9.5, 0.9)
    keypoints[1] = (5.5, 9.5, 0.29)  # below threshold
    keypoints[2] = (40, 9, 1.0)  # outside the map (cropped away)
    keypoints[5] = (np.nan, 3, 1.0)
    maps = render_heatmaps(keypoints, (32, 16), sigma=2.0, score_threshold=0.3)
    assert maps[0].max() == 1.0
    assert not maps[1:].any() and np.isfinite(maps).all()
