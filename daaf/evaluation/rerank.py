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
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from tqdm import tqdm

from daaf.evaluation.distance import distance_block, pair_distance, prepare_features

JACCARD_BATCH = 64  # queries per bincount in the Jaccard step


@dataclass(frozen=True)
class RerankParams:
    """The parameters of Zhong et al.'s re-ranking: ``k1`` nearest neighbours per k-reciprocal
    set, ``k2`` per query expansion, and ``lambda_value``, the weight of the original distance
    in the blend with the Jaccard one."""

    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3


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


def _expansion_pairs(knn: np.ndarray, k1: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols): the expanded k-reciprocal set of every image, as (image, member) pairs
    sorted by image, then member (the reference's per-row loop, vectorised).

    A member c of i's k-reciprocal set R(i) adds its own (k1/2)-reciprocal set R'(c) when more
    than 2/3 of R'(c) lies in R(i).
    """
    n = len(knn)
    half = knn[:, : int(np.around(k1 / 2.0)) + 1]
    recip = np.where(_reciprocal(knn), knn, -1)  # (N, k1 + 1), -1 = not reciprocal
    half_recip = np.where(_reciprocal(half), half, -2)  # (N, h + 1), -2 never matches
    half_size = (half_recip >= 0).sum(axis=1)
    rows, cols = [], []
    for start in range(0, n, chunk):
        r = recip[start : start + chunk]  # (C, K)
        cand = half_recip[np.maximum(r, 0)]  # (C, K, H): R'(c) for every member slot
        inside = (cand[..., None] == r[:, None, None, :]).any(axis=3).sum(axis=2)  # (C, K)
        accept = (r >= 0) & (inside > 2.0 / 3 * half_size[np.maximum(r, 0)])
        added = np.where(accept[..., None], cand, -1).reshape(len(r), -1)
        members = np.sort(np.concatenate([r, added], axis=1), axis=1)
        keep = members >= 0  # each member once: sorted, so a repeat follows its first
        keep[:, 1:] &= members[:, 1:] != members[:, :-1]
        row, slot = np.nonzero(keep)
        rows.append(row + start)
        cols.append(members[row, slot])
    return np.concatenate(rows), np.concatenate(cols)


def _rerank_core(
    knn: np.ndarray,
    dist_at: Callable[[np.ndarray, np.ndarray], np.ndarray],
    q_g: np.ndarray,
    num_query: int,
    params: RerankParams,
    progress: bool,
) -> np.ndarray:
    """Re-ranked distances from the :func:`_num_neighbours` nearest of every image; ``q_g`` (the
    normalised query-gallery distances) is overwritten with the result, which is returned."""
    n, k1, k2, lambda_value = len(knn), params.k1, params.k2, params.lambda_value
    rows, cols = _expansion_pairs(knn[:, : k1 + 1], k1)
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
    params: RerankParams = RerankParams(),
) -> np.ndarray:
    """Re-ranked (num_query, num_gallery) distances from the three distance matrices.

    Like Zhong's reference, it squares its input: Euclidean distances become d² (what BoT's
    feature-based code ranks), ``compute_distance``'s squared Euclidean ones d⁴ (what torchreid
    and ``daaf evaluate --rerank`` rank; docs/paper.md). For d², pass their square root.
    """
    original = np.block([[q_q_dist, q_g_dist], [q_g_dist.T, g_g_dist]]).astype(np.float32) ** 2
    original = (original / original.max(axis=0)).T
    knn = _topk_stable(
        torch.from_numpy(original), _num_neighbours(len(original), params.k1, params.k2)
    )
    num_query = len(q_q_dist)
    return _rerank_core(
        knn,
        lambda rows, cols: original[rows, cols],
        np.array(original[:num_query, num_query:]),  # a copy: the core overwrites it
        num_query,
        params,
        progress=False,
    )


def _merge_nearest(
    best: torch.Tensor,
    best_idx: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    values: torch.Tensor,
) -> None:
    """Fold candidates (``rows``, ``cols``, squared distance ``values``) into those rows' running
    k + 1 smallest (``best``, ascending, ties in any order, and ``best_idx``), in place."""
    if not len(rows):
        return
    touched, owner = torch.unique(rows, return_inverse=True)
    keep, arange = best.shape[1], torch.arange(len(touched), device=rows.device)
    owner = torch.cat([arange.repeat_interleave(keep), owner])
    values = torch.cat([best[touched].flatten(), values])
    cols = torch.cat([best_idx[touched].flatten(), cols])
    # One sort by (row, value): squares are >= +0, whose float32 bits order as their values.
    bits = values.view(torch.int32).to(torch.int64)
    order = torch.argsort((owner << 32) | bits)
    sizes = torch.bincount(owner)
    first = sizes.cumsum(0) - sizes
    pick = order[(first[:, None] + torch.arange(keep, device=rows.device)).flatten()]
    best[touched] = values[pick].view(-1, keep)
    best_idx[touched] = cols[pick].view(-1, keep)


def _nearest(
    rows_t: torch.Tensor,
    sq: torch.Tensor | None,
    metric: str,
    k: int,
    num_query: int,
    chunk: int,
    progress: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(knn, knn_dist, row_max, q_g) of the squared distances of every row of ``rows_t`` to
    every other: the k nearest in stable-argsort order of the normalised distances (the
    reference's ``argsort(dist / max)``) and those distances, each row's maximum, and the
    normalised query-gallery block.

    The distance matrix is symmetric: only the (chunk, chunk) blocks on and above the diagonal
    are computed, and each serves its rows and, transposed, its columns. Rows keep their k + 1
    smallest raw distances: a diagonal block gives the first by top-k, a later block only its
    entries below the row's current (k + 1)-th. Squaring and dividing by the row's maximum never
    reverse an order but may round two values to one, so a row whose k-th and (k + 1)-th
    normalised candidates tie is redone from its full row with a stable sort.
    """
    n, device = len(rows_t), rows_t.device
    best = torch.full((n, k + 1), torch.inf, device=device)
    best_idx = torch.full((n, k + 1), -1, dtype=torch.int64, device=device)
    row_max = torch.zeros(n, device=device)
    q_g = np.empty((num_query, n - num_query), np.float32)
    starts = range(0, n, chunk)
    pairs = [(a, a) for a in starts] + [(a, b) for a in starts for b in starts if b > a]
    for a, b in tqdm(pairs, desc="neighbours", disable=not progress, leave=False):
        g_sq = None if sq is None else sq[b : b + chunk]
        block = distance_block(rows_t[a : a + chunk], rows_t[b : b + chunk], g_sq, metric)
        block.square_()
        rows, cols = slice(a, a + block.shape[0]), slice(b, b + block.shape[1])
        row_max[rows] = torch.maximum(row_max[rows], block.amax(dim=1))
        if a == b:
            values, c = torch.topk(block, min(k + 1, len(block)), dim=1, largest=False)
            r = torch.arange(a, rows.stop, device=device).repeat_interleave(c.shape[1])
            _merge_nearest(best, best_idx, r, c.flatten() + a, values.flatten())
        else:
            row_max[cols] = torch.maximum(row_max[cols], block.amax(dim=0))
            row_thr, col_thr = best[rows, -1], best[cols, -1]
            r, c = torch.nonzero((block < row_thr[:, None]) | (block < col_thr), as_tuple=True)
            values = block[r, c]
            for_row, for_col = values < row_thr[r], values < col_thr[c]
            _merge_nearest(best, best_idx, r[for_row] + a, c[for_row] + b, values[for_row])
            _merge_nearest(best, best_idx, c[for_col] + b, r[for_col] + a, values[for_col])
        if a < num_query and cols.stop > num_query:  # query rows x gallery columns
            first = max(num_query - b, 0)
            q_g[a : min(rows.stop, num_query), b + first - num_query : cols.stop - num_query] = (
                block[: num_query - a, first:].cpu().numpy()
            )
    # (value, index) order: sort by index, then stably by normalised value
    best_idx, order = torch.sort(best_idx, dim=1)
    values, order = torch.sort((best / row_max[:, None]).gather(1, order), dim=1, stable=True)
    knn = best_idx.gather(1, order)[:, :k]
    redo = torch.nonzero(~(values[:, k - 1] < values[:, k])).flatten()  # a tie, or NaN
    for part in redo.split(chunk):
        full = distance_block(rows_t[part], rows_t, sq, metric).square_() / row_max[part, None]
        full, cols = torch.sort(full, dim=1, stable=True)
        knn[part], values[part, :k] = cols[:, :k], full[:, :k]
    row_max = row_max.cpu().numpy()
    q_g /= row_max[:num_query, None]
    return knn.cpu().numpy(), values[:, :k].cpu().numpy(), row_max, q_g


