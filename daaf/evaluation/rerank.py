"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) with the semantics of the authors' code.

The reference code squares the given distances, normalises each column by its maximum
(the matrix is symmetric, so row i is divided by its own maximum), takes k1-nearest
neighbours, keeps the k-reciprocal ones, expands that set by the (k1/2)-reciprocal sets of its
members that overlap it by more than 2/3, weights the set by exp(-distance), averages these
vectors over the k2 nearest neighbours (query expansion), and blends the Jaccard distance of
the vectors with the original one: ``(1 - lambda) * jaccard + lambda * original``. Where
there are fewer images than neighbours asked for (k1 + 1, or k2), every image is a neighbour,
as in the reference's slices of its full argsort.

Two entry points share one implementation: :func:`re_ranking` takes the three distance
matrices (as the reference does); :func:`re_ranking_features` takes features and never builds
an N x N matrix: nearest neighbours come from chunked distance blocks, the vectors are sparse,
and the Jaccard distance is computed one query at a time through the inverted index.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from tqdm import tqdm

from daaf.evaluation.distance import distance_block, pair_distance, prepare_features

JACCARD_BATCH = 64  # queries per bincount in the Jaccard step


def _topk_stable(block: torch.Tensor, k: int) -> np.ndarray:
    """Indices of the k smallest entries per row, ordered as a stable argsort would order them;
    computed on the block's device."""
    if k >= block.shape[1]:
        return torch.sort(block, dim=1, stable=True).indices.cpu().numpy()
    values, part = torch.topk(block, k + 1, dim=1, largest=False, sorted=False)
    part, order = torch.sort(part, dim=1)  # by index, then stably by value: (value, index) order
    values, order = torch.sort(values.gather(1, order), dim=1, stable=True)
    part = part.gather(1, order)
    # Where the k-th and (k+1)-th values tie, which equal entries make the cut depends on the
    # selection: redo those (rare) rows with a full stable sort.
    ties = torch.nonzero(values[:, k - 1] == values[:, k]).flatten()
    if len(ties):
        part[ties, :k] = torch.sort(block[ties], dim=1, stable=True).indices[:, :k]
    return part[:, :k].cpu().numpy()


def _num_neighbours(n: int, k1: int, k2: int) -> int:
    """Columns of the neighbour table: the k1 + 1 (and k2) nearest, or all n images if fewer."""
    return min(n, max(k1 + 1, k2))


def _reciprocal(knn: np.ndarray) -> np.ndarray:
    """(N, k) mask: knn[i, j] has i among its own neighbours."""
    rows = np.arange(len(knn))[:, None, None]
    return (knn[knn] == rows).any(axis=2)


def _expansion_sets(knn: np.ndarray, k1: int, chunk: int = 1024) -> list[np.ndarray]:
    """The expanded k-reciprocal set of every image (the reference's per-row loop, vectorised).

    A member c of i's k-reciprocal set R(i) adds its own (k1/2)-reciprocal set R'(c) when more
    than 2/3 of R'(c) lies in R(i).
    """
    n = len(knn)
    half = knn[:, : int(np.around(k1 / 2.0)) + 1]
    recip = np.where(_reciprocal(knn), knn, -1)  # (N, k1 + 1), -1 = not reciprocal
    half_recip = np.where(_reciprocal(half), half, -2)  # (N, h + 1), -2 never matches
    half_size = (half_recip >= 0).sum(axis=1)
    sets = []
    for start in range(0, n, chunk):
        r = recip[start : start + chunk]  # (C, K)
        cand = half_recip[np.maximum(r, 0)]  # (C, K, H): R'(c) for every member slot
        inside = (cand[..., None] == r[:, None, None, :]).any(axis=3).sum(axis=2)  # (C, K)
        accept = (r >= 0) & (inside > 2.0 / 3 * half_size[np.maximum(r, 0)])
        for row, accepted, members in zip(r, accept, cand, strict=True):
            parts = np.concatenate([row[row >= 0], members[accepted].ravel()])
            sets.append(np.unique(parts[parts >= 0]))
    return sets


