"""Paired comparison of evaluation folders: candidate - baseline with an identity-level bootstrap.

Each folder's ``per_query.csv`` (plain ranking) gives every query's AP, Rank-1 hit (first true
match at rank 1) and INP. Several folders per side are runs of different seeds: their per-query
values are averaged first. The 95% interval resamples the query identities with replacement,
each bringing all of its queries, and takes the 2.5-97.5 percentiles of the mean difference over
the resampled queries. It covers the choice of test identities, not the training noise a single
run per side hides: several seeds per side average part of it out. With few identities the
interval is far too narrow (below :data:`MIN_IDENTITIES` it is reported, never read as evidence).

A comparison can keep a subset of the queries (``daaf compare --queries CSV:COLUMN[=VALUE]``, e.g.
the occluded ones of ``conditions.csv``): its interval resamples the kept queries' identities
only, and every output names the subset, so that no one reads it as the whole set's.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from daaf.errors import DaafError, short_repr, shorten
from daaf.utils.files import regular_file_problem

METRICS = ("mAP", "rank1", "mINP")
CHUNK_CELLS = 2**22  # resamples x identities per block of the vectorised bootstrap
# Fewer test identities than this and the 95% interval misleads: over 400 simulated comparisons
# of no true difference (3 queries per identity) it held 0 in 50% of them with 2 identities,
# 82% with 4, 89% with 10, 94% with 20 and 95% with 50.
MIN_IDENTITIES = 20
TOO_FEW = f"too few for a 95% interval (at least {MIN_IDENTITIES}), so no evidence either way"
# per_query.csv's value columns: the range of a valid value (empty: a query without a positive).
VALUE_RANGES = {"ap": (0.0, 1.0), "inp": (0.0, 1.0), "first_hit": (1.0, np.inf)}


def _read_csv(path: Path, kind: str = "per_query.csv", **options) -> pd.DataFrame:
    """``path`` as a table (``options`` go to :func:`pandas.read_csv`); DaafError (one line) for a
    file that is missing, cannot be read or is no CSV, or that is a FIFO or a device (never
    opened: reading a FIFO waits for a writer)."""
    problem = regular_file_problem(path)
    if problem not in (None, "missing"):
        raise DaafError(f"{path}: {problem}")
    try:
        return pd.read_csv(path, **options)
    except FileNotFoundError:
        raise DaafError(f"{path} not found") from None
    except (OSError, ValueError) as exc:  # parser errors and UnicodeDecodeError are ValueErrors
        problem = " ".join(str(exc).split())
        raise DaafError(f"{path}: not a {kind} table ({short_repr(problem)})") from None


def _check_values(table: pd.DataFrame, path: Path) -> None:
    """DaafError naming the first row with a value that is no number in its range, or the first
    query (image_path) listed twice for one ranking."""
    for column, (low, high) in VALUE_RANGES.items():
        values = pd.to_numeric(table[column], errors="coerce")
        bad = (values.isna() & table[column].notna()) | (values < low) | (values > high)
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise DaafError(
                f"{path}, line {row + 2}: {column} of {table['image_path'].iloc[row]} is "
                f"{shorten(str(table[column].iloc[row]))}; expected a number in [{low:g}, {high:g}] "
                "or empty"
            )
    twice = table.duplicated(["image_path", "reranked"])
    if twice.any():
        row = int(np.argmax(twice.to_numpy()))
        raise DaafError(
            f"{path}, line {row + 2}: query {table['image_path'].iloc[row]} is listed twice"
        )


def read_per_query(eval_dir: Path) -> pd.DataFrame:
    """The plain-ranking queries of ``eval_dir``/per_query.csv, indexed by image_path: pid and
    one column per metric (fractions; NaN for a query without a positive in the gallery)."""
    path = Path(eval_dir) / "per_query.csv"
    if not path.is_file():
        raise DaafError(f"{path} not found: run `daaf evaluate --out {eval_dir}` first")
    table = _read_csv(path)
    missing = {"image_path", "pid", "ap", "first_hit", "inp", "reranked"} - set(table.columns)
    if missing:
        raise DaafError(f"{path}: missing columns {sorted(missing)}")
    _check_values(table, path)
    table[list(VALUE_RANGES)] = table[list(VALUE_RANGES)].apply(pd.to_numeric)
    plain = table[table["reranked"] == 0].set_index("image_path")
    return pd.DataFrame(
        {
            "pid": plain["pid"],
            "mAP": plain["ap"],
            "rank1": (plain["first_hit"] == 1).astype(float).where(plain["first_hit"].notna()),
            "mINP": plain["inp"],
        }
    )


def _same_queries(a: pd.DataFrame, b: pd.DataFrame, a_name: str, b_name: str) -> None:
    """Raise naming the queries (image paths) that only one of two folders holds."""

    def listed(paths) -> str:
        paths = sorted(paths)
        return ", ".join(paths[:5]) + (f", ... ({len(paths)} in all)" if len(paths) > 5 else "")

    only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
    if len(only_a) or len(only_b):
        parts = [
            f"only in {a_name}: {listed(only_a)}" if len(only_a) else "",
            f"only in {b_name}: {listed(only_b)}" if len(only_b) else "",
        ]
        raise DaafError(
            f"{a_name} and {b_name} hold different queries ("
            + "; ".join(p for p in parts if p)
            + "): evaluate both on the same dataset"
        )
    b = b.loc[a.index]
    differ = a.index[(a["pid"] != b["pid"]) | (a["mAP"].isna() != b["mAP"].isna())]
    if len(differ):
        raise DaafError(
            f"{a_name} and {b_name} disagree on the identity or the positives of "
            f"{listed(differ)}: evaluate both on the same query and gallery"
        )


def _averaged(runs: list[pd.DataFrame]) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-query values averaged over runs (same queries, same order) and each run's means."""
    mean = sum(run[list(METRICS)] for run in runs) / len(runs)
    return mean, np.array([run[list(METRICS)].mean().to_numpy() for run in runs])


