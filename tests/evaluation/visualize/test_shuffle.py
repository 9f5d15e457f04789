"""1x1 conv shuffle (section 4.3.4): the grid's diagonal is the normal PAB output; the score."""

import numpy as np
import pytest
import torch

from daaf.evaluation.visualize import decoupling_score, shuffle_grid, supports_shuffle
from daaf.models import build_model
from daaf.models.maps import to_size

from .conftest import tiny_config


@pytest.mark.parametrize("stride", [1, 4])
def test_diagonal_is_the_pab_output_of_each_group(daaf_model, images, stride):
    """At the input size; a stride-4 PAB's cells are its maps' maxima, upsampled."""
    if stride > 1:
        torch.manual_seed(0)
        daaf_model = build_model(tiny_config(pab=True, decoder_stride=stride), 8)
    grid = shuffle_grid(daaf_model, images)
    assert grid.shape == (2, 6, 6, 64, 32)
    with torch.no_grad():
        parts = daaf_model.pab(daaf_model.backbone(images)[1], (64, 32))
    for i, group in enumerate(daaf_model.pab.groups):
        peak = to_size(parts[:, list(group)].amax(1, keepdim=True), (64, 32))[:, 0]
        np.testing.assert_allclose(grid[:, i, i], peak.numpy(), atol=1e-5)
    # Off the diagonal the conv changes: conv 1 (2 maps) on the head group's features.
    assert not np.allclose(grid[:, 0, 1], grid[:, 0, 0])


@pytest.mark.parametrize(
    "switches",
    [
        {"pab": False},
        {"pab": True, "pab_grouped": False},
        {"pab": True, "pab_shared_decoder": False},
    ],
)
def test_only_grouped_shared_keypoint_branches_shuffle(switches, images):
    model = build_model(tiny_config(**switches), 4)
    assert not supports_shuffle(model)
    with pytest.raises(ValueError, match="shared decoder"):
        shuffle_grid(model, images)


def peaked_grid(peaks):
    """A (1, G, G, 20, 10) grid with one bright pixel per cell at peaks[i][j] = (x, y)."""
    g = len(peaks)
    grid = np.zeros((1, g, g, 20, 10))
    for i in range(g):
        for j in range(g):
            x, y = peaks[i][j]
            grid[0, i, j, y, x] = 1
    return grid


GROUPS = ((0, 1), (2,), (3, 4))
SPOTS = [(2, 2), (5, 10), (8, 17)]  # where each group's keypoints are


def keypoints_at_spots():
    kps = np.zeros((1, 17, 3), np.float32)
    for group, (x, y) in zip(GROUPS, SPOTS, strict=True):
        kps[0, list(group)] = (x + 0.5, y + 0.5, 1)  # the spot pixel's centre
    kps[0, 1] = (np.nan, np.nan, 0)  # a missing keypoint is ignored
    return kps


def test_score_when_outputs_follow_the_features():
    grid = peaked_grid([[SPOTS[i]] * 3 for i in range(3)])
    score = decoupling_score(grid, GROUPS, keypoints_at_spots(), radius=1.5)
    assert score["nearest_diagonal"] == {
        "cells": 6,
        "feature_group": 1.0,
        "conv_layer": 0.0,
        "tie": 0.0,
    }
    regions = score["keypoint_regions"]
    assert regions["cells"] == 6 and regions["feature_group"] == 1.0
    assert regions["conv_layer"] == regions["both"] == regions["neither"] == 0
    assert regions["diagonal_in_region"] == 1.0 and regions["radius_px"] == 1.5


def test_score_when_outputs_follow_the_conv():
    grid = peaked_grid([[SPOTS[j] for j in range(3)] for _ in range(3)])
    score = decoupling_score(grid, GROUPS, keypoints_at_spots(), radius=1.5)
    assert score["nearest_diagonal"]["conv_layer"] == 1.0
    assert score["keypoint_regions"]["conv_layer"] == 1.0
    # Without labels only the label-free score is given; the default radius is 0.1 x height.
    assert "keypoint_regions" not in decoupling_score(grid, GROUPS)
    assert (
        decoupling_score(grid, GROUPS, keypoints_at_spots())["keypoint_regions"]["radius_px"] == 2
    )


def test_cells_peaking_elsewhere_or_without_keypoints():
    peaks = [[SPOTS[i]] * 3 for i in range(3)]
    peaks[0][1] = (9, 0)  # far from every group
    kps = keypoints_at_spots()
    kps[0, 2] = (np.nan, np.nan, 0)  # group 1 has no visible keypoint: its pairs are not counted
    regions = decoupling_score(peaked_grid(peaks), GROUPS, kps, radius=1.5)["keypoint_regions"]
    assert regions["cells"] == 2 and regions["feature_group"] == 1.0
    kps[0, [0, 3, 4]] = (np.nan, np.nan, 0)
    regions = decoupling_score(peaked_grid(peaks), GROUPS, kps)["keypoint_regions"]
    assert regions["cells"] == 0 and regions["feature_group"] is None
