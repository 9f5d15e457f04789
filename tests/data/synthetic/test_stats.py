"""The figures of scripts/synth_stats.py on cases small enough to check by hand."""

import itertools

import numpy as np
import pytest

from daaf.data.synthetic.stats import (
    constant_map_pck,
    expected_random_ap,
    median_keypoints,
    random_ranking_map,
)


def _keypoints(points: dict[int, tuple[float, float]]) -> np.ndarray:
    """(17, 3): the given keypoints visible (score 1), the rest not found (NaN, NaN, 0)."""
    out = np.full((17, 3), np.nan, np.float32)
    out[:, 2] = 0
    for k, (x, y) in points.items():
        out[k] = (x, y, 1)
    return out


def test_constant_map_pck_by_hand():
    # Training: nose at (10, 40), (20, 50), (30, 60) in 128x64 images -> median (20, 50), i.e.
    # (0.3125, 0.390625) of the image; the left eye is visible once, at (8, 30).
    train = np.stack(
        [
            _keypoints({0: (10, 40), 1: (8, 30)}),
            _keypoints({0: (20, 50)}),
            _keypoints({0: (30, 60)}),
        ]
    )
    prior = median_keypoints(train, np.array([[128, 64]] * 3))
    np.testing.assert_allclose(prior[0], [20 / 64, 50 / 128])
    np.testing.assert_allclose(prior[1], [8 / 64, 30 / 128])
    assert np.isnan(prior[2]).all()  # never visible
    queries = np.stack(
        [
            _keypoints(
                {0: (20, 62.8), 1: (8 + 13, 30)}
            ),  # nose 12.8 px off: a hit; eye 13 px: a miss
            _keypoints({0: (40 + 25, 100), 2: (5, 5)}),  # 256x128: prior (40, 100), tolerance 25.6
        ]
    )
    sizes = np.array([[128, 64], [256, 128]])
    # Hits: nose of image 1, nose of image 2 (25 <= 25.6); misses: the eye, the right eye
    # (no prior). 2 of 4 visible keypoints.
    assert constant_map_pck(prior, queries, sizes) == (2, 4)
    assert constant_map_pck(prior, queries, sizes, fraction=0.05) == (0, 4)


def test_expected_random_ap_is_the_mean_over_every_ranking():
    assert expected_random_ap(2, 1) == pytest.approx(0.75)  # (1 + 1/2) / 2
    for n, r in ((4, 2), (5, 1), (5, 3)):
        aps = []
        for relevant in itertools.combinations(range(n), r):
            ranks = np.array(relevant)
            aps.append(np.mean(np.arange(1, r + 1) / (ranks + 1)))
        assert expected_random_ap(n, r) == pytest.approx(np.mean(aps))


def test_random_ranking_map_follows_the_market_protocol():
    # Query 1 (camera 0): its same-camera gallery image is dropped, leaving a positive and a
    # negative (E[AP] 0.75); query 3 has no positive and is skipped.
    g_pids, g_camids = [1, 1, 2], [0, 1, 0]
    assert random_ranking_map([1, 3], [0, 0], g_pids, g_camids) == pytest.approx(0.75)
