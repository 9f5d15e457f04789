"""Query-gallery distances: squared Euclidean (as torchreid and fast-reid) or cosine (1 - cos)."""

from __future__ import annotations

import numpy as np
import torch

from daaf.errors import DaafError

METRICS = ("euclidean", "cosine")


def compute_distance(
    q_feats: np.ndarray, g_feats: np.ndarray, metric: str = "euclidean", chunk: int = 4096
) -> np.ndarray:
    """float32 (num_query, num_gallery) distances, computed in row chunks with torch matmul."""
    if metric not in METRICS:
        raise DaafError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    q = torch.from_numpy(np.ascontiguousarray(q_feats, dtype=np.float32))
    g = torch.from_numpy(np.ascontiguousarray(g_feats, dtype=np.float32))
    if metric == "cosine":
        q = torch.nn.functional.normalize(q, dim=1)
        g = torch.nn.functional.normalize(g, dim=1)
    g_sq = (g * g).sum(dim=1)
    out = np.empty((len(q), len(g)), np.float32)
    for start in range(0, len(q), chunk):
        qc = q[start : start + chunk]
        if metric == "cosine":
            block = 1 - qc @ g.T
        else:
            block = ((qc * qc).sum(dim=1, keepdim=True) + g_sq[None] - 2 * qc @ g.T).clamp_min_(0)
        out[start : start + chunk] = block.numpy()
    return out


def pair_distance(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distances between rows ``a[i]`` and ``b[i]`` (same formula as :func:`compute_distance`)."""
    a = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    b = torch.from_numpy(np.ascontiguousarray(b, dtype=np.float32))
    if metric == "cosine":
        a, b = torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(b, dim=1)
        return (1 - (a * b).sum(dim=1)).numpy()
    return ((a * a).sum(dim=1) + (b * b).sum(dim=1) - 2 * (a * b).sum(dim=1)).clamp_min(0).numpy()
