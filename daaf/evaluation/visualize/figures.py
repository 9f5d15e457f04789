"""The paper's pictures as PNG files: Grad-CAM attention (Fig. 5, 6), branch outputs (Fig. 7, 8)
and the 1x1 conv shuffle grid (Fig. 9). Inputs are numpy arrays; maps are jet overlays
(alpha 0.5) on the RGB images the network saw. Each figure is one mosaic of tiles (one axes,
so that large grids stay fast to draw), labelled along its top and left edges."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from daaf.data.keypoints import PIXEL_CENTRE, SKELETON  # noqa: E402

TILE_INCHES = 1.1  # width of one tile
GAP = 2  # pixels between tiles


def denormalize(
    images: torch.Tensor | np.ndarray, mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """Network input (B, 3, H, W), normalised with ``mean``/``std`` in [0, 1] units, back to
    uint8 RGB (B, H, W, 3)."""
    images = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else images
    rgb = images * np.asarray(std).reshape(1, 3, 1, 1) + np.asarray(mean).reshape(1, 3, 1, 1)
    return (rgb.transpose(0, 2, 3, 1).clip(0, 1) * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """float RGB (H, W, 3) in [0, 1]: uint8 ``image`` with a jet-coloured map (H, W) in [0, 1]
    blended on top."""
    colored = plt.get_cmap("jet")(np.clip(heat, 0, 1))[..., :3]
    return ((1 - alpha) * image / 255 + alpha * colored).clip(0, 1)


def _rgb(image: np.ndarray) -> np.ndarray:
    return image / 255 if image.dtype == np.uint8 else image


def _gray(mask: np.ndarray) -> np.ndarray:
    return np.repeat(np.clip(mask, 0, 1)[..., None], 3, axis=2)


@dataclass
class Mosaic:
    """Tiles (rows x columns of float RGB (H, W, 3)) drawn as one image, labelled along its top
    (``column_labels``) and left (``row_labels``) edges; red frames around the ``framed``
    (row, column) tiles; ``keypoints`` (17, 3) drawn with the COCO skeleton; ``colorbar``
    (label, low, high): a jet colour bar for the overlays; ``texts``: a small label in a tile's
    corner."""

    tiles: list[list[np.ndarray]]
    row_labels: Sequence[str] = ()
    column_labels: Sequence[str] = ()
    title: str | None = None
    framed: Sequence[tuple[int, int]] = ()
    keypoints: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    colorbar: tuple[str, float, float] | None = None
    texts: dict[tuple[int, int], str] = field(default_factory=dict)

    def save(self, path: Path) -> Figure:
        """Draw the mosaic into the PNG ``path``; returns the (closed) figure, for tests."""
        canvas = self._canvas()
        inches = len(self.tiles[0]) * TILE_INCHES
        fig, ax = plt.subplots(
            figsize=(inches + 0.6, inches * canvas.shape[0] / canvas.shape[1] + 0.8)
        )
        ax.imshow(canvas, interpolation="nearest")
        self._label_edges(ax)
        self._mark_tiles(ax)
        ax.set_xlim(-0.5, canvas.shape[1] - 0.5)
        ax.set_ylim(canvas.shape[0] - 0.5, -0.5)
        self._add_colorbar(fig, ax)
        if self.title:
            chars = int(fig.get_figwidth() * 13)  # about 13 characters of 8-point text per inch
            ax.set_title(
                textwrap.fill(self.title, max(chars, 30)), fontsize=8
            )  # above the top labels
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return fig

    @property
    def _step(self) -> tuple[int, int, int, int]:
        """(h, w, h + GAP, w + GAP): a tile's size and the distance between tiles' corners."""
        h, w = self.tiles[0][0].shape[:2]
        return h, w, h + GAP, w + GAP

    def _canvas(self) -> np.ndarray:
        """The tiles on a white canvas, :data:`GAP` pixels apart."""
        h, w, dy, dx = self._step
        rows, cols = len(self.tiles), len(self.tiles[0])
        canvas = np.ones((rows * dy - GAP, cols * dx - GAP, 3))
        for r, row in enumerate(self.tiles):
            for c, tile in enumerate(row):
                canvas[r * dy : r * dy + h, c * dx : c * dx + w] = tile
        return canvas

    def _label_edges(self, ax) -> None:
        """Row and column labels on the left and top edges, without ticks or spines."""
        h, w, dy, dx = self._step
        ax.set_xticks([c * dx + w / 2 for c in range(len(self.column_labels))], self.column_labels)
        ax.set_yticks([r * dy + h / 2 for r in range(len(self.row_labels))], self.row_labels)
        ax.tick_params(
            length=0, labelsize=7, top=True, labeltop=True, bottom=False, labelbottom=False
        )
        for side in ax.spines.values():
            side.set_visible(False)

    def _mark_tiles(self, ax) -> None:
        """The red frames, the keypoints with their skeleton, and the corner texts."""
        h, w, dy, dx = self._step
        for r, c in self.framed:
            ax.add_patch(
                Rectangle((c * dx - 0.5, r * dy - 0.5), w, h, fill=False, ec="red", lw=1.5)
            )
        for (r, c), kps in self.keypoints.items():  # imshow centres pixel c at c
            x = kps[:, 0] - PIXEL_CENTRE + c * dx
            y = kps[:, 1] - PIXEL_CENTRE + r * dy
            seen = (kps[:, 2] > 0) & np.isfinite(kps[:, :2]).all(1)
            for a, b in SKELETON:
                if seen[a] and seen[b]:
                    ax.plot(x[[a, b]], y[[a, b]], color="yellow", lw=0.8)
            ax.scatter(x[seen], y[seen], s=5, c="red", zorder=3)
        for (r, c), text in self.texts.items():
            ax.text(
                c * dx + 1,
                r * dy + h - 2,
                text,
                fontsize=6,
                color="white",
                bbox={"fc": "black", "alpha": 0.6, "pad": 1, "lw": 0},
            )

    def _add_colorbar(self, fig: Figure, ax) -> None:
        """The jet colour bar of ``colorbar``, if any, beside the mosaic."""
        if self.colorbar is None:
            return
        label, low, high = self.colorbar
        bar = fig.colorbar(
            ScalarMappable(Normalize(low, high), cmap="jet"), ax=ax, fraction=0.04, pad=0.02
        )
        bar.set_label(textwrap.fill(label, 40), fontsize=7)
        bar.ax.tick_params(labelsize=6)


def save_attention_figure(
    images: np.ndarray,
    maps_base: np.ndarray | None,
    maps_daaf: np.ndarray,
    path: Path,
    title: str | None = None,
    names: tuple[str, str] = ("base", "DAAF"),
) -> Figure:
    """Fig. 5: one column per image; rows image, base model's map (when given), DAAF's map,
    labelled with ``names``. images uint8 (B, H, W, 3); maps (B, H, W) in [0, 1]."""
    rows = {"image": [_rgb(image) for image in images]}
    if maps_base is not None:
        rows[names[0]] = [overlay(image, m) for image, m in zip(images, maps_base, strict=True)]
    rows[names[1]] = [overlay(image, m) for image, m in zip(images, maps_daaf, strict=True)]
    scale = ("attention, each map min-max scaled", 0.0, 1.0)
    return Mosaic(list(rows.values()), list(rows), title=title, colorbar=scale).save(path)


def save_partial_attention_figure(
    images: np.ndarray,
    maps: np.ndarray,
    path: Path,
    maps_base: np.ndarray | None = None,
    group_names: Sequence[str] | None = None,
    title: str | None = None,
    model_names: tuple[str, str] = ("base", "DAAF"),
) -> Figure:
    """Fig. 6: a row per image (and a base-model row above it when ``maps_base`` is given):
    the image, then one map per channel group. maps (B, G, H, W) in [0, 1]."""
    g = maps.shape[1]
    names = list(group_names) if group_names else [f"group {i + 1}" for i in range(g)]
    base_rows = [(model_names[0], maps_base)] if maps_base is not None else []
    models = base_rows + [(model_names[1], maps)]
    tiles, labels = [], []
    for b, image in enumerate(images):
        for model, model_maps in models:
            tiles.append([_rgb(image)] + [overlay(image, m) for m in model_maps[b]])
            labels.append(model)
    scale = ("attention, each map min-max scaled", 0.0, 1.0)
    return Mosaic(tiles, labels, ["image", *names], title, colorbar=scale).save(path)


def save_branch_figure(
    images: np.ndarray,
    labeler_mask: np.ndarray | None,
    labeler_kps: np.ndarray | None,
    hab_mask: np.ndarray | None,
    pab_heatmaps: np.ndarray | None,
    path: Path,
    title: str | None = None,
) -> Figure:
    """Fig. 7 and 8: a row per image: the image, the labeler's mask, the HAB mask, the labeler's
    keypoints, the PAB heatmaps (maximum over the 17 maps on the fixed scale [0, 1] of the
    Gaussian targets, with its peak value written in the tile, so a flat PAB shows as flat).
    Columns whose array is None are left out. masks (B, H, W) in [0, 1]; keypoints (B, 17, 3) in
    image pixels."""
    peaks = None if pab_heatmaps is None else pab_heatmaps.max(axis=1)
    columns = {
        name: tiles
        for name, tiles in (
            ("image", [_rgb(image) for image in images]),
            ("labeler mask", None if labeler_mask is None else [_gray(m) for m in labeler_mask]),
            ("HAB mask", None if hab_mask is None else [_gray(m) for m in hab_mask]),
            ("labeler keypoints", None if labeler_kps is None else [_rgb(i) for i in images]),
            ("PAB heatmaps", None if peaks is None else list(map(overlay, images, peaks))),
        )
        if tiles is not None
    }
    tiles = [list(row) for row in zip(*columns.values(), strict=True)]
    keypoints = {}
    if labeler_kps is not None:
        column = list(columns).index("labeler keypoints")
        keypoints = {(b, column): kps for b, kps in enumerate(labeler_kps)}
    texts, scale = {}, None
    if peaks is not None:
        column = list(columns).index("PAB heatmaps")
        texts = {(b, column): f"max {peak.max():.2f}" for b, peak in enumerate(peaks)}
        scale = ("PAB heatmap: max over the 17 keypoint maps (target peak 1)", 0.0, 1.0)
    mosaic = Mosaic(
        tiles, (), list(columns), title, keypoints=keypoints, colorbar=scale, texts=texts
    )
    return mosaic.save(path)


def save_shuffle_figure(
    grid: np.ndarray,
    path: Path,
    image: np.ndarray | None = None,
    group_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Fig. 9: rows = feature groups, columns = 1x1 convolutions; matched pairs (the diagonal)
    framed in red. grid (G, G, H, W) of one image on one colour scale from 0 to the grid's
    maximum (a colour bar gives the values); drawn over ``image`` (uint8 (H, W, 3)) when given."""
    g = grid.shape[0]
    names = list(group_names) if group_names else [str(i + 1) for i in range(g)]
    high = max(float(grid.max()), 1e-6)
    cells = np.clip(grid / high, 0, 1)
    jet = plt.get_cmap("jet")
    tiles = [
        [jet(cell)[..., :3] if image is None else overlay(image, cell) for cell in row]
        for row in cells
    ]
    return Mosaic(
        tiles,
        [f"features\n{n}" for n in names],
        [f"conv\n{n}" for n in names],
        title,
        framed=[(i, i) for i in range(g)],
        colorbar=("PAB heatmap (max over conv j's maps), one scale for all cells", 0.0, high),
    ).save(path)