def identity_bootstrap(
    values: np.ndarray, pids: np.ndarray, resamples: int, seed: int = 0
) -> np.ndarray:
    """Means of ``values`` (Q, M) over the queries of resampled identities: (resamples, M).

    Resample b draws ``rng.integers(0, m, size=m)`` indices into the sorted unique ``pids``
    (row b of one ``(resamples, m)`` draw of ``np.random.default_rng(seed)``); each drawn
    identity brings all of its queries. With per-identity sums and counts each resample is a
    weighted sum, computed for blocks of resamples at once.
    """
    _, inverse = np.unique(pids, return_inverse=True)
    m = int(inverse.max()) + 1
    sums = np.zeros((m, values.shape[1]))
    np.add.at(sums, inverse, values)
    counts = np.bincount(inverse, minlength=m).astype(float)
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, values.shape[1]))
    block = max(1, CHUNK_CELLS // m)
    for start in range(0, resamples, block):
        n = min(block, resamples - start)
        draws = rng.integers(0, m, size=(n, m))
        cells = (np.arange(n)[:, None] * m + draws).ravel()
        weights = np.bincount(cells, minlength=n * m).reshape(n, m).astype(float)
        out[start : start + n] = (weights @ sums) / (weights @ counts)[:, None]
    return out


@dataclass
class Comparison:
    """Candidate vs baseline, in percent. ``metrics[name]``: baseline, candidate, delta, ci95,
    p_le_0; ``per_run[side][name]``: (mean, std) of the runs' values (std NaN for one run);
    ``bootstrap``: (resamples, 3) resampled deltas in the order of :data:`METRICS`;
    ``per_query``: each compared query's AP (percent, averaged over runs) on both sides, by
    image_path, for the report's most improved and most hurt queries; ``subset``: None for all
    queries, else label (what was kept), queries (kept) and of (the queries of the whole set)."""

    queries: int
    identities: int
    runs: dict[str, int]
    metrics: dict[str, dict]
    per_run: dict[str, dict[str, tuple[float, float]]]
    bootstrap: np.ndarray
    per_query: pd.DataFrame
    subset: dict | None = None

    @property
    def too_few_identities(self) -> bool:
        """Fewer than :data:`MIN_IDENTITIES`: the interval is no evidence either way."""
        return self.identities < MIN_IDENTITIES

    def to_json(self) -> dict:
        """The object ``daaf compare --json`` prints on its last line."""
        return {
            "queries": self.queries,
            "identities": self.identities,
            "too_few_identities": self.too_few_identities,
            "runs": self.runs,
            "metrics": self.metrics,
            "subset": self.subset,
        }

    def subset_line(self) -> str:
        """``queries: LABEL: KEPT of ALL`` for a subset, else an empty string."""
        if self.subset is None:
            return ""
        return f"queries: {self.subset['label']}: {self.subset['queries']} of {self.subset['of']}"


def compare_runs(
    baseline_dirs: list[Path],
    candidate_dirs: list[Path],
    resamples: int = 10000,
    seed: int = 0,
    queries: Collection[str] | None = None,
    queries_label: str = "subset",
) -> Comparison:
    """Paired difference candidate - baseline of mAP, Rank-1 and mINP over the queries both sides
    hold (queries without a positive left out, as in mAP), with an identity-level bootstrap.

    ``queries``: image paths; if given, only the queries among them are compared (and resampled),
    and ``queries_label`` names them in the result (see :func:`select_queries`).
    """
    if resamples < 1:
        raise DaafError(f"--bootstrap must be at least 1, got {resamples}")
    runs = _read_runs(baseline_dirs, candidate_dirs)
    reference = runs["baseline"][0]
    valid = reference["mAP"].notna().to_numpy()  # the same on every run (_same_queries)
    if not valid.any():
        raise DaafError(f"{baseline_dirs[0]}/per_query.csv: no query has a positive")
    subset = None
    if queries is not None:
        kept = _kept_queries(reference.index, valid, set(queries), queries_label, baseline_dirs[0])
        subset = {"label": queries_label, "queries": int(kept.sum()), "of": int(valid.sum())}
        valid = kept
    order = reference.index[valid]
    base, base_runs = _averaged([run.loc[order] for run in runs["baseline"]])
    cand, cand_runs = _averaged([run.loc[order] for run in runs["candidate"]])
    pids = reference.loc[order, "pid"].to_numpy()
    b, c = 100 * base.to_numpy(), 100 * cand.to_numpy()
    deltas = identity_bootstrap(c - b, pids, resamples, seed)
    return Comparison(
        queries=int(valid.sum()),
        identities=len(np.unique(pids)),
        runs={"baseline": len(baseline_dirs), "candidate": len(candidate_dirs)},
        metrics=_metric_summary(b, c, deltas),
        per_run={"baseline": _spread(base_runs), "candidate": _spread(cand_runs)},
        bootstrap=deltas,
        per_query=pd.DataFrame({"baseline": b[:, 0], "candidate": c[:, 0]}, index=order),
        subset=subset,
    )


def _read_runs(
    baseline_dirs: list[Path], candidate_dirs: list[Path]
) -> dict[str, list[pd.DataFrame]]:
    """Each side's :func:`read_per_query` tables; DaafError unless all hold the first baseline
    run's queries, identities and positives."""
    sides = {
        "baseline": [Path(d) for d in baseline_dirs],
        "candidate": [Path(d) for d in candidate_dirs],
    }
    runs = {side: [read_per_query(d) for d in dirs] for side, dirs in sides.items()}
    reference = runs["baseline"][0]
    for side, dirs in sides.items():
        for d, run in zip(dirs, runs[side], strict=True):
            _same_queries(reference, run, f"baseline {sides['baseline'][0]}", f"{side} {d}")
    return runs


def _metric_summary(b: np.ndarray, c: np.ndarray, deltas: np.ndarray) -> dict[str, dict]:
    """:attr:`Comparison.metrics` from the per-query values (Q, 3) of both sides, in percent,
    and the bootstrap's resampled differences (resamples, 3)."""
    metrics = {}
    for i, name in enumerate(METRICS):
        lo, hi = np.percentile(deltas[:, i], [2.5, 97.5])
        metrics[name] = {
            "baseline": float(b[:, i].mean()),
            "candidate": float(c[:, i].mean()),
            "delta": float((c[:, i] - b[:, i]).mean()),
            "ci95": [float(lo), float(hi)],
            "p_le_0": float((deltas[:, i] <= 0).mean()),
        }
    return metrics


def _spread(values: np.ndarray) -> dict[str, tuple[float, float]]:
    """(mean, std) in percent of each metric over runs (R, 3); std NaN for one run."""
    std = values.std(axis=0, ddof=1) if len(values) > 1 else np.full(len(METRICS), np.nan)
    return {n: (100 * values[:, i].mean(), 100 * std[i]) for i, n in enumerate(METRICS)}


def _kept_queries(
    order: pd.Index, valid: np.ndarray, queries: set[str], label: str, eval_dir: Path
) -> np.ndarray:
    """The mask of the compared queries (``valid``) that are in ``queries``; DaafError if none."""
    chosen = order.isin(list(queries))
    where = f"{eval_dir}/per_query.csv"
    if not chosen.any():
        if not queries:
            raise DaafError(
                f"queries {label}: no image meets the condition(s), so no query to compare"
            )
        example = shorten(min(queries), 100)
        raise DaafError(
            f"queries {label}: none of its {len(queries)} images is a query of {where} (e.g. "
            f"{example}): are they of the same dataset?"
        )
    kept = valid & chosen
    if not kept.any():
        raise DaafError(
            f"queries {label}: none of its {int(chosen.sum())} queries in {where} "
            "has a positive in the gallery"
        )
    return kept


@dataclass(frozen=True)
class QueryCondition:
    """One ``--queries CSV:COLUMN[=VALUE]``: the images (column image_path) of a CSV table whose
    COLUMN holds VALUE; without ``=VALUE``, those whose 0/1 COLUMN is 1."""

    csv: str
    column: str
    value: str | None  # None: a 0/1 column, kept where it is 1

    @classmethod
    def parse(cls, text: str) -> QueryCondition:
        """``CSV:COLUMN`` or ``CSV:COLUMN=VALUE`` (the CSV path ends at the last colon)."""
        csv, _, condition = text.rpartition(":")
        column, equals, value = (part.strip() for part in condition.partition("="))
        if not csv or not column or (equals and not value):
            raise DaafError(
                f"{shorten(repr(text), 200)} is not CSV:COLUMN or CSV:COLUMN=VALUE "
                "(e.g. DATA/conditions.csv:occluded=1)"
            )
        return cls(csv, column, value if equals else None)

    def __str__(self) -> str:
        return f"{self.column}={'1' if self.value is None else self.value}"

    def images(self, table: pd.DataFrame) -> set[str]:
        """The image paths of ``table`` (this CSV, read as text) whose row meets the condition."""
        if self.column not in table.columns:
            columns = shorten(", ".join(table.columns), 200)
            raise DaafError(f"{self.csv}: no column {self.column!r}; its columns: {columns}")
        cells = table[self.column].str.strip()
        values = shorten(", ".join(sorted(set(cells))))
        if self.value is None and not set(cells) <= {"0", "1"}:
            raise DaafError(
                f"{self.csv}: {self.column} is not a 0/1 column (values {values}): "
                f"write {self.csv}:{self.column}=VALUE"
            )
        rows = cells == (self.value or "1")
        if not rows.any():
            raise DaafError(f"{self.csv}: no row has {self} (values of {self.column}: {values})")
        return set(table.loc[rows, "image_path"])


def _read_conditions(path: str) -> pd.DataFrame:
    """A CSV table keyed by image_path, every cell as text; DaafError (one line) if it is not."""
    table = _read_csv(Path(path), "CSV", dtype=str, keep_default_na=False)
    if "image_path" not in table.columns:
        columns = shorten(", ".join(table.columns), 200)
        raise DaafError(f"{path}: no image_path column (its columns: {columns})")
    twice = table["image_path"].duplicated()
    if twice.any():
        row = int(np.argmax(twice.to_numpy()))
        raise DaafError(f"{path}, line {row + 2}: {table['image_path'].iloc[row]} is listed twice")
    return table


def select_queries(conditions: Sequence[QueryCondition]) -> tuple[set[str], str]:
    """The image paths that meet every condition (AND) and a label naming them, e.g.
    ``DATA/conditions.csv occluded=1 and misaligned=0``: the ``queries`` and ``queries_label``
    of :func:`compare_runs`."""
    tables: dict[str, pd.DataFrame] = {}
    kept, parts = None, []
    for i, condition in enumerate(conditions):
        if condition.csv not in tables:
            tables[condition.csv] = _read_conditions(condition.csv)
        images = condition.images(tables[condition.csv])
        kept = images if kept is None else kept & images
        same_csv = i > 0 and conditions[i - 1].csv == condition.csv
        parts.append(str(condition) if same_csv else f"{condition.csv} {condition}")
    if kept is None:
        raise DaafError("select_queries: no condition given")
    return kept, " and ".join(parts)


def difference_sentence(result: Comparison, baseline: str, candidate: str) -> str:
    """One sentence on the mAP difference that claims no more than its interval allows."""
    m = result.metrics["mAP"]
    lo, hi = m["ci95"]
    text = (
        f"mAP {candidate} - {baseline}: {m['delta']:+.2f} points, 95% CI [{lo:+.2f}, {hi:+.2f}] "
        f"(identity-level bootstrap over {result.identities} test identities"
        + (f"; {result.subset_line()})" if result.subset else ")")
    )
    if result.too_few_identities:
        return f"{text}: {TOO_FEW}."
    if lo <= 0 <= hi:
        return text + ": the interval includes 0, so no evidence of a difference."
    better = candidate if lo > 0 else baseline
    return text + f": the interval excludes 0, evidence that {better} ranks these queries better."


def format_table(result: Comparison, baseline: list, candidate: list, seed: int) -> str:
    """The text table of ``daaf compare``: both sides, the delta, its interval, per-run spread."""
    runs = result.runs
    lines = [
        f"baseline:  {', '.join(map(str, baseline))} ({runs['baseline']} run(s))",
        f"candidate: {', '.join(map(str, candidate))} ({runs['candidate']} run(s))",
        *([result.subset_line()] if result.subset else []),
        f"{result.queries} queries of {result.identities} identities; 95% CI from "
        f"{len(result.bootstrap)} identity-level bootstrap resamples (seed {seed}); percent",
        "",
        f"{'metric':<8}{'baseline':>10}{'candidate':>11}{'delta':>9}  {'95% CI':<18}P(delta<=0)",
    ]
    for name, m in result.metrics.items():
        ci = f"[{m['ci95'][0]:+.2f}, {m['ci95'][1]:+.2f}]"
        lines.append(
            f"{name:<8}{m['baseline']:>10.2f}{m['candidate']:>11.2f}{m['delta']:>+9.2f}  "
            f"{ci:<18}{m['p_le_0']:>11.3f}"
        )
    if max(runs.values()) > 1:
        lines += ["", "per run (mean +- std over the runs of each side):"]
        for side, spread in result.per_run.items():
            cells = [f"{n} {mean:.2f} +- {std:.2f}" for n, (mean, std) in spread.items()]
            lines.append(f"  {side:<10}" + ", ".join(cells))
    if result.too_few_identities:
        lines += ["", f"{result.identities} identities: {TOO_FEW}"]
    return "\n".join(lines)


def runs_label(dirs: list[str | Path]) -> str:
    """The folders of one side in one short line: path parts that differ between runs in
    braces, e.g. ``runs/seed{0,1,2}/bot/eval`` (a shell's brace expansion gives them back)."""
    parts = [Path(d).parts for d in dirs]
    if len({len(p) for p in parts}) != 1:
        return ", ".join(str(d) for d in dirs)
    merged = []
    for values in zip(*parts, strict=True):
        if len(set(values)) == 1:
            merged.append(values[0])
            continue
        head = os.path.commonprefix(values)
        tail = os.path.commonprefix([v[len(head) :][::-1] for v in values])[::-1]
        middles = [v[len(head) : len(v) - len(tail)] for v in values]
        merged.append(head + "{" + ",".join(middles) + "}" + tail)
    return str(Path(*merged))


def comparison_title(result: Comparison, baseline: list, candidate: list) -> str:
    """What ``daaf compare``'s bootstrap.png is a picture of: both sides' folders, the runs,
    the resamples and the subset of queries, if any."""
    return (
        f"candidate: {runs_label(candidate)}\n"
        f"baseline: {runs_label(baseline)}\n"
        f"{len(candidate)} vs {len(baseline)} run(s), {len(result.bootstrap)} resamples"
        + (f"; {result.subset_line()}" if result.subset else "")
    )


def save_bootstrap_plot(result: Comparison, path: Path, title: str) -> None:
    """Histograms of the resampled differences, one panel per metric, 0 and the 95% CI marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4 * len(METRICS), 3.4))
    for ax, (i, name) in zip(axes, enumerate(METRICS), strict=True):
        m = result.metrics[name]
        ax.hist(result.bootstrap[:, i], bins=60, color="steelblue", alpha=0.8)
        ax.axvline(0, color="black", lw=1, label="0 (no difference)")
        for x, label in zip(m["ci95"], ("95% CI", None), strict=True):
            ax.axvline(x, color="red", ls="--", lw=1, label=label)
        ax.axvline(m["delta"], color="red", lw=1.5, label=f"delta {m['delta']:+.2f}")
        ax.set(
            xlabel=f"{name} candidate - baseline (points)",
            ylabel="resamples",
            title=f"{name}: 95% CI [{m['ci95'][0]:+.2f}, {m['ci95'][1]:+.2f}], "
            f"P(<=0) {m['p_le_0']:.2f}",
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
