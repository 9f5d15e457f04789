"""evaluate_rank against a plain per-query implementation of the Market-1501 protocol."""

import numpy as np
import pytest

from daaf.errors import DaafError
from daaf.evaluation.metrics import evaluate_rank


def reference(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """The classic loop: stable argsort, drop same id + same camera, AP, CMC, mINP per query."""
    cmcs, aps, inps = [], [], []
    for q in range(len(q_pids)):
        order = np.argsort(distmat[q], kind="stable")
        keep = ~((g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q]))
        raw = (g_pids[order] == q_pids[q])[keep].astype(int)
        if not raw.any():
            continue
        cmc = raw.cumsum()
        cmc[cmc > 1] = 1
        cmcs.append(cmc[:max_rank])
        hits = raw.cumsum()
        precision = hits / (np.arange(len(raw)) + 1)
        aps.append((precision * raw).sum() / raw.sum())
        inps.append(raw.sum() / (np.flatnonzero(raw)[-1] + 1))
    return np.mean(cmcs, axis=0), np.mean(aps), np.mean(inps), len(aps)


@pytest.mark.parametrize("seed", range(4))
def test_matches_reference_with_ties(seed):
    rng = np.random.default_rng(seed)
    nq, ng = 40, 120
    q_pids, g_pids = rng.integers(0, 15, nq), rng.integers(0, 15, ng)
    q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    distmat = rng.integers(0, 6, (nq, ng)).astype(np.float32)  # many ties
    got = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    cmc, m_ap, m_inp, valid = reference(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    np.testing.assert_allclose(got.cmc, cmc, atol=1e-6)
    assert got.mAP == pytest.approx(m_ap, abs=1e-6)
    assert got.mINP == pytest.approx(m_inp, abs=1e-6)
    assert got.num_valid_queries == valid
    # Rank-1 is the share of valid queries whose first true match is at rank 1.
    assert got.cmc[0] == pytest.approx(np.mean(got.first_hit[np.isfinite(got.ap)] == 1))


def test_hand_worked_case():
    # One query (pid 1, cam 0). Gallery by distance: g0 pid1 cam0 (removed: same camera),
    # g1 pid2, g2 pid1 cam1 (positive at kept rank 2), g3 pid1 cam2 (positive at kept rank 3).
    distmat = np.array([[0.1, 0.2, 0.3, 0.4]])
    result = evaluate_rank(
        distmat,
        np.array([1]),
        np.array([1, 2, 1, 1]),
        np.array([0]),
        np.array([0, 0, 1, 2]),
        max_rank=4,
    )
    np.testing.assert_array_equal(result.cmc, [0, 1, 1, 1])
    assert result.mAP == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert result.mINP == pytest.approx(2 / 3)
    assert result.first_hit[0] == 2 and result.ap[0] == pytest.approx(result.mAP)


def test_ties_are_broken_by_gallery_index():
    distmat = np.zeros((1, 3))
    result = evaluate_rank(
        distmat, np.array([5]), np.array([7, 5, 5]), np.array([0]), np.array([1, 1, 1]), max_rank=3
    )
    np.testing.assert_array_equal(result.cmc, [0, 1, 1])


def test_queries_without_positive_are_skipped_and_none_is_an_error():
    distmat = np.zeros((2, 2))
    result = evaluate_rank(
        distmat, np.array([1, 9]), np.array([1, 1]), np.array([0, 0]), np.array([1, 1]), max_rank=2
    )
    assert result.num_valid_queries == 1 and np.isnan(result.ap[1])
    assert result.first_hit[0] == 1 and np.isnan(result.first_hit[1])
    with pytest.raises(DaafError, match="no query has a positive"):
        evaluate_rank(
            distmat, np.array([1, 9]), np.array([1, 1]), np.array([0, 0]), np.array([0, 0])
        )


@pytest.mark.parametrize("seed", range(3))
def test_the_device_path_gives_the_numpy_results(seed, monkeypatch):
    """``device=`` (torch sorts, as on a GPU; here the CPU) equals the NumPy counting path
    per query, ties included, across chunks of queries."""
    import daaf.evaluation.metrics as metrics

    monkeypatch.setattr(metrics, "DEVICE_CHUNK", 7)
    rng = np.random.default_rng(seed)
    nq, ng = 40, 150
    q_pids, g_pids = rng.integers(0, 12, nq), rng.integers(0, 12, ng)
    q_cams, g_cams = rng.integers(0, 3, nq), rng.integers(0, 3, ng)
    distmat = rng.integers(0, 6, (nq, ng)).astype(np.float32)  # many ties
    distmat[0] += rng.random(ng, dtype=np.float32)  # and one row without ties
    q_pids[1] = 99  # a query without any positive: skipped by both
    cpu = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20)
    dev = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=20, device="cpu")
    np.testing.assert_allclose(dev.cmc, cpu.cmc, atol=1e-5)
    for name in ("ap", "inp", "first_hit"):
        np.testing.assert_allclose(getattr(dev, name), getattr(cpu, name), atol=1e-5)
    assert np.isnan(dev.ap[1]) and dev.num_valid_queries == cpu.num_valid_queries
    assert dev.mAP == pytest.approx(cpu.mAP, abs=1e-5)
    assert dev.mINP == pytest.approx(cpu.mINP, abs=1e-5)


def test_a_device_that_is_no_device_is_one_line():
    distmat = np.zeros((1, 2), np.float32)
    with pytest.raises(DaafError, match="^device 'gpu0' is not a device"):
        evaluate_rank(distmat, [1], [1, 2], [0], [1, 1], device="gpu0")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_distances_are_an_error_naming_how_many(bad):
    """An all-NaN matrix used to score 100% (NaN compares false: no gallery item is closer
    than a positive); one NaN among finite distances is as wrong."""
    pids, cams = np.array([0, 1]), np.array([0, 0])
    g_pids, g_cams = np.array([0, 1, 0, 1]), np.array([1, 1, 1, 1])
    with pytest.raises(DaafError, match=r"^8 of 8 query-gallery distances are not finite"):
        evaluate_rank(np.full((2, 4), np.nan), pids, g_pids, cams, g_cams)
    distmat = np.arange(8, dtype=np.float32).reshape(2, 4)
    distmat[1, 2] = bad
    with pytest.raises(DaafError, match=r"^1 of 8 query-gallery distances are not finite"):
        evaluate_rank(distmat, pids, g_pids, cams, g_cams)
