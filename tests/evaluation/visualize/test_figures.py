"""Figures are written as readable PNGs of the expected layout; images are de-normalised."""

import cv2
import numpy as np
import pytest
import torch

from daaf.data.device_batch import normalize_images
from daaf.evaluation.visualize import (
    denormalize,
    overlay,
    save_attention_figure,
    save_branch_figure,
    save_partial_attention_figure,
    save_shuffle_figure,
)

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


@pytest.fixture(scope="module")
def rgb():
    return np.random.default_rng(0).integers(0, 256, (2, 32, 16, 3), dtype=np.uint8)


def test_denormalize_inverts_the_input_normalisation(rgb):
    tensors = np.stack(
        [normalize_images(torch.from_numpy(image), MEAN, STD).numpy() for image in rgb]
    )
    np.testing.assert_array_equal(denormalize(tensors, MEAN, STD), rgb)


def test_overlay_blends_jet_at_half_alpha():
    black = np.zeros((1, 2, 3), np.uint8)
    blended = overlay(black, np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(blended[0, 0], [0, 0, 0.5 * 0.5], atol=1e-6)  # jet(0): dark blue
    np.testing.assert_allclose(blended[0, 1], [0.5 * 0.5, 0, 0], atol=1e-6)  # jet(1): dark red


def read(path):
    image = cv2.imread(str(path))
    assert image is not None and path.stat().st_size > 0
    return image


def test_every_figure_is_written(rgb, tmp_path):
    rng = np.random.default_rng(1)
    maps = rng.random((2, 32, 16))
    save_attention_figure(rgb, maps, maps[::-1], tmp_path / "a.png", title="holistic")
    save_attention_figure(rgb, None, maps, tmp_path / "a_alone.png")
    # Three rows with a base model, two without: the figure is taller.
    assert read(tmp_path / "a.png").shape[0] > read(tmp_path / "a_alone.png").shape[0]
    save_partial_attention_figure(
        rgb,
        rng.random((2, 6, 32, 16)),
        tmp_path / "p.png",
        rng.random((2, 6, 32, 16)),
        [f"g{i}" for i in range(6)],
    )
    kps = np.concatenate([rng.random((2, 17, 2)) * (16, 32), np.ones((2, 17, 1))], axis=2)
    kps[0, 3] = (np.nan, np.nan, 0)
    save_branch_figure(rgb, maps, kps, maps, rng.random((2, 17, 32, 16)), tmp_path / "b.png")
    save_branch_figure(rgb, None, None, maps, None, tmp_path / "b_hab.png")
    assert read(tmp_path / "b.png").shape[1] > read(tmp_path / "b_hab.png").shape[1]
    save_shuffle_figure(rng.random((6, 6, 32, 16)), tmp_path / "sub" / "s.png", rgb[0])
    read(tmp_path / "p.png")
    read(tmp_path / "sub" / "s.png")


def colorbar_label(fig):
    """The label of the figure's colour bar axes (the second axes), '' when there is none."""
    return fig.axes[1].get_ylabel() if len(fig.axes) == 2 else ""


def test_figures_carry_colour_bars_names_and_pab_peaks(rgb, tmp_path):
    rng = np.random.default_rng(2)
    maps = rng.random((2, 32, 16))
    fig = save_attention_figure(rgb, maps, maps, tmp_path / "a.png", names=("bot", "daaf_bot"))
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["image", "bot", "daaf_bot"]
    assert "min-max scaled" in colorbar_label(fig)
    # A flat PAB (peak 0.03) is drawn on the fixed [0, 1] scale, its peak written in the tile.
    flat = np.full((2, 17, 32, 16), 0.03)
    fig = save_branch_figure(rgb, None, None, maps, flat, tmp_path / "b.png")
    assert "PAB heatmap" in colorbar_label(fig)
    assert fig.axes[1].get_ylim() == (0.0, 1.0)
    assert [t.get_text() for t in fig.axes[0].texts] == ["max 0.03", "max 0.03"]
    assert colorbar_label(save_branch_figure(rgb, None, None, maps, None, tmp_path / "h.png")) == ""
    grid = rng.random((3, 3, 32, 16)) * 0.4
    fig = save_shuffle_figure(grid, tmp_path / "s.png", rgb[0], title="daaf_bot on synthetic")
    assert "one scale for all cells" in colorbar_label(fig)
    assert fig.axes[1].get_ylim()[1] == pytest.approx(grid.max())
    assert "daaf_bot on synthetic" in fig.axes[0].get_title()
