"""Query-gallery distances: squared Euclidean (as torchreid and fast-reid) or cosine (1 - cos)."""

from __future__ import annotations

import numpy as np
import torch

from daaf.errors import DaafError
from daaf.utils.device import resolve_device

METRICS = ("euclidean", "cosine")


def prepare_features(
    feats: np.ndarray, metric: str, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """float32 tensor of the rows (unit length for cosine) on ``device`` (default: the CPU) and,
    for Euclidean, their squared norms: what :func:`distance_block` needs, computed once per
    feature set."""
    if metric not in METRICS:
        raise DaafError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    x = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float32))
    if device is not None:
        x = x.to(resolve_device(device))
    if metric == "cosine":
        return torch.nn.functional.normalize(x, dim=1), None
    return x, squared_norms(x)


def squared_norms(x: torch.Tensor) -> torch.Tensor:
    """Each row's sum of squares, ``(x * x).sum(dim=1)`` to the bit (a row's sum does not depend
    on the other rows), computed 1,024 rows at a time: no temporary the size of ``x``, about 5x
    faster on a 2,048-d gallery."""
    return torch.cat([(rows * rows).sum(dim=1) for rows in x.split(1024)])


def distance_block(
    q: torch.Tensor, g: torch.Tensor, g_sq: torch.Tensor | None, metric: str
) -> torch.Tensor:
    """(len(q), len(g)) distances of rows from :func:`prepare_features`, as one fused matmul."""
    if metric == "cosine":
        return torch.mm(q, g.T).neg_().add_(1)
    q_sq = (q * q).sum(dim=1, keepdim=True)
    return torch.addmm(g_sq[None], q, g.T, alpha=-2).add_(q_sq).clamp_min_(0)


def compute_distance(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    metric: str = "euclidean",
    chunk: int = 4096,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """float32 (num_query, num_gallery) distances, computed in row chunks with torch matmul on
    ``device`` (default: the CPU)."""
    q, _ = prepare_features(q_feats, metric, device)
    g, g_sq = prepare_features(g_feats, metric, device)
    out = np.empty((len(q), len(g)), np.float32)
    for start in range(0, len(q), chunk):
        block = distance_block(q[start : start + chunk], g, g_sq, metric)
        out[start : start + chunk] = block.cpu().numpy()
    return out


def pair_distance(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distances between rows ``a[i]`` and ``b[i]`` (same formula as :func:`compute_distance`)."""
    a, a_sq = prepare_features(a, metric)
    b, b_sq = prepare_features(b, metric)
    dot = (a * b).sum(dim=1)
    if metric == "cosine":
        return (1 - dot).numpy()
    return (a_sq + b_sq - 2 * dot).clamp_min(0).numpy()
