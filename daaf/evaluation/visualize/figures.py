"""The paper's pictures as PNG files: Grad-CAM attention (Fig. 5, 6), branch outputs (Fig. 7, 8)
and the 1x1 conv shuffle grid (Fig. 9). Inputs are numpy arrays; maps are jet overlays
(alpha 0.5) on the RGB images the network saw."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from daaf.data.keypoints import SKELETON  # noqa: E402

TILE_INCHES = 1.1  # width of one image column


def denormalize(
    images: torch.Tensor | np.ndarray, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """Network input (B, 3, H, W), normalised with ``mean``/``std`` in [0, 1] units, back to
    uint8 RGB (B, H, W, 3)."""
    images = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
    rgb = images * np.asarray(std).reshape(1, 3, 1, 1) + np.asarray(mean).reshape(1, 3, 1, 1)
    return (rgb.transpose(0, 2, 3, 1).clip(0, 1) * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """uint8 RGB (H, W, 3) with a jet-coloured map (H, W) in [0, 1] blended on top."""
    colored = plt.get_cmap("jet")(np.clip(heat, 0, 1))[..., :3]
    return ((1 - alpha) * image / 255 + alpha * colored).clip(0, 1)


def _scaled(maps: np.ndarray) -> np.ndarray:
    """Each (H, W) map of ``maps`` (..., H, W) min-max scaled to [0, 1] for display."""
    low = maps.min(axis=(-2, -1), keepdims=True)
    return (maps - low) / np.maximum(maps.max(axis=(-2, -1), keepdims=True) - low, 1e-12)


def _grid(rows: int, cols: int, aspect: float):
    fig, axes = plt.subplots(
        rows, cols, figsize=(cols * TILE_INCHES, rows * TILE_INCHES * aspect + 0.5), squeeze=False
    )
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _save(fig, path: Path, title: str | None) -> None:
    if title:
        chars = int(fig.get_figwidth() * 13)  # about 13 characters of 8-point text per inch
        fig.suptitle(textwrap.fill(title, max(chars, 30)), fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw_keypoints(ax, keypoints: np.ndarray) -> None:
    seen = (keypoints[:, 2] > 0) & np.isfinite(keypoints[:, :2]).all(1)
    for a, b in SKELETON:
        if seen[a] and seen[b]:
            ax.plot(keypoints[[a, b], 0], keypoints[[a, b], 1], color="yellow", lw=0.8)
    ax.scatter(keypoints[seen, 0], keypoints[seen, 1], s=5, c="red", zorder=3)


def save_attention_figure(
    images: np.ndarray,
    maps_base: np.ndarray | None,
    maps_daaf: np.ndarray,
    path: Path,
    title: str | None = None,
) -> None:
    """Fig. 5: one column per image; rows image, base model's map (when given), DAAF's map.
    images uint8 (B, H, W, 3); maps (B, H, W) in [0, 1]."""
    rows = [("image", None)] + ([("base", maps_base)] if maps_base is not None else [])
    rows.append(("DAAF", maps_daaf))
    fig, axes = _grid(len(rows), len(images), images.shape[1] / images.shape[2])
    for r, (name, maps) in enumerate(rows):
        axes[r, 0].set_ylabel(name, fontsize=8)
        for b, image in enumerate(images):
            axes[r, b].imshow(image if maps is None else overlay(image, maps[b]))
    _save(fig, path, title)


def save_partial_attention_figure(
    images: np.ndarray,
    maps: np.ndarray,
    path: Path,
    maps_base: np.ndarray | None = None,
    group_names: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Fig. 6: a row per image (and a base-model row under it when ``maps_base`` is given):
    the image, then one map per channel group. maps (B, G, H, W) in [0, 1]."""
    g = maps.shape[1]
    names = list(group_names) if group_names else [f"group {i + 1}" for i in range(g)]
    models = ([("base", maps_base)] if maps_base is not None else []) + [("DAAF", maps)]
    fig, axes = _grid(len(images) * len(models), g + 1, images.shape[1] / images.shape[2])
    for b, image in enumerate(images):
        for m, (model, model_maps) in enumerate(models):
            row = axes[b * len(models) + m]
            row[0].imshow(image)
            row[0].set_ylabel(model, fontsize=7)
            for i in range(g):
                row[i + 1].imshow(overlay(image, model_maps[b, i]))
    for i, name in enumerate(names):
        axes[0, i + 1].set_title(name, fontsize=7)
    _save(fig, path, title)


def save_branch_figure(
    images: np.ndarray,
    labeler_mask: np.ndarray | None,
    labeler_kps: np.ndarray | None,
    hab_mask: np.ndarray | None,
    pab_heatmaps: np.ndarray | None,
    path: Path,
    title: str | None = None,
) -> None:
    """Fig. 7 and 8: a row per image: the image, the labeler's mask, the HAB mask, the labeler's
    keypoints, the PAB heatmaps (maximum over the 17 maps, scaled to [0, 1]). Columns whose
    array is None are left out. masks (B, H, W) in [0, 1]; keypoints (B, 17, 3) in image pixels."""
    peaks = None if pab_heatmaps is None else _scaled(pab_heatmaps.max(axis=1))
    columns = [
        (name, kind, data)
        for name, kind, data in (
            ("image", "image", images),
            ("labeler mask", "mask", labeler_mask),
            ("HAB mask", "mask", hab_mask),
            ("labeler keypoints", "keypoints", labeler_kps),
            ("PAB heatmaps", "heat", peaks),
        )
        if data is not None
    ]
    fig, axes = _grid(len(images), len(columns), images.shape[1] / images.shape[2])
    for b, image in enumerate(images):
        for c, (_, kind, data) in enumerate(columns):
            ax = axes[b, c]
            if kind == "mask":
                ax.imshow(data[b], cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(overlay(image, data[b]) if kind == "heat" else image)
            if kind == "keypoints":
                _draw_keypoints(ax, data[b])
                ax.set_xlim(-0.5, image.shape[1] - 0.5)
                ax.set_ylim(image.shape[0] - 0.5, -0.5)
    for c, (name, _, _) in enumerate(columns):
        axes[0, c].set_title(name, fontsize=7)
    _save(fig, path, title)


def save_shuffle_figure(
    grid: np.ndarray,
    path: Path,
    image: np.ndarray | None = None,
    group_names: Sequence[str] | None = None,
    title: str | None = None,
) -> None:
    """Fig. 9: rows = feature groups, columns = 1x1 convolutions; matched pairs (the diagonal)
    framed in red. grid (G, G, H, W) of one image, each cell scaled to [0, 1]; drawn over
    ``image`` (uint8 (H, W, 3)) when given."""
    g = grid.shape[0]
    names = list(group_names) if group_names else [str(i + 1) for i in range(g)]
    cells = _scaled(grid)
    fig, axes = _grid(g, g, grid.shape[2] / grid.shape[3])
    for i in range(g):
        for j in range(g):
            ax = axes[i, j]
            ax.imshow(cells[i, j] if image is None else overlay(image, cells[i, j]), cmap="jet")
            if i == j:
                for spine in ax.spines.values():
                    spine.set(color="red", linewidth=2)
        axes[i, 0].set_ylabel(f"features\n{names[i]}", fontsize=7)
        axes[0, i].set_title(f"1x1 conv\n{names[i]}", fontsize=7)
    _save(fig, path, title)