def _rerank_core(
    knn: np.ndarray,
    dist_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
    q_g: np.ndarray,
    num_query: int,
    k1: int,
    k2: int,
    lambda_value: float,
    progress: bool,
) -> np.ndarray:
    """Re-ranked distances from the :func:`_num_neighbours` nearest of every image; ``q_g`` (the
    normalised query-gallery distances) is overwritten with the result, which is returned."""
    n = len(knn)
    sets = _expansion_sets(knn[:, : k1 + 1], k1)
    rows = np.repeat(np.arange(n), [len(m) for m in sets])
    cols = np.concatenate(sets)
    weight = np.exp(-dist_at(rows, cols).astype(np.float64))
    vals = weight / np.bincount(rows, weights=weight, minlength=n)[rows]
    V = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    if k2 != 1:
        expand = knn[:, :k2]  # fewer than k2 columns when there are fewer than k2 images
        width = expand.shape[1]
        qe = sp.csr_matrix(
            (np.full(n * width, 1.0 / width), (np.repeat(np.arange(n), width), expand.ravel())),
            shape=(n, n),
        )
        V = (qe @ V).tocsr()
    # Inverted index over gallery rows only: the result keeps gallery columns only.
    gallery_by_col = V[num_query:].tocsc()
    num_gallery = n - num_query
    indptr, indices, data = gallery_by_col.indptr, gallery_by_col.indices, gallery_by_col.data
    batches = range(0, num_query, JACCARD_BATCH)
    for start in tqdm(batches, desc="jaccard", disable=not progress, leave=False):
        # sum_k min(V[i, k], V[j, k]) over the columns k where V[i] is non-zero, for all j at
        # once, for a batch of queries i: one bincount over (query, gallery image) pairs.
        stop = min(start + JACCARD_BATCH, num_query)
        lo, hi = V.indptr[start], V.indptr[stop]
        cols, values = V.indices[lo:hi], V.data[lo:hi]
        owner = np.repeat(np.arange(stop - start), np.diff(V.indptr[start : stop + 1]))
        starts, lengths = indptr[cols], indptr[cols + 1] - indptr[cols]
        flat = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        mins = np.minimum(np.repeat(values, lengths), data[flat])
        target = np.repeat(owner, lengths) * num_gallery + indices[flat]
        temp_min = np.bincount(target, weights=mins, minlength=(stop - start) * num_gallery)
        temp_min = temp_min.reshape(stop - start, num_gallery)
        jaccard = 1 - temp_min / (2.0 - temp_min)
        # Blended into q_g in place: at MSMT17 scale one such matrix is 3.8 GB.
        q_g[start:stop] = jaccard * (1 - lambda_value) + q_g[start:stop] * lambda_value
    return q_g


def re_ranking(
    q_g_dist: np.ndarray,
    q_q_dist: np.ndarray,
    g_g_dist: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
) -> np.ndarray:
    """Re-ranked (num_query, num_gallery) distances from the three distance matrices.

    Like Zhong's reference, it squares its input: Euclidean distances become d² (what BoT's
    feature-based code ranks), ``compute_distance``'s squared Euclidean ones d⁴ (what torchreid
    and ``daaf evaluate --rerank`` rank; docs/paper.md). For d², pass their square root.
    """
    original = np.block([[q_q_dist, q_g_dist], [q_g_dist.T, g_g_dist]]).astype(np.float32) ** 2
    original = (original / original.max(axis=0)).T
    knn = _topk_stable(torch.from_numpy(original), _num_neighbours(len(original), k1, k2))
    num_query = len(q_q_dist)
    return _rerank_core(
        knn,
        lambda rows, cols: original[rows, cols],
        np.array(original[:num_query, num_query:]),  # a copy: the core overwrites it
        num_query,
        k1,
        k2,
        lambda_value,
        progress=False,
    )


def re_ranking_features(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    metric: str = "euclidean",
    chunk: int = 2048,
    progress: bool = True,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """The same result as :func:`re_ranking` on ``compute_distance`` matrices (so d⁴ for
    ``metric="euclidean"``, as that function says), in O(N * k) memory.

    Peak memory is one (chunk, N) distance block plus the sparse vectors, so MSMT17's 93,820
    test images fit where the dense 93,820 x 93,820 matrix alone would need 35 GB. The
    distance blocks and their nearest neighbours are computed on ``device`` (default: the
    CPU), the sparse k-reciprocal steps on the CPU.
    """
    feats = np.concatenate([q_feats, g_feats]).astype(np.float32)
    n, num_query = len(feats), len(q_feats)
    rows_t, sq = prepare_features(feats, metric, device)
    num_neighbours = _num_neighbours(n, k1, k2)
    knn = np.empty((n, num_neighbours), np.int64)
    row_max = np.empty(n, np.float32)
    q_g = np.empty((num_query, n - num_query), np.float32)
    for start in tqdm(range(0, n, chunk), desc="neighbours", disable=not progress, leave=False):
        block = distance_block(rows_t[start : start + chunk], rows_t, sq, metric).square_()
        block_max = block.amax(dim=1)
        block /= block_max[:, None]
        stop = start + len(block)
        row_max[start:stop] = block_max.cpu().numpy()
        if start < num_query:
            q_g[start : min(stop, num_query)] = block[: num_query - start, num_query:].cpu().numpy()
        knn[start:stop] = _topk_stable(block, num_neighbours)

    def dist_at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Normalised distances of (row, col) pairs, computed pair by pair in chunks."""
        out = np.empty(len(rows), np.float32)
        for s in range(0, len(rows), 1 << 16):
            r, c = rows[s : s + (1 << 16)], cols[s : s + (1 << 16)]
            out[s : s + len(r)] = pair_distance(feats[r], feats[c], metric) ** 2 / row_max[r]
        return out

    return _rerank_core(knn, dist_at, q_g, num_query, k1, k2, lambda_value, progress)