def re_ranking_features(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    params: RerankParams = RerankParams(),
    metric: str = "euclidean",
    chunk: int = 4096,
    progress: bool = True,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """The same result as :func:`re_ranking` on ``compute_distance`` matrices (so d⁴ for
    ``metric="euclidean"``, as that function says), in O(N * k) memory.

    Peak memory is one (chunk, chunk) distance block (64 MB) plus the sparse vectors, so
    MSMT17's 93,820 test images fit where the dense 93,820 x 93,820 matrix alone would need
    35 GB. The distance blocks and their nearest neighbours are computed on ``device``
    (default: the CPU), the sparse k-reciprocal steps on the CPU. Smaller blocks are no faster
    on one thread and slower on several of a busy CPU, whose threads wait for one another
    after every operation.
    """
    feats = np.concatenate([q_feats, g_feats]).astype(np.float32)
    n, num_query = len(feats), len(q_feats)
    rows_t, sq = prepare_features(feats, metric, device)
    knn, knn_dist, row_max, q_g = _nearest(
        rows_t, sq, metric, _num_neighbours(n, params.k1, params.k2), num_query, chunk, progress
    )

    def dist_at(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Normalised distances of (row, col) pairs, in chunks: from the neighbour table where
        col is one of row's k nearest (most pairs), else computed pair by pair."""
        out = np.empty(len(rows), np.float32)
        for s in range(0, len(rows), 1 << 16):
            r, c = rows[s : s + (1 << 16)], cols[s : s + (1 << 16)]
            found = knn[r] == c[:, None]
            slot = found.argmax(axis=1)
            part = knn_dist[r, slot]
            miss = ~found[np.arange(len(r)), slot]
            r, c = r[miss], c[miss]
            part[miss] = pair_distance(feats[r], feats[c], metric) ** 2 / row_max[r]
            out[s : s + len(part)] = part
        return out

    return _rerank_core(knn, dist_at, q_g, num_query, params, progress)
