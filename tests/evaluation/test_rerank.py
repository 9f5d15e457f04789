"""Re-ranking against a plain dense implementation of Zhong et al.'s reference algorithm."""

import numpy as np
import pytest

from daaf.evaluation.distance import compute_distance
from daaf.evaluation.rerank import RerankParams, re_ranking, re_ranking_features


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
    np.testing.assert_allclose(
        re_ranking(*mats, RerankParams(k1=8, k2=1, lambda_value=0.5)), expected, atol=1e-5
    )
    got = re_ranking_features(q, g, RerankParams(k1=8, k2=1, lambda_value=0.5), progress=False)
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


@pytest.mark.parametrize("n", range(2, 26))
def test_small_galleries_agree_with_the_dense_reference(n):
    """Fewer images than k1 + 1 (or k2): every image is a neighbour, in both variants."""
    feats = np.random.default_rng(n).normal(size=(n, 4)).astype(np.float32)
    for num_query in sorted({1, n // 2, n - 1}):
        q, g = feats[:num_query], feats[num_query:]
        mats = compute_distance(q, g), compute_distance(q, q), compute_distance(g, g)
        for k1, k2 in [(20, 6), (3, 2), (2, 6), (1, 1)]:
            expected = dense_reference(*mats, k1=k1, k2=k2)
            dense = re_ranking(*mats, RerankParams(k1=k1, k2=k2))
            got = re_ranking_features(q, g, RerankParams(k1=k1, k2=k2), chunk=3, progress=False)
            assert got.shape == (num_query, n - num_query)
            np.testing.assert_allclose(
                dense, expected, atol=1e-5, err_msg=f"{num_query=} {k1=} {k2=}"
            )
            np.testing.assert_allclose(got, dense, atol=1e-5, err_msg=f"{num_query=} {k1=} {k2=}")


def test_compute_distance_input_is_ranked_as_the_fourth_power():
    """Zhong's matrix API squares its input: squared Euclidean distances become d⁴ (lambda = 1
    leaves only that term, each row divided by its maximum over query and gallery)."""
    q, g = problem(4, n=30, nq=10)
    mats = compute_distance(q, g), compute_distance(q, q), compute_distance(g, g)
    euclidean = np.sqrt(np.concatenate([mats[1], mats[0]], axis=1).astype(np.float64))
    d4 = euclidean**4 / (euclidean**4).max(axis=1, keepdims=True)
    np.testing.assert_allclose(
        re_ranking(*mats, RerankParams(lambda_value=1)), d4[:, 10:], rtol=1e-4, atol=1e-6
    )
    d2 = euclidean**2 / (euclidean**2).max(axis=1, keepdims=True)
    roots = [np.sqrt(m) for m in mats]
    np.testing.assert_allclose(
        re_ranking(*roots, RerankParams(lambda_value=1)), d2[:, 10:], rtol=1e-4, atol=1e-6
    )
    got = re_ranking_features(q, g, RerankParams(lambda_value=1), progress=False)
    np.testing.assert_allclose(got, d4[:, 10:], rtol=1e-4, atol=1e-6)


def test_neighbours_are_ordered_as_a_stable_argsort():
    """The torch top-k (value, then index), ties at the cut included, is a stable argsort's."""
    import torch

    from daaf.evaluation.rerank import _topk_stable

    block = np.random.default_rng(0).integers(0, 5, (60, 40)).astype(np.float32)
    for k in (1, 7, 21, 40):
        expected = np.argsort(block, axis=1, kind="stable")[:, :k]
        np.testing.assert_array_equal(_topk_stable(torch.from_numpy(block), k), expected)


def test_the_device_path_equals_the_reference():
    """``device=`` runs the distance blocks and neighbours through torch on that device (here
    the CPU, as a GPU would): the dense reference's result."""
    q, g = problem(6)
    mats = compute_distance(q, g), compute_distance(q, q), compute_distance(g, g)
    assert np.array_equal(compute_distance(q, g, device="cpu"), mats[0])
    got = re_ranking_features(q, g, chunk=41, progress=False, device="cpu")
    np.testing.assert_allclose(got, dense_reference(*mats), atol=1e-5)


@pytest.mark.parametrize("chunk", [7, 64])
def test_ties_at_the_cut_are_ordered_as_the_dense_reference(chunk):
    """Integer features tie many distances exactly: the rows whose k1-th and (k1 + 1)-th
    nearest tie are redone from their full row, in stable-argsort order."""
    feats = np.random.default_rng(7).integers(0, 3, (120, 3)).astype(np.float32)
    q, g = feats[:30], feats[30:]
    mats = compute_distance(q, g), compute_distance(q, q), compute_distance(g, g)
    dist = np.block([[mats[1], mats[0]], [mats[0].T, mats[2]]]) ** 2
    cut = np.sort(dist, axis=1)[:, 20:22]
    assert (cut[:, 0] == cut[:, 1]).sum() > 50  # most rows tie at the cut
    got = re_ranking_features(q, g, chunk=chunk, progress=False)
    np.testing.assert_allclose(got, dense_reference(*mats), atol=1e-5)
