"""The 1x1 convolution shuffle of the PAB (paper section 4.3.4, Fig. 9 and 10).

Every channel group i of the last feature map is decoded by the shared deconvolution stack and
then by every group's 1x1 convolution j. If the heatmaps follow the feature group i whatever
the convolution j, the body-part information lives in the channels, not in the 1x1 layers: the
paper's claim that the channels are decoupled. The decoupling score counts where the peaks go.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from daaf.data.keypoints import PIXEL_CENTRE
from daaf.models.maps import map_size, to_size


def supports_shuffle(model: nn.Module) -> bool:
    """The model has a keypoint PAB with several channel groups and one shared decoder."""
    pab = getattr(model, "pab", None)
    return (
        pab is not None
        and pab.target == "keypoints"
        and len(pab.stacks) == 1
        and len(pab.heads) > 1
    )


@torch.no_grad()
def shuffle_grid(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    """(B, G, G, H, W): cell (i, j) decodes feature group i with 1x1 conv j; since convolutions
    of different groups have different output counts, a cell is the maximum over conv j's
    output maps. The diagonal is the model's normal PAB output, at the input size (upsampled
    bilinearly from a PAB that decodes to 1/4 of it). Puts the model in eval mode."""
    if not supports_shuffle(model):
        raise ValueError("the 1x1 conv shuffle needs a grouped keypoint PAB with a shared decoder")
    model.eval()
    pab, size = model.pab, tuple(images.shape[-2:])
    out_size = map_size(size, pab.stride)
    _, high = model.backbone(images)
    rows = []
    for features in pab.group_features(high):
        decoded = pab.stacks[0](features)
        cells = [to_size(head(decoded), out_size).amax(1) for head in pab.heads]
        rows.append(to_size(torch.stack(cells, 1), size))
    return torch.stack(rows, dim=1).cpu().numpy()


def _peaks(grid: np.ndarray) -> np.ndarray:
    """(..., H, W) -> (..., 2) x, y of each map's maximum: its pixel's centre, in the store's
    frame of the keypoints it is compared with."""
    flat = grid.reshape(*grid.shape[:-2], -1).argmax(-1)
    y, x = np.divmod(flat, grid.shape[-1])
    return np.stack([x, y], axis=-1).astype(np.float64) + PIXEL_CENTRE


def decoupling_score(
    grid: np.ndarray,
    groups: tuple[tuple[int, ...], ...],
    keypoints: np.ndarray | None = None,
    radius: float | None = None,
) -> dict:
    """Where the off-diagonal cells (i != j) of :func:`shuffle_grid` peak.

    ``nearest_diagonal`` (needs no labels): the fraction of cells whose peak is nearer the peak of
    cell (i, i) (follows the features) than of cell (j, j) (follows the conv), ties apart.
    With ``keypoints`` (B, 17, 3) in input pixels: a cell peak lies in group g's body region when
    it is within ``radius`` (default 0.1 x image height) of a visible keypoint of g; fractions of
    the cells whose two groups both have visible keypoints, peaking in i's region only, j's only,
    both or neither; ``diagonal_in_region``: how often the matched cells (i, i) peak in i's region.
    """
    b, g = grid.shape[:2]
    peaks = _peaks(grid)  # (B, G, G, 2)
    score: dict = {"groups": g, "images": b, "nearest_diagonal": _nearest_diagonal(peaks)}
    if keypoints is None:
        return score
    radius = 0.1 * grid.shape[-2] if radius is None else radius
    score["keypoint_regions"] = _keypoint_regions(peaks, groups, keypoints, radius)
    return score


def _nearest_diagonal(peaks: np.ndarray) -> dict:
    """Of the off-diagonal cells' peaks (B, G, G, 2): the fractions nearer the feature group's
    own peak (cell (i, i)), nearer the conv's (cell (j, j)), or tied."""
    g = peaks.shape[1]
    diagonal = peaks[:, np.arange(g), np.arange(g)]  # (B, G, 2)
    off = ~np.eye(g, dtype=bool)
    to_feature = np.linalg.norm(peaks - diagonal[:, :, None], axis=-1)[:, off]
    to_conv = np.linalg.norm(peaks - diagonal[:, None, :], axis=-1)[:, off]
    cells = to_feature.size
    return {
        "cells": cells,
        "feature_group": float((to_feature < to_conv).sum() / cells),
        "conv_layer": float((to_conv < to_feature).sum() / cells),
        "tie": float((to_conv == to_feature).sum() / cells),
    }


def _keypoint_regions(
    peaks: np.ndarray, groups: tuple[tuple[int, ...], ...], keypoints: np.ndarray, radius: float
) -> dict:
    """Where the cells' peaks (B, G, G, 2) lie among the groups' body regions: see
    :func:`decoupling_score`."""
    b, g = peaks.shape[:2]
    visible = (keypoints[..., 2] > 0) & np.isfinite(keypoints[..., :2]).all(-1)

    def in_region(point: np.ndarray, image: int, group: int) -> bool | None:
        ids = [k for k in groups[group] if visible[image, k]]
        if not ids:
            return None
        return bool(np.linalg.norm(keypoints[image, ids, :2] - point, axis=-1).min() <= radius)

    counts = {"feature_group": 0, "conv_layer": 0, "both": 0, "neither": 0}
    hits = diagonal_cells = 0
    for image in range(b):
        for i in range(g):
            for j in range(g):
                own = in_region(peaks[image, i, j], image, i)
                if i == j:
                    if own is not None:
                        diagonal_cells, hits = diagonal_cells + 1, hits + own
                    continue
                other = in_region(peaks[image, i, j], image, j)
                if own is None or other is None:
                    continue
                key = (
                    ("both" if other else "feature_group")
                    if own
                    else ("conv_layer" if other else "neither")
                )
                counts[key] += 1
    labelled = sum(counts.values())
    return {
        "cells": labelled,
        "radius_px": float(radius),
        **{k: (v / labelled if labelled else None) for k, v in counts.items()},
        "diagonal_in_region": hits / diagonal_cells if diagonal_cells else None,
    }
