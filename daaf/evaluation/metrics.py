"""Ranking metrics under the Market-1501 / DukeMTMC protocol: CMC, mAP and mINP.

For each query, gallery images with the query's identity AND camera are removed; queries left
without a positive are skipped; ties in distance are broken by gallery index (stable sort).
Queries are processed in chunks so that memory stays bounded on MSMT17-size problems.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daaf.errors import DaafError

CHUNK_ELEMENTS = (
    1 << 24
)  # query x gallery entries per chunk (~16M: a few hundred MB of work arrays)


@dataclass
class RankResult:
    """cmc: (max_rank,) fraction of valid queries with a match within rank r+1.

    ``ap`` and ``inp`` hold one value per query (NaN for skipped queries), for rank lists.
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    ap: np.ndarray
    inp: np.ndarray

    def summary(self) -> dict[str, float]:
        """The numbers a table shows (percent for mAP, mINP and ranks)."""
        row = {"mAP": 100 * self.mAP, "mINP": 100 * self.mINP}
        for r in (1, 3, 5, 10, 20):
            if r <= len(self.cmc):
                row[f"rank{r}"] = 100 * float(self.cmc[r - 1])
        row["num_valid_queries"] = self.num_valid_queries
        return row


def _rank_chunk(distmat, q_pids, g_pids, q_camids, g_camids, max_rank):
    """CMC hits (Q, max_rank), AP (Q,), INP (Q,) and validity (Q,) for a chunk of queries."""
    order = np.argsort(distmat, axis=1, kind="stable")
    same_pid = g_pids[order] == q_pids[:, None]
    keep = ~(same_pid & (g_camids[order] == q_camids[:, None]))
    matches = same_pid & keep
    num_pos = matches.sum(axis=1)
    valid = num_pos > 0
    position = np.cumsum(keep, axis=1) - 1  # rank of each kept gallery item, 0-based
    hits_before = np.cumsum(matches, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(matches, hits_before / (position + 1), 0.0)
        ap = precision.sum(axis=1) / num_pos
        first = np.where(matches, position, np.iinfo(np.int64).max).min(axis=1)
        last = np.where(matches, position, -1).max(axis=1)
        inp = num_pos / (last + 1)
    cmc = first[:, None] <= np.arange(max_rank)[None, :]
    return cmc, ap, inp, valid


def evaluate_rank(
    distmat: np.ndarray,
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    max_rank: int = 50,
) -> RankResult:
    """CMC, mAP and mINP of a (num_query, num_gallery) distance matrix (smaller = more similar)."""
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    if (len(q_pids), len(g_pids)) != (num_q, num_g):
        raise ValueError(
            f"distmat is {distmat.shape} but there are {len(q_pids)} query and {len(g_pids)} gallery ids"
        )
    chunk = max(1, CHUNK_ELEMENTS // max(num_g, 1))
    cmc_sum = np.zeros(max_rank)
    ap = np.full(num_q, np.nan)
    inp = np.full(num_q, np.nan)
    for start in range(0, num_q, chunk):
        sl = slice(start, start + chunk)
        hits, ap_c, inp_c, valid = _rank_chunk(
            distmat[sl], q_pids[sl], g_pids, q_camids[sl], g_camids, max_rank
        )
        cmc_sum += hits[valid].sum(axis=0)
        ap[sl] = np.where(valid, ap_c, np.nan)
        inp[sl] = np.where(valid, inp_c, np.nan)
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
    )
