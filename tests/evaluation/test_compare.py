"""`daaf compare`: identity-level paired bootstrap against an explicit loop, runs, errors, CLI."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from daaf.cli import main
from daaf.errors import DaafError
from daaf.evaluation import compare as compare_module
from daaf.evaluation.compare import compare_runs, difference_sentence, identity_bootstrap

PIDS = [1, 1, 2, 3, 3, 3]  # 3 identities, 6 queries


def write_eval(folder, ap, first_hit, inp, pids=PIDS, names=None):
    """An evaluation folder holding only per_query.csv (plain rows, plus re-ranked copies)."""
    folder.mkdir(parents=True)
    names = names or [f"query/{i:04d}.jpg" for i in range(len(pids))]
    rows = pd.DataFrame({"image_path": names, "pid": pids, "camid": 0, "ap": ap,
                         "first_hit": pd.array(first_hit, dtype="Int64"), "inp": inp,
                         "reranked": 0})  # fmt: skip
    reranked = rows.assign(ap=1.0, first_hit=1, inp=1.0, reranked=1)  # must be ignored
    pd.concat([rows, reranked]).to_csv(folder / "per_query.csv", index=False)
    return folder


@pytest.fixture
def folders(tmp_path):
    base = write_eval(tmp_path / "base", [0.5, 1.0, 0.2, 0.0, 1 / 3, 0.5],
                      [2, 1, 5, 9, 3, 1], [0.5, 1.0, 0.2, 0.1, 0.25, 0.5])  # fmt: skip
    cand = write_eval(tmp_path / "cand", [1.0, 1.0, 0.25, 0.5, 1 / 3, 0.25],
                      [1, 1, 4, 2, 3, 4], [1.0, 0.5, 0.25, 0.2, 0.25, 0.25])  # fmt: skip
    return base, cand


def loop_bootstrap(base, cand, pids, resamples, seed):
    """The definition, one resample at a time: draw identities, bring all their queries, mean."""
    ids = sorted(set(pids))
    draws = np.random.default_rng(seed).integers(0, len(ids), size=(resamples, len(ids)))
    deltas = []
    for row in draws:
        chosen = [q for i in row for q in range(len(pids)) if pids[q] == ids[i]]
        deltas.append(np.mean([100 * (cand[q] - base[q]) for q in chosen]))
    return np.array(deltas)


def test_bootstrap_equals_an_explicit_loop(folders, monkeypatch):
    monkeypatch.setattr(compare_module, "CHUNK_CELLS", 6)  # blocks of 2 resamples: 2, 2, 2, 1
    result = compare_runs([folders[0]], [folders[1]], resamples=7, seed=3)
    base, cand = (pd.read_csv(f / "per_query.csv").query("reranked == 0") for f in folders)
    expected = {
        "mAP": (base["ap"].to_numpy(), cand["ap"].to_numpy()),
        "rank1": ((base["first_hit"] == 1).to_numpy(float), (cand["first_hit"] == 1).to_numpy(float)),
        "mINP": (base["inp"].to_numpy(), cand["inp"].to_numpy()),
    }  # fmt: skip
    for i, (name, (b, c)) in enumerate(expected.items()):
        reference = loop_bootstrap(b, c, PIDS, resamples=7, seed=3)
        np.testing.assert_allclose(result.bootstrap[:, i], reference, atol=1e-12)
        m = result.metrics[name]
        assert m["baseline"] == pytest.approx(100 * b.mean())
        assert m["candidate"] == pytest.approx(100 * c.mean())
        assert m["delta"] == pytest.approx(100 * (c - b).mean())
        assert m["ci95"] == pytest.approx(list(np.percentile(reference, [2.5, 97.5])))
        assert m["p_le_0"] == pytest.approx(np.mean(reference <= 0))
    assert (result.queries, result.identities) == (6, 3)


def test_vectorised_blocks_do_not_change_the_draws():
    rng = np.random.default_rng(0)
    values, pids = rng.random((50, 2)), rng.integers(0, 12, 50)
    whole = identity_bootstrap(values, pids, 40, seed=5)
    compare_module.CHUNK_CELLS, saved = 25, compare_module.CHUNK_CELLS
    try:
        blocks = identity_bootstrap(values, pids, 40, seed=5)
    finally:
        compare_module.CHUNK_CELLS = saved
    np.testing.assert_allclose(blocks, whole, atol=1e-12)


def test_a_folder_against_itself_gives_zero_and_the_json_line(folders):
    args = ["compare", "--baseline", str(folders[0]), "--candidate", str(folders[0]),
            "--bootstrap", "200", "--json"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    last = json.loads(result.output.strip().splitlines()[-1])
    assert set(last) == {"queries", "identities", "runs", "metrics"}
    assert (last["queries"], last["identities"]) == (6, 3)
    assert last["runs"] == {"baseline": 1, "candidate": 1}
    assert set(last["metrics"]) == {"mAP", "rank1", "mINP"}
    for m in last["metrics"].values():
        assert set(m) == {"baseline", "candidate", "delta", "ci95", "p_le_0"}
        assert m["delta"] == 0 and m["ci95"] == [0, 0] and m["p_le_0"] == 1
    assert last["metrics"]["mAP"]["baseline"] == pytest.approx(
        100 * (0.5 + 1 + 0.2 + 1 / 3 + 0.5) / 6
    )


def test_several_runs_per_side_are_averaged_per_query(folders, tmp_path):
    base, cand = folders
    other = write_eval(tmp_path / "base_seed1", [0.3, 0.8, 0.4, 0.2, 1.0, 0.1],
                       [3, 1, 2, 4, 1, 9], [0.3, 0.8, 0.4, 0.2, 1.0, 0.1])  # fmt: skip
    args = ["compare", "--baseline", str(base), str(other), "--candidate", str(cand),
            "--bootstrap", "50", "--json"]  # fmt: skip
    output = CliRunner().invoke(main, args)
    assert output.exit_code == 0, output.output
    assert "per run (mean +- std" in output.output
    last = json.loads(output.output.strip().splitlines()[-1])
    assert last["runs"] == {"baseline": 2, "candidate": 1}
    run_means = [
        100 * np.mean([0.5, 1.0, 0.2, 0.0, 1 / 3, 0.5]),
        100 * np.mean([0.3, 0.8, 0.4, 0.2, 1.0, 0.1]),
    ]
    assert last["metrics"]["mAP"]["baseline"] == pytest.approx(np.mean(run_means))
    result = compare_runs([base, other], [cand], resamples=10)
    mean, std = result.per_run["baseline"]["mAP"]
    assert (mean, std) == pytest.approx((np.mean(run_means), np.std(run_means, ddof=1)))


def test_mismatched_queries_are_named(folders, tmp_path):
    names = [f"query/{i:04d}.jpg" for i in range(5)] + ["query/extra.jpg"]
    odd = write_eval(tmp_path / "odd", [0.5] * 6, [1] * 6, [0.5] * 6, names=names)
    with pytest.raises(
        DaafError,
        match=r"only in baseline .*: query/0005.jpg; only in candidate .*: query/extra.jpg",
    ):
        compare_runs([folders[0]], [odd], resamples=10)
    result = CliRunner().invoke(
        main, ["compare", "--baseline", str(folders[0]), "--candidate", str(odd)]
    )
    assert result.exit_code == 1 and "query/extra.jpg" in result.output
    missing = CliRunner().invoke(
        main, ["compare", "--baseline", str(tmp_path), "--candidate", str(odd)]
    )
    assert missing.exit_code == 1 and "per_query.csv not found" in missing.output


def test_table_plot_and_report_without_json(folders, tmp_path):
    out = tmp_path / "plots"
    args = ["compare", "--baseline", str(folders[0]), "--candidate", str(folders[1]),
            "--bootstrap", "100", "--seed", "1", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.startswith("mAP") and "[" in line for line in lines)
    assert not lines[-1].startswith("{") and (out / "bootstrap.png").stat().st_size > 5000
    report = (out / "report.html").read_text()
    assert "Paired differences" in report and "no top_matches.csv" in report  # per_query.csv only


def test_difference_sentence_says_no_evidence_when_the_interval_includes_zero(folders):
    same = compare_runs([folders[0]], [folders[0]], resamples=20)
    assert "includes 0, so no evidence of a difference" in difference_sentence(same, "BoT", "DAAF")
    same.metrics["mAP"]["ci95"] = [0.5, 2.0]
    assert "evidence that DAAF ranks" in difference_sentence(same, "BoT", "DAAF")


def test_runs_label_puts_what_differs_between_seeds_in_braces():
    from daaf.evaluation.compare import runs_label

    seeds = [f"/out/runs/seed{s}/study_bot/eval" for s in range(3)]
    assert runs_label(seeds) == "/out/runs/seed{0,1,2}/study_bot/eval"
    assert runs_label(["a/eval"]) == "a/eval"
    assert runs_label(["a/x/eval", "b/eval"]) == "a/x/eval, b/eval"  # no common shape: listed
    assert runs_label(["a/s1/e", "b/s2/e"]) == "{a,b}/s{1,2}/e"
