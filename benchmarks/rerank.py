"""k-reciprocal re-ranking: feature-based sparse implementation vs the dense reference algorithm.

    python benchmarks/rerank.py [--sizes 1000 3000 19281] [--dim 2048]

For each size (queries = 17.5 % of the images, as in Market-1501) prints time and peak traced
memory of ``re_ranking`` on dense matrices (the reference algorithm as published, vectorised
where it keeps the same arithmetic) and of ``re_ranking_features``, their ratios, and the
largest difference of the results.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from daaf.evaluation.distance import compute_distance
from daaf.evaluation.rerank import re_ranking_features


def dense_reference(q_g, q_q, g_g, k1=20, k2=6, lam=0.3):
    """The published algorithm with dense N x N arrays (V, V_qe, Jaccard over all images)."""
    dist = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32) ** 2
    dist = (dist / dist.max(axis=0)).T
    n, nq = len(dist), len(q_q)
    rank = np.argsort(dist, axis=1, kind="stable")
    V = np.zeros_like(dist)
    half = int(np.around(k1 / 2)) + 1
    for i in range(n):
        fwd = rank[i, : k1 + 1]
        recip = fwd[np.where(rank[fwd, : k1 + 1] == i)[0]]
        expansion = recip
        for c in recip:
            cf = rank[c, :half]
            c_recip = cf[np.where(rank[cf, :half] == c)[0]]
            if len(np.intersect1d(c_recip, recip)) > 2 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        w = np.exp(-dist[i, expansion])
        V[i, expansion] = w / w.sum()
    if k2 != 1:
        V_qe = np.zeros_like(V)
        for i in range(n):
            V_qe[i] = V[rank[i, :k2]].mean(axis=0)
        V = V_qe
    inv = [np.where(V[:, j] != 0)[0] for j in range(n)]
    jaccard = np.zeros((nq, n), np.float32)
    for i in range(nq):
        temp_min = np.zeros(n, np.float32)
        nonzero = np.where(V[i] != 0)[0]
        for j in nonzero:
            temp_min[inv[j]] += np.minimum(V[i, j], V[inv[j], j])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    return (jaccard * (1 - lam) + dist[:nq] * lam)[:, nq:]


def measure(fn):
    tracemalloc.start()
    tic = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - tic
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--skip-dense-above", type=int, default=20000)
    args = parser.parse_args()
    print(
        f"{'images':>8}{'dense s':>10}{'dense MB':>10}{'daaf s':>10}{'daaf MB':>10}{'speed-up':>10}{'mem ratio':>10}{'max diff':>10}"
    )
    for n in args.sizes:
        rng = np.random.default_rng(n)
        ids = rng.integers(0, n // 8, n)
        feats = (rng.normal(size=(n // 8, args.dim))[ids] + rng.normal(size=(n, args.dim))).astype(
            np.float32
        )
        nq = int(0.175 * n)
        q, g = feats[:nq], feats[nq:]
        ours, t_ours, m_ours = measure(lambda q=q, g=g: re_ranking_features(q, g, progress=False))
        if n > args.skip_dense_above:
            print(f"{n:>8}{'-':>10}{'-':>10}{t_ours:>10.1f}{m_ours:>10.0f}")
            continue

        def dense(q=q, g=g):
            return dense_reference(
                compute_distance(q, g), compute_distance(q, q), compute_distance(g, g)
            )

        ref, t_ref, m_ref = measure(dense)
        diff = float(np.abs(ref - ours).max())
        print(
            f"{n:>8}{t_ref:>10.1f}{m_ref:>10.0f}{t_ours:>10.1f}{m_ours:>10.0f}{t_ref / t_ours:>10.1f}{m_ours / m_ref:>10.2f}{diff:>10.1e}"
        )


if __name__ == "__main__":
    main()
