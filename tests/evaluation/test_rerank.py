"""Re-ranking against a plain dense implementation of Zhong et al.'s reference algorithm."""

import numpy as np
import pytest

from daaf.evaluation.distance import compute_distance
from daaf.evaluation.rerank import re_ranking, re_ranking_features


def dense_reference(q_g, q_q, g_g, k1=20, k2=6, lam=0.3):
    """A line-by-line dense version of the published algorithm (stable argsort for ties)."""
    dist = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float32) ** 2
    dist = (dist / dist.max(axis=0)).T
    n, nq = len(dist), len(q_q)
    rank = np.argsort(dist, axis=1, kind="stable")
    V = np.zeros_like(dist)
    for i in range(n):
        fwd = rank[i, : k1 + 1]
        recip = fwd[np.where(rank[fwd, : k1 + 1] == i)[0]]
        expansion = recip
        half = int(np.around(k1 / 2)) + 1
        for c in recip:
            cf = rank[c, :half]
            c_recip = cf[np.where(rank[cf, :half] == c)[0]]
            if len(np.intersect1d(c_recip, recip)) > 2 / 3 * len(c_recip):
                expansion = np.append(expansion, c_recip)
        expansion = np.unique(expansion)
        w = np.exp(-dist[i, expansion])
        V[i, expansion] = w / w.sum()
    if k2 != 1:
        V = np.stack([V[rank[i, :k2]].mean(axis=0) for i in range(n)])
    jaccard = np.zeros((nq, n), np.float32)
    for i in range(nq):
        temp_min = np.minimum(V[i][None, :], V).sum(axis=1)
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    final = jaccard * (1 - lam) + dist[:nq] * lam
    return final[:, nq:]


def problem(seed, n=240, nq=50, dim=16):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, 25, n)
    feats = (rng.normal(size=(25, dim))[ids] + 0.8 * rng.normal(size=(n, dim))).astype(np.float32)
    return feats[:nq], feats[nq:]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("seed", [0, 1])
def test_both_variants_equal_the_dense_reference(seed, metric):
    q, g = problem(seed)
    mats = (
        compute_distance(q, g, metric),
        compute_distance(q, q, metric),
        compute_distance(g, g, metric),
    )
    expected = dense_reference(*mats)
    np.testing.assert_allclose(re_ranking(*mats), expected, atol=1e-5)
    got = re_ranking_features(q, g, metric=metric, chunk=37, progress=False)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_other_parameters():
    q, g = problem(3, n=150, nq=30)
    mats = compute_distance(q, g), compute_distance(q, q), compute_distance(g, g)
    expected = dense_reference(*mats, k1=8, k2=1, lam=0.5)
    np.testing.assert_allclose(re_ranking(*mats, k1=8, k2=1, lambda_value=0.5), expected, atol=1e-5)
    got = re_ranking_features(q, g, k1=8, k2=1, lambda_value=0.5, progress=False)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_reranking_improves_a_clustered_problem():
    from daaf.evaluation.metrics import evaluate_rank

    rng = np.random.default_rng(5)
    ids = np.repeat(np.arange(30), 8)
    feats = (rng.normal(size=(30, 8))[ids] + 0.9 * rng.normal(size=(240, 8))).astype(np.float32)
    cams = np.tile(np.arange(8), 30)
    q, g = np.arange(0, 240, 8), np.setdiff1d(np.arange(240), np.arange(0, 240, 8))
    plain = evaluate_rank(compute_distance(feats[q], feats[g]), ids[q], ids[g], cams[q], cams[g])
    rr = re_ranking_features(feats[q], feats[g], progress=False)
    better = evaluate_rank(rr, ids[q], ids[g], cams[q], cams[g])
    assert better.mAP > plain.mAP
