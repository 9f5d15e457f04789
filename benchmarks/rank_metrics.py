"""Rank metrics at Market-1501 scale: daaf's chunked evaluate_rank vs a per-query NumPy loop.

    python benchmarks/rank_metrics.py [--queries 3368 --gallery 15913] [--msmt]

Prints time, the speed-up and the largest difference (must be <= 1e-6). With --msmt it also
runs MSMT17 scale (11,659 x 82,161) and reports peak memory against what a full argsort of the
matrix (int64 indices) would need.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from daaf.evaluation.metrics import evaluate_rank


def reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """The straightforward per-query protocol (what most ReID code does)."""
    cmcs, aps, inps = [], [], []
    for q in range(len(q_pids)):
        order = np.argsort(distmat[q], kind="stable")
        keep = ~((g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q]))
        raw = (g_pids[order] == q_pids[q])[keep]
        if not raw.any():
            continue
        cmc = np.minimum(raw.cumsum(), 1)
        cmcs.append(cmc[:max_rank])
        hits = raw.cumsum()
        aps.append((hits / np.arange(1, len(raw) + 1))[raw].sum() / raw.sum())
        inps.append(raw.sum() / (np.flatnonzero(raw)[-1] + 1))
    return np.mean(cmcs, axis=0), float(np.mean(aps)), float(np.mean(inps))


def _rss_gb() -> float:
    """Resident memory of this process now (Linux), in GB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**30


def problem(num_q, num_g, num_ids, seed=0):
    rng = np.random.default_rng(seed)
    q_pids, g_pids = rng.integers(0, num_ids, num_q), rng.integers(0, num_ids, num_g)
    q_cams, g_cams = rng.integers(0, 6, num_q), rng.integers(0, 6, num_g)
    distmat = rng.random((num_q, num_g), dtype=np.float32)
    for s in range(0, num_q, 1024):  # positives rank somewhat higher; row blocks keep memory low
        distmat[s : s + 1024] -= np.float32(0.3) * (q_pids[s : s + 1024, None] == g_pids[None])
    return distmat, q_pids, g_pids, q_cams, g_cams


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=3368)
    parser.add_argument("--gallery", type=int, default=15913)
    parser.add_argument(
        "--msmt", action="store_true", help="also run MSMT17 scale (11,659 x 82,161)"
    )
    args = parser.parse_args()
    args_problem = problem(args.queries, args.gallery, 750)
    tic = time.perf_counter()
    ref_cmc, ref_map, ref_minp = reference(*args_problem)
    t_ref = time.perf_counter() - tic
    tic = time.perf_counter()
    result = evaluate_rank(*args_problem)
    t_daaf = time.perf_counter() - tic
    diff = max(
        np.abs(result.cmc - ref_cmc).max(), abs(result.mAP - ref_map), abs(result.mINP - ref_minp)
    )
    print(f"Market-1501 scale: {args.queries} queries x {args.gallery} gallery")
    print(f"{'implementation':<28}{'seconds':>10}{'speed-up':>10}")
    print(f"{'per-query loop (reference)':<28}{t_ref:>10.2f}{1.0:>10.2f}")
    print(f"{'daaf evaluate_rank':<28}{t_daaf:>10.2f}{t_ref / t_daaf:>10.2f}")
    print(f"max |difference| in CMC / mAP / mINP: {diff:.2e}")
    if args.msmt:
        msmt = problem(11659, 82161, 3060, seed=1)
        matrix_gb = msmt[0].nbytes / 2**30
        before = _rss_gb()
        tic = time.perf_counter()
        evaluate_rank(*msmt)
        t = time.perf_counter() - tic
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"\nMSMT17 scale: 11659 x 82161, {t:.1f} s")
        print(f"{'memory':<48}{'GB':>8}")
        print(f"{'distance matrix itself (float32)':<48}{matrix_gb:>8.2f}")
        print(f"{'full argsort indices alone (int64)':<48}{2 * matrix_gb:>8.2f}")
        print(f"{'resident before evaluate_rank (incl. matrix)':<48}{before:>8.2f}")
        print(f"{'peak resident during evaluate_rank':<48}{peak:>8.2f}")
        print(f"{'evaluate_rank working memory (peak - before)':<48}{peak - before:>8.2f}")


if __name__ == "__main__":
    main()
