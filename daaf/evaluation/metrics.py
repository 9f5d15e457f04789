"""Ranking metrics under the Market-1501 / DukeMTMC protocol: CMC, mAP and mINP.

For each query, gallery images with the query's identity AND camera are removed; queries left
without a positive are skipped; ties in distance are broken by gallery index (stable sort).
No gallery is ever sorted: a query's metrics need only the ranks of its few positives, which
are counts of closer gallery items, so time is O(G log P) per query and memory O(G), whatever
the size of the distance matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from daaf.errors import DaafError
from daaf.utils.device import resolve_device

DEVICE_CHUNK = 256  # queries sorted at once on a device: 256 x 15,913 gallery items, 49 MB


@dataclass
class RankResult:
    """cmc: (max_rank,) fraction of valid queries with a match within rank r+1.

    ``ap``, ``inp`` and ``first_hit`` (1-based rank of the first true match) hold one value per
    query, NaN for skipped queries: the per-query results, and ``mAP``/``mINP`` are their means.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    ap: np.ndarray
    inp: np.ndarray
    first_hit: np.ndarray

    def summary(self) -> dict[str, float]:
        """The numbers a table shows (percent for mAP, mINP and ranks)."""
        row = {"mAP": 100 * self.mAP, "mINP": 100 * self.mINP}
        for r in (1, 3, 5, 10, 20):
            if r <= len(self.cmc):
                row[f"rank{r}"] = 100 * float(self.cmc[r - 1])
        row["num_valid_queries"] = self.num_valid_queries
        return row


def require_finite(values: np.ndarray, what: str, outcome: str = "nothing was scored") -> None:
    """DaafError naming how many of ``values`` are NaN or infinite, ending with ``outcome``: a
    ranking of them would be meaningless (a NaN compares false with everything, and an all-NaN
    matrix scores 100%)."""
    bad = values.size - int(np.count_nonzero(np.isfinite(values)))
    if bad:
        raise DaafError(
            f"{bad} of {values.size} {what} are not finite (NaN or inf): the model's weights or "
            f"its inputs are broken (a diverged training run?); {outcome}"
        )


def _positive_ranks(dist: np.ndarray, q_pid, q_camid, g_pids, g_camids) -> np.ndarray:
    """0-based ranks, sorted, of one query's positives among the kept gallery items.

    No sorting of the gallery: a positive's rank is the number of kept items closer than it,
    plus the kept items at the same distance with a smaller gallery index (the stable
    tie-break). Only items no farther than the farthest positive can count, so they are
    picked first and compared with the few positives.
    """
    same = g_pids == q_pid
    junk = same & (g_camids == q_camid)
    positives = np.flatnonzero(same & ~junk)
    if len(positives) == 0:
        return positives
    d_pos = dist[positives]
    near = np.flatnonzero((dist <= d_pos.max()) & ~junk)
    d_near = dist[near][None, :]
    closer = np.count_nonzero(d_near < d_pos[:, None], axis=1)
    level = np.count_nonzero(d_near == d_pos[:, None], axis=1)
    if (level > 1).any():  # another item at a positive's distance: the lower index goes first
        ties = (d_near == d_pos[:, None]) & (near[None, :] < positives[:, None])
        closer += np.count_nonzero(ties, axis=1)
    return np.sort(closer)


def _positive_ranks_torch(
    distmat: np.ndarray, q_pids, g_pids, q_camids, g_camids, device: torch.device | str
) -> Iterator[np.ndarray]:
    """What :func:`_positive_ranks` gives for every query in turn, from stable sorts of chunks
    of queries on ``device``."""
    g_pids_t = torch.as_tensor(g_pids, device=device)
    g_camids_t = torch.as_tensor(g_camids, device=device)
    for start in range(0, len(distmat), DEVICE_CHUNK):
        stop = min(start + DEVICE_CHUNK, len(distmat))
        order = torch.sort(
            torch.as_tensor(distmat[start:stop], device=device), dim=1, stable=True
        ).indices
        same = g_pids_t[order] == torch.as_tensor(q_pids[start:stop], device=device)[:, None]
        junk = same & (
            g_camids_t[order] == torch.as_tensor(q_camids[start:stop], device=device)[:, None]
        )
        kept_rank = torch.cumsum(~junk, dim=1) - 1  # 0-based rank among the kept items
        rows, cols = torch.nonzero(same & ~junk, as_tuple=True)  # row-major: ranks ascend
        ranks = kept_rank[rows, cols].cpu().numpy()
        counts = torch.bincount(rows, minlength=stop - start).cpu().numpy()
        yield from np.split(ranks, np.cumsum(counts)[:-1])


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
    device: torch.device | str | None = None,
) -> RankResult:
    """CMC, mAP and mINP of a (num_query, num_gallery) distance matrix (smaller = more similar),
    with the per-query AP, INP and first-hit rank they average. With ``device`` the ranks of
    the positives come from torch sorts on that device (same results)."""
    distmat = np.asarray(distmat)
    require_finite(distmat, "query-gallery distances")
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    if (len(q_pids), len(g_pids)) != (num_q, num_g):
        raise ValueError(
            f"distmat is {distmat.shape} but there are {len(q_pids)} query and {len(g_pids)} gallery ids"
        )
    cmc_counts = np.zeros(max_rank + 1)
    ap = np.full(num_q, np.nan)
    inp = np.full(num_q, np.nan)
    first_hit = np.full(num_q, np.nan)
    if device is None:
        per_query = (
            _positive_ranks(distmat[q], q_pids[q], q_camids[q], g_pids, g_camids)
            for q in range(num_q)
        )
    else:
        per_query = _positive_ranks_torch(
            distmat, q_pids, g_pids, q_camids, g_camids, resolve_device(device)
        )
    for q, ranks in enumerate(per_query):
        if len(ranks):
            ap[q] = np.mean(np.arange(1, len(ranks) + 1) / (ranks + 1))
            inp[q] = len(ranks) / (ranks[-1] + 1)
            first_hit[q] = ranks[0] + 1
            cmc_counts[min(ranks[0], max_rank)] += 1
    cmc_sum = np.cumsum(cmc_counts)[:max_rank]
    num_valid = int(np.isfinite(ap).sum())
    if num_valid == 0:
        raise DaafError(
            "no query has a positive in the gallery (same identity, different camera): "
            "check that query and gallery come from the same dataset and split"
        )
    return RankResult(
        cmc=cmc_sum / num_valid,
        mAP=float(np.nanmean(ap)),
        mINP=float(np.nanmean(inp)),
        num_valid_queries=num_valid,
        ap=ap,
        inp=inp,
        first_hit=first_hit,
    )
