"""`daaf compare`: identity-level paired bootstrap against an explicit loop, runs, errors, CLI."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from daaf.errors import DaafError
from daaf.evaluation import compare as compare_module
from daaf.evaluation.compare import compare_runs, difference_sentence, identity_bootstrap

PIDS = [1, 1, 2, 3, 3, 3]  # 3 identities, 6 queries


def write_eval(folder, ap, first_hit, inp, pids=PIDS, names=None):
    """An evaluation folder holding only per_query.csv (plain rows, plus re-ranked copies)."""
    folder.mkdir(parents=True)
    names = names or [f"query/{i:04d}.jpg" for i in range(len(pids))]
    rows = pd.DataFrame(
        {
            "image_path": names,
            "pid": pids,
            "camid": 0,
            "ap": ap,
            "first_hit": pd.array(first_hit, dtype="Int64"),
            "inp": inp,
            "reranked": 0,
        }
    )
    reranked = rows.assign(ap=1.0, first_hit=1, inp=1.0, reranked=1)  # must be ignored
    pd.concat([rows, reranked]).to_csv(folder / "per_query.csv", index=False)
    return folder


@pytest.fixture
def folders(tmp_path):
    base = write_eval(
        tmp_path / "base",
        [0.5, 1.0, 0.2, 0.0, 1 / 3, 0.5],
        [2, 1, 5, 9, 3, 1],
        [0.5, 1.0, 0.2, 0.1, 0.25, 0.5],
    )
    cand = write_eval(
        tmp_path / "cand",
        [1.0, 1.0, 0.25, 0.5, 1 / 3, 0.25],
        [1, 1, 4, 2, 3, 4],
        [1.0, 0.5, 0.25, 0.2, 0.25, 0.25],
    )
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
        "rank1": (
            (base["first_hit"] == 1).to_numpy(float),
            (cand["first_hit"] == 1).to_numpy(float),
        ),
        "mINP": (base["inp"].to_numpy(), cand["inp"].to_numpy()),
    }
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


def test_a_folder_against_itself_gives_zero_and_the_json_line(folders, cli):
    args = [
        "compare",
        "--baseline",
        str(folders[0]),
        "--candidate",
        str(folders[0]),
        "--bootstrap",
        "200",
        "--json",
    ]
    result = cli(*args)
    last = json.loads(result.output.strip().splitlines()[-1])
    assert set(last) == {"queries", "identities", "too_few_identities", "runs", "metrics", "subset"}
    assert last["subset"] is None
    assert (last["queries"], last["identities"], last["too_few_identities"]) == (6, 3, True)
    assert last["runs"] == {"baseline": 1, "candidate": 1}
    assert set(last["metrics"]) == {"mAP", "rank1", "mINP"}
    for m in last["metrics"].values():
        assert set(m) == {"baseline", "candidate", "delta", "ci95", "p_le_0"}
        assert m["delta"] == 0 and m["ci95"] == [0, 0] and m["p_le_0"] == 1
    assert last["metrics"]["mAP"]["baseline"] == pytest.approx(
        100 * (0.5 + 1 + 0.2 + 1 / 3 + 0.5) / 6
    )


def test_several_runs_per_side_are_averaged_per_query(folders, tmp_path, cli):
    base, cand = folders
    other = write_eval(
        tmp_path / "base_seed1",
        [0.3, 0.8, 0.4, 0.2, 1.0, 0.1],
        [3, 1, 2, 4, 1, 9],
        [0.3, 0.8, 0.4, 0.2, 1.0, 0.1],
    )
    args = [
        "compare",
        "--baseline",
        str(base),
        str(other),
        "--candidate",
        str(cand),
        "--bootstrap",
        "50",
        "--json",
    ]
    output = cli(*args)
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


def test_mismatched_queries_are_named(folders, tmp_path, cli):
    names = [f"query/{i:04d}.jpg" for i in range(5)] + ["query/extra.jpg"]
    odd = write_eval(tmp_path / "odd", [0.5] * 6, [1] * 6, [0.5] * 6, names=names)
    with pytest.raises(
        DaafError,
        match=r"only in baseline .*: query/0005.jpg; only in candidate .*: query/extra.jpg",
    ):
        compare_runs([folders[0]], [odd], resamples=10)
    result = cli("compare", "--baseline", folders[0], "--candidate", odd, ok=False)
    assert result.exit_code == 1 and "query/extra.jpg" in result.output
    missing = cli("compare", "--baseline", tmp_path, "--candidate", odd, ok=False)
    assert missing.exit_code == 1 and "per_query.csv not found" in missing.output


def test_table_plot_and_report_without_json(folders, tmp_path, cli):
    out = tmp_path / "plots"
    args = [
        "compare",
        "--baseline",
        str(folders[0]),
        "--candidate",
        str(folders[1]),
        "--bootstrap",
        "100",
        "--seed",
        "1",
        "--out",
        str(out),
    ]
    result = cli(*args)
    lines = result.output.splitlines()
    assert any(line.startswith("mAP") and "[" in line for line in lines)
    assert not lines[-1].startswith("{") and (out / "bootstrap.png").stat().st_size > 5000
    report = (out / "report.html").read_text()
    assert "Paired differences" in report and "no top_matches.csv" in report  # per_query.csv only


def test_difference_sentence_says_no_evidence_when_the_interval_includes_zero(folders):
    same = compare_runs([folders[0]], [folders[0]], resamples=20)
    same.identities = compare_module.MIN_IDENTITIES
    assert "includes 0, so no evidence of a difference" in difference_sentence(same, "BoT", "DAAF")
    same.metrics["mAP"]["ci95"] = [0.5, 2.0]
    assert "evidence that DAAF ranks" in difference_sentence(same, "BoT", "DAAF")


def test_too_few_identities_are_never_evidence(tmp_path, cli):
    """Every identity better by 0.3 in AP: the interval is [+30, +30], but 3 identities (or
    19) are too few for a 95% interval to mean anything."""
    for count in (3, compare_module.MIN_IDENTITIES - 1):
        pids = list(range(count))
        base = write_eval(tmp_path / f"b{count}", [0.2] * count, [2] * count, [0.2] * count, pids)
        cand = write_eval(tmp_path / f"c{count}", [0.5] * count, [1] * count, [0.5] * count, pids)
        result = compare_runs([base], [cand], resamples=50)
        assert result.metrics["mAP"]["ci95"] == pytest.approx([30, 30])
        sentence = difference_sentence(result, "BoT", "DAAF")
        assert sentence.endswith(
            f"over {count} test identities): too few for a 95% interval "
            "(at least 20), so no evidence either way."
        )
        assert "evidence that" not in sentence
        table = cli("compare", "--baseline", base, "--candidate", cand, "--bootstrap", "50")
        assert table.output.strip().endswith(
            f"{count} identities: too few for a 95% interval "
            "(at least 20), so no evidence either way"
        )
    pids = list(range(compare_module.MIN_IDENTITIES))
    base = write_eval(tmp_path / "b20", [0.2] * 20, [2] * 20, [0.2] * 20, pids)
    cand = write_eval(tmp_path / "c20", [0.5] * 20, [1] * 20, [0.5] * 20, pids)
    result = compare_runs([base], [cand], resamples=50)
    assert "evidence that DAAF ranks" in difference_sentence(result, "BoT", "DAAF")


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("ap", 1.5, r"line 3: ap of query/0001.jpg is 1.5; expected a number in \[0, 1\] or empty"),
        ("ap", -0.1, r"line 3: ap of query/0001.jpg is -0.1; expected a number in \[0, 1\]"),
        ("ap", "high", r"line 3: ap of query/0001.jpg is high; expected a number in \[0, 1\]"),
        ("inp", "inf", r"line 3: inp of query/0001.jpg is inf; expected a number in \[0, 1\]"),
        (
            "first_hit",
            0,
            r"line 3: first_hit of query/0001.jpg is 0; expected a number in \[1, inf\]",
        ),
        ("image_path", "query/0000.jpg", "line 3: query query/0000.jpg is listed twice"),
    ],
)
def test_bad_per_query_values_are_refused_in_one_line(folders, column, value, message, cli):
    path = folders[1] / "per_query.csv"
    table = pd.read_csv(path, dtype=str)
    table.loc[1, column] = str(value)
    table.to_csv(path, index=False)
    with pytest.raises(DaafError, match=f"^{re.escape(str(path))}, {message}"):
        compare_runs([folders[0]], [folders[1]], resamples=10)
    result = cli("compare", "--baseline", folders[0], "--candidate", folders[1], ok=False)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


def test_a_file_that_is_no_table_and_bad_options_give_one_line(folders, cli):
    (folders[1] / "per_query.csv").write_bytes(bytes(range(256)) * 4)
    result = cli("compare", "--baseline", folders[0], "--candidate", folders[1], ok=False)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "per_query.csv: not a per_query.csv table" in result.output
    for option in (["--seed", "-1"], ["--bootstrap", "0"]):
        args = ["compare", "--baseline", str(folders[0]), "--candidate", str(folders[0]), *option]
        result = cli(*args, ok=False)
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"Error: Invalid value for '{option[0]}': {option[1]}")
        assert len(result.output.strip().splitlines()) == 1


def test_runs_label_puts_what_differs_between_seeds_in_braces():
    from daaf.evaluation.compare import runs_label

    seeds = [f"/out/runs/seed{s}/study_bot/eval" for s in range(3)]
    assert runs_label(seeds) == "/out/runs/seed{0,1,2}/study_bot/eval"
    assert runs_label(["a/eval"]) == "a/eval"
    assert runs_label(["a/x/eval", "b/eval"]) == "a/x/eval, b/eval"  # no common shape: listed
    assert runs_label(["a/s1/e", "b/s2/e"]) == "{a,b}/s{1,2}/e"


def write_conditions(path, names, **columns):
    """A conditions.csv: one row per image (train and gallery rows too, as `daaf synth` writes)."""
    extra = [
        "bounding_box_train/0001_c1s1_000001_00.jpg",
        "bounding_box_test/0002_c2s1_000001_00.jpg",
    ]
    table = pd.DataFrame({"image_path": [*names, *extra]})
    for column, values in columns.items():
        table[column] = [*values, values[0], values[0]]
    table.to_csv(path, index=False)
    return path


@pytest.fixture
def larger(tmp_path):
    """Baseline (two runs) and candidate over 30 queries of 10 identities, one of them without a
    positive, and a conditions.csv of those queries."""
    rng = np.random.default_rng(0)
    pids = list(np.repeat(np.arange(1, 11), 3))
    names = [f"query/{i:04d}_c1.jpg" for i in range(30)]

    def run(name):
        ap = rng.random(30)
        ap[7] = np.nan
        first_hit = pd.array(np.where(np.isnan(ap), None, rng.integers(1, 4, 30)), dtype="Int64")
        return write_eval(
            tmp_path / name, ap, first_hit, np.where(np.isnan(ap), np.nan, ap / 2), pids, names
        )

    dirs = {"base": [run("b0"), run("b1")], "cand": [run("c0")]}
    conditions = write_conditions(
        tmp_path / "conditions.csv",
        names,
        occluded=rng.integers(0, 2, 30),
        misaligned=rng.integers(0, 2, 30),
        view=rng.choice(["front", "back"], 30),
    )
    return dirs, conditions


def restricted(folder, keep, out):
    """A copy of an evaluation folder whose per_query.csv holds only the queries in ``keep``."""
    out.mkdir()
    table = pd.read_csv(folder / "per_query.csv")
    table[table["image_path"].isin(keep)].to_csv(out / "per_query.csv", index=False)
    return out


def conditions_of(*texts):
    return [compare_module.QueryCondition.parse(text) for text in texts]


def test_a_subset_equals_the_comparison_of_tables_holding_only_its_queries(larger, tmp_path):
    dirs, csv = larger
    queries, label = compare_module.select_queries(conditions_of(f"{csv}:occluded"))
    table = pd.read_csv(csv)
    assert queries == set(table["image_path"][table["occluded"] == 1])
    assert label == f"{csv} occluded=1"
    result = compare_runs(dirs["base"], dirs["cand"], 500, 4, queries=queries, queries_label=label)
    only = {
        side: [restricted(d, queries, tmp_path / f"only_{d.name}") for d in ds]
        for side, ds in dirs.items()
    }
    reference = compare_runs(only["base"], only["cand"], 500, 4)
    assert result.metrics == reference.metrics
    np.testing.assert_array_equal(result.bootstrap, reference.bootstrap)
    np.testing.assert_equal(result.per_run, reference.per_run)  # std NaN for one run
    pd.testing.assert_frame_equal(result.per_query, reference.per_query)
    assert (result.queries, result.identities) == (reference.queries, reference.identities)
    kept = len(queries & set(table["image_path"][:30].drop(7)))  # query 7 has no positive
    assert result.subset == {"label": label, "queries": kept, "of": 29} and 0 < kept < 29
    assert kept == result.queries
    assert reference.subset is None and compare_runs(dirs["base"], dirs["cand"], 10).queries == 29


def test_several_conditions_keep_the_images_that_meet_all(larger, tmp_path):
    dirs, csv = larger
    table = pd.read_csv(csv)
    other = tmp_path / "other.csv"
    table[["image_path", "view"]].to_csv(other, index=False)
    texts = (f"{csv}:occluded", f"{csv}:misaligned=0", f"{other}:view=front")
    queries, label = compare_module.select_queries(conditions_of(*texts))
    wanted = (table["occluded"] == 1) & (table["misaligned"] == 0) & (table["view"] == "front")
    assert queries == set(table["image_path"][wanted]) and 0 < len(queries) < 10
    assert label == f"{csv} occluded=1 and misaligned=0 and {other} view=front"


def test_the_command_states_the_subset_in_the_table_json_and_report(larger, tmp_path, cli):
    dirs, csv = larger
    out = tmp_path / "report"
    args = [
        "compare",
        "--baseline",
        *map(str, dirs["base"]),
        "--candidate",
        str(dirs["cand"][0]),
        "--queries",
        f"{csv}:occluded",
        "--queries",
        f"{csv}:view=back",
        "--bootstrap",
        "100",
        "--json",
        "--out",
        str(out),
    ]
    result = cli(*args)
    queries, label = compare_module.select_queries(
        conditions_of(f"{csv}:occluded", f"{csv}:view=back")
    )
    expected = compare_runs(dirs["base"], dirs["cand"], 100, queries=queries, queries_label=label)
    line = f"queries: {csv} occluded=1 and view=back: {expected.queries} of 29"
    assert result.output.splitlines()[2] == line
    last = json.loads(result.output.strip().splitlines()[-1])
    assert last["subset"] == {
        "label": f"{csv} occluded=1 and view=back",
        "queries": expected.queries,
        "of": 29,
    }
    assert last["metrics"] == expected.metrics and last["queries"] == expected.queries
    assert line in (out / "report.html").read_text()
    assert line in difference_sentence(expected, "BoT", "DAAF")


def test_a_subset_of_few_identities_says_the_interval_is_no_evidence(larger, tmp_path, cli):
    dirs, _ = larger
    few = write_conditions(
        tmp_path / "few.csv", [f"query/{i:04d}_c1.jpg" for i in range(6)], keep=[1] * 6
    )
    args = [
        "compare",
        "--baseline",
        str(dirs["base"][0]),
        "--candidate",
        str(dirs["cand"][0]),
        "--queries",
        f"{few}:keep",
        "--bootstrap",
        "50",
        "--json",
    ]
    result = cli(*args)
    assert f"queries: {few} keep=1: 6 of 29" in result.output
    assert "2 identities: too few for a 95% interval (at least 20)" in result.output
    assert json.loads(result.output.splitlines()[-1])["too_few_identities"] is True


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.csv:occluded", r"DIR/missing.csv not found"),
        ("binary.csv:occluded", r"DIR/binary.csv: not a CSV table \("),
        ("folder:occluded", r"DIR/folder: a directory, not a regular file"),
        (
            "nokey.csv:occluded",
            r"DIR/nokey.csv: no image_path column \(its columns: path, occluded\)$",
        ),
        (
            "conditions.csv:occludded",
            r"DIR/conditions.csv: no column 'occludded'; "
            r"its columns: image_path, occluded, misaligned, view$",
        ),
        (
            "conditions.csv:view",
            r"DIR/conditions.csv: view is not a 0/1 column "
            r"\(values back, front\): write DIR/conditions.csv:view=VALUE$",
        ),
        (
            "conditions.csv:view=up",
            r"DIR/conditions.csv: no row has view=up \(values of view: back, front\)$",
        ),
        ("twice.csv:occluded", r"DIR/twice.csv, line 3: query/0000_c1.jpg is listed twice$"),
        (
            "train.csv:occluded",
            r"queries DIR/train.csv occluded=1: none of its 2 images is a "
            r"query of DIR/b0/per_query.csv \(e.g. bounding_box_test/0002_c2s1_000001_00.jpg\): "
            r"are they of the same dataset\?$",
        ),
        (
            "nopositive.csv:occluded",
            r"queries DIR/nopositive.csv occluded=1: none of its 1 "
            r"queries in DIR/b0/per_query.csv has a positive in the gallery$",
        ),
    ],
)
def test_bad_query_conditions_are_refused_in_one_line(larger, tmp_path, spec, message, cli):
    dirs, csv = larger
    names = [f"query/{i:04d}_c1.jpg" for i in range(30)]
    (tmp_path / "binary.csv").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "folder").mkdir()
    pd.DataFrame({"path": names, "occluded": 1}).to_csv(tmp_path / "nokey.csv", index=False)
    write_conditions(tmp_path / "twice.csv", names[:1] * 2, occluded=[1, 1])
    extra = [
        "bounding_box_train/0001_c1s1_000001_00.jpg",
        "bounding_box_test/0002_c2s1_000001_00.jpg",
    ]
    pd.DataFrame({"image_path": [*names, *extra], "occluded": [0] * 30 + [1, 1]}).to_csv(
        tmp_path / "train.csv", index=False
    )  # only the train and gallery rows hold 1
    write_conditions(tmp_path / "nopositive.csv", names[7:8], occluded=[1])
    args = [
        "compare",
        "--baseline",
        str(dirs["base"][0]),
        "--candidate",
        str(dirs["cand"][0]),
        "--queries",
        str(tmp_path / spec),
    ]
    result = cli(*args, ok=False)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    expected = "^Error: " + message.replace("DIR", re.escape(str(tmp_path)))
    assert re.search(expected, result.output.strip()), result.output


def test_conditions_no_image_meets_and_malformed_specs(larger, cli):
    dirs, csv = larger
    args = ["compare", "--baseline", str(dirs["base"][0]), "--candidate", str(dirs["cand"][0])]
    both = cli(*args, "--queries", f"{csv}:occluded", "--queries", f"{csv}:occluded=0", ok=False)
    assert both.exit_code == 1 and len(both.output.strip().splitlines()) == 1
    assert both.output.startswith(
        f"Error: queries {csv} occluded=1 and occluded=0: no image "
        "meets the condition(s), so no query to compare"
    )
    for spec in ("conditions.csv", f"{csv}:", f"{csv}:occluded=", ":occluded", f"{csv}:=1"):
        result = cli(*args, "--queries", spec, ok=False)
        assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
        assert result.output.startswith(
            f"Error: Invalid value for '--queries': '{spec}' is not CSV:COLUMN or "
            "CSV:COLUMN=VALUE (e.g. DATA/conditions.csv:occluded=1)"
        ), result.output
