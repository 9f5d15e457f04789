"""Nearest gallery items of query embeddings, scanning the gallery in blocks: a gallery of
1,000,000 x 2,048 float32 (8 GB) is searched with two blocks (and one's distances) in memory:
the next block is read while the current one is multiplied."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from daaf.errors import DaafError
from daaf.evaluation.distance import distance_block, prepare_features, squared_norms
from daaf.evaluation.metrics import require_finite
from daaf.evaluation.rerank import re_ranking_features
from daaf.inference.store import Embeddings, decode_paths, feature_blocks, open_embeddings

BLOCK_ROWS = 8192  # gallery rows per block: 64 MB of 2,048-d float32, two in memory at once
RERANK_POOL = 100  # gallery candidates per query that --rerank re-ranks (the union over queries)


def top_k_blocks(
    queries: np.ndarray, blocks: Iterable[tuple[int, np.ndarray]], top: int, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """``(distances, gallery indices)``, each (Q, top) nearest first, over gallery blocks
    ``(start, rows)``: the block's distances as ``daaf evaluate`` computes them, the ``top``
    smallest merged into a running list. Fewer columns when the gallery is smaller.

    The next block is fetched (read from the file) and its norms computed by a thread while
    this one multiplies the current block (torch releases the GIL), so a block from
    :func:`~daaf.inference.store.feature_blocks` is used before its buffer is read into again.
    """
    if top < 1:
        raise DaafError(f"--top must be at least 1, got {top}")
    q, _ = prepare_features(queries, metric)
    best_d = torch.empty((len(q), 0))
    best_i = torch.empty((len(q), 0), dtype=torch.long)
    for start, g, norms in _ahead(blocks, metric):
        if metric == "cosine":  # evaluate's 1 - q.g of unit rows, without normalising a copy
            dist = torch.mm(q, g.T).div_(norms.clamp_min(1e-12)).neg_().add_(1)
        else:
            dist = distance_block(q, g, norms, metric)
        require_finite(
            dist.numpy(), f"query-gallery distances of gallery rows {start}-{start + len(g) - 1}"
        )
        d, i = torch.topk(dist, min(top, dist.shape[1]), dim=1, largest=False)
        best_d = torch.cat([best_d, d], dim=1)
        best_i = torch.cat([best_i, i + start], dim=1)
        if best_d.shape[1] > top:
            best_d, keep = torch.topk(best_d, top, dim=1, largest=False)
            best_i = best_i.gather(1, keep)
    # nearest first; equal distances by gallery index, as evaluate's stable sort
    order = np.lexsort((best_i.numpy(), best_d.numpy()), axis=1)
    return np.take_along_axis(best_d.numpy(), order, 1), np.take_along_axis(
        best_i.numpy(), order, 1
    )


def _ahead(
    blocks: Iterable[tuple[int, np.ndarray]], metric: str
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """``(start, rows, norms)`` of each block, the next one fetched by a thread meanwhile: the
    rows' lengths (cosine: ``normalize``'s) or squared lengths (Euclidean: ``prepare_features``')."""
    blocks = iter(blocks)

    def fetch() -> tuple[int, torch.Tensor, torch.Tensor] | None:
        block = next(blocks, None)
        if block is None:
            return None
        g = torch.from_numpy(np.ascontiguousarray(block[1], dtype=np.float32))
        if metric == "cosine":
            return block[0], g, torch.linalg.vector_norm(g, dim=1)
        return block[0], g, squared_norms(g)

    with ThreadPoolExecutor(1) as thread:
        coming = thread.submit(fetch)
        while (block := coming.result()) is not None:
            coming = thread.submit(fetch)
            yield block


def search_file(
    queries: np.ndarray,
    gallery: Path,
    top: int,
    metric: str,
    rerank: bool = False,
    block_rows: int = BLOCK_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``top`` nearest rows of an embedding file for each query: ``(distances, indices)``.

    ``rerank``: k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3, as ``daaf evaluate --rerank``)
    of the union of each query's ``max(top, RERANK_POOL)`` nearest gallery items, so that the
    whole gallery never needs an N x N structure; its distances are the re-ranked ones.
    """
    with open_embeddings(gallery) as f:
        if not len(f["features"]):
            raise DaafError(f"{gallery}: holds no embeddings (none of its images could be read)")
        pool = max(top, RERANK_POOL) if rerank else top
        dist, idx = top_k_blocks(queries, feature_blocks(f, block_rows), pool, metric)
        if not rerank:
            return dist, idx
        candidates = np.unique(idx)
        g_feats = f["features"][candidates]  # h5py reads sorted unique indices
    reranked = re_ranking_features(queries, g_feats, metric=metric, progress=False)
    k = min(top, len(candidates))
    order = np.argsort(reranked, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(reranked, order, 1), candidates[order]


def check_same_model(attrs: dict, sha256: str, dim: int, name: str) -> None:
    """DaafError when an embedding file was not made by the model ``sha256`` (or has another
    dimension): its distances to this model's embeddings would mean nothing."""
    if attrs.get("embedding_dim") != dim:
        raise DaafError(
            f"{name}: embeddings of dimension {attrs.get('embedding_dim')}, but --model gives {dim}"
            f" (made by another model: {attrs.get('model')}); embed it again with this model"
        )
    if attrs.get("model_sha256") != sha256:
        raise DaafError(
            f"{name} was made by another model ({attrs.get('model')}, SHA-256 "
            f"{str(attrs.get('model_sha256'))[:12]}..., --model is {sha256[:12]}...); "
            "embed it again with this model"
        )


def gallery_subset(gallery: Path, indices: np.ndarray) -> Embeddings:
    """Paths (and the root) of the given gallery rows, without reading the features."""
    with open_embeddings(gallery) as f:
        unique, inverse = np.unique(indices, return_inverse=True)
        names = decode_paths(f["paths"][unique], gallery) if len(unique) else []
        attrs = {"root": f.attrs.get("root", "")}
    return Embeddings(np.zeros((0, 0), np.float32), [names[i] for i in inverse.ravel()], [], attrs)
