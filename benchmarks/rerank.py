"""k-reciprocal re-ranking: feature-based sparse implementation vs the dense reference algorithm.

    python benchmarks/rerank.py [--sizes 1000 3000 19281] [--dim 256] [--msmt] [--threads 1]

For each size (queries = 17.5 % of the images, as in Market-1501; ``--msmt``: 11,659 queries and
82,161 gallery images, reference skipped) each implementation runs in a fresh process on
``--threads`` torch threads (default 1: the reference's loops are single-threaded NumPy, and on
a shared CPU threads that wait for one another make the figures erratic): wall time and peak
resident memory above the process's baseline (features already in memory), their ratios, and
the largest difference of the results.

Measured 2026-12-02 at 416ed51 on a 2-core AMD EPYC VM shared with two training runs, one
thread each (load average 3.0 before, 2.4 after): 19,281 images, dense 180.2 s, daaf 9.21 s,
19.6x, max diff 3.9e-07 (at load 4-5: 227.6 s and 9.62 s, 23.7x; ``--threads 2`` at load 3-4:
248.6 s and 18.85 s, 13.2x, as daaf's threaded block operations wait on one another on a busy
CPU). daaf at 320ca94, before the symmetric blocks, took 13-20 s at load 3-4. MSMT17 scale,
load 2.5: 143 s and 3,963 MiB (the 11,659 x 82,161 result is 3,654 MiB), against 210 s and
4,973 MiB at 320ca94 right after.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from daaf.evaluation.distance import compute_distance
from daaf.evaluation.rerank import re_ranking_features

MSMT = (11_659, 82_161)


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


def features(num_query: int, num_gallery: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Clustered random features: about 8 images per identity, as in ReID test sets."""
    n = num_query + num_gallery
    rng = np.random.default_rng(n)
    ids = rng.integers(0, n // 8, n)
    feats = rng.normal(size=(n // 8, dim))[ids] + rng.normal(size=(n, dim))
    feats = feats.astype(np.float32)
    return feats[:num_query], feats[num_query:]


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _run(
    kind: str, num_query: int, num_gallery: int, dim: int, threads: int, result: str, queue
) -> None:
    """Child process: one implementation, its result saved to ``result``."""
    torch.set_num_threads(threads)
    q, g = features(num_query, num_gallery, dim)
    baseline = _peak_mib()
    tic = time.perf_counter()
    if kind == "dense":
        out = dense_reference(
            compute_distance(q, g), compute_distance(q, q), compute_distance(g, g)
        )
    else:
        out = re_ranking_features(q, g, progress=False)
    seconds = time.perf_counter() - tic
    queue.put((seconds, _peak_mib() - baseline))
    np.save(result, out)


def measure(kind: str, num_query: int, num_gallery: int, dim: int, threads: int, result: Path):
    context = mp.get_context("spawn")
    queue = context.Queue()
    child = context.Process(
        target=_run, args=(kind, num_query, num_gallery, dim, threads, str(result), queue)
    )
    child.start()
    seconds, mib = queue.get()
    child.join()
    return np.load(result, mmap_mode="r"), seconds, mib


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--msmt", action="store_true", help="also MSMT17 scale (no reference)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args()
    problems = [(int(0.175 * n), n - int(0.175 * n)) for n in args.sizes]
    print(
        f"re-ranking, k1=20 k2=6 lambda=0.3, {args.dim}-d clustered random features, "
        f"{args.threads} torch thread(s)"
    )
    header = ["images", "dense s", "dense MiB", "daaf s", "daaf MiB", "speed-up", "mem ratio"]
    print("".join(f"{h:>11}" for h in header) + f"{'max diff':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for num_query, num_gallery in problems:
            ours, t_ours, m_ours = measure(
                "daaf", num_query, num_gallery, args.dim, args.threads, Path(tmp) / "o.npy"
            )
            ref, t_ref, m_ref = measure(
                "dense", num_query, num_gallery, args.dim, args.threads, Path(tmp) / "r.npy"
            )
            cells = [
                num_query + num_gallery,
                t_ref,
                m_ref,
                t_ours,
                m_ours,
                t_ref / t_ours,
                m_ours / m_ref,
            ]
            diff = float(np.abs(ref - ours).max())
            print(f"{cells[0]:>11}" + "".join(f"{c:>11.2f}" for c in cells[1:]) + f"{diff:>11.1e}")
        if args.msmt:
            _, t_ours, m_ours = measure("daaf", *MSMT, args.dim, args.threads, Path(tmp) / "o.npy")
            print(
                f"{sum(MSMT):>11}{'-':>11}{'-':>11}{t_ours:>11.2f}{m_ours:>11.0f}  (MSMT17 scale)"
            )


if __name__ == "__main__":
    main()
