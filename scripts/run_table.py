"""Train, export and evaluate every row of one of the paper's tables; collect one CSV.

    python scripts/run_table.py --table 4 --root DATA --annotations DATA/annotations --out runs/table4
    python scripts/run_table.py --table 3 --root DATA --annotations DATA/annotations \
        --partial-root partial_reid=PARTIAL_REID_DIR --partial-root partial_ilids=PARTIAL_ILIDS_DIR

Rows are the configs ``configs/paper/table<N>_*.yaml`` (table 3 reuses table 2's models, trained
on --dataset, and evaluates them on the partial datasets). Finished runs are reused, so an
interrupted table resumes. Extra ``KEY=VALUE`` arguments override every row's config (e.g.
``train.device=cuda:1``). Results: OUT/table<N>.csv and, per row, the usual run folders.

With ``--seeds N`` every row is trained N times (``train.seed=0..N-1``, runs in OUT/seed<i>/);
OUT/table<N>_seeds.csv then gives each row's mean and std over the seeds and, for the plain
ranking, its paired difference to the base row (``--base-row``) with the 95% CI of
``daaf compare`` (the seeds averaged per query, identity-level bootstrap).

``--table study`` runs the synthetic study's rows, ``configs/study/study_*.yaml`` (see
docs/results/synthetic.md and scripts/synthetic_study.sh). On ``--dataset synthetic`` every run
also gets the attention columns of ``daaf demo`` (HAB IoU, PAB PCK, background sensitivity)
against the true masks and keypoints in ROOT/annotations. ``--only ROW`` restricts a call to
some rows, so that rows can train in parallel processes; a last call without it collects all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd

from daaf.config import load_config
from daaf.data.annotations import AnnotationStore
from daaf.data.datasets import build_dataset
from daaf.errors import DaafError
from daaf.evaluation.attention_metrics import attention_scores
from daaf.evaluation.compare import compare_runs
from daaf.evaluation.evaluate import EvalOptions, evaluate_model
from daaf.evaluation.outputs import write_evaluation
from daaf.models import load_inference_model
from daaf.training.checkpoint import trained_epochs
from daaf.training.commands import periodic_evaluation
from daaf.training.export import export_model
from daaf.training.trainer import LAST_CHECKPOINT, train
from daaf.utils.device import resolve_device

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper"
STUDY = Path(__file__).resolve().parents[1] / "configs" / "study"
# The row each table's others are compared with: the paper's baseline or default setting.
BASE_ROWS = {
    "2": "table2_bot",
    "3": "table2_bot",
    "4": "table4_base",
    "5": "table5_keypoint_group",
    "6": "table6_groups_6",
    "7": "table7_keypoint_shared",
    "study": "study_bot",
}
METRICS = ("mAP", "rank1", "mINP")
ATTENTION = ("hab_mask_iou", "pab_pck", "background_sensitivity")  # synthetic data only


def table_configs(table: str) -> list[Path]:
    """A table's row configs: configs/paper/table<N>_*.yaml (table 3 reuses table 2's), or
    configs/study/study_*.yaml for ``study``."""
    if table == "study":
        return sorted(STUDY.glob("study_*.yaml"))
    return sorted(PAPER.glob(f"table{'2' if table == '3' else table}_*.yaml"))


def run_row(config: Path, overrides: list[str], out: Path) -> Path:
    """Train (or resume, or reuse) one row and export it; returns the export folder."""
    cfg = load_config(config, overrides)
    run = out / config.stem
    last = run / "checkpoints" / LAST_CHECKPOINT
    done = last.is_file() and trained_epochs(last) >= cfg.train.epochs
    if not done:
        train(cfg, run, resume=last.is_file(), evaluate=periodic_evaluation(cfg))
    export_dir = run / "export"
    if not (export_dir / "model_state.pt").is_file():  # written only by an export that passed
        export_model(last, export_dir)
    return export_dir


def seed_summary(table: pd.DataFrame, base_row: str, resamples: int = 10000) -> pd.DataFrame:
    """Mean and std over seeds per (row, dataset, ranking) of ``table`` (one line per run, with
    an ``eval_dir`` column), and the plain ranking's paired delta to ``base_row`` with its 95%
    CI and P(delta <= 0), in points."""
    lines = []
    for (row, dataset, ranking), runs in table.groupby(["row", "dataset", "ranking"], sort=False):
        line = {"row": row, "dataset": dataset, "ranking": ranking, "seeds": len(runs)}
        for metric in (m for m in (*METRICS, *ATTENTION) if m in runs and runs[m].notna().any()):
            line[f"{metric}_mean"] = runs[metric].mean()
            line[f"{metric}_std"] = runs[metric].std(ddof=1) if len(runs) > 1 else float("nan")
        base = table[
            (table["row"] == base_row)
            & (table["dataset"] == dataset)
            & (table["ranking"] == ranking)
        ]
        if ranking == "plain" and row != base_row and len(base):
            result = compare_runs(list(base["eval_dir"]), list(runs["eval_dir"]), resamples)
            m = result.metrics["mAP"]
            line.update(
                delta_mAP=m["delta"],
                ci95_low=m["ci95"][0],
                ci95_high=m["ci95"][1],
                p_le_0=m["p_le_0"],
            )
        lines.append(line)
    return pd.DataFrame(lines)


def format_seed_summary(summary: pd.DataFrame, base_row: str) -> str:
    """The seed summary as text: mean +- std per metric, delta mAP [95% CI] against the base."""
    lines = []
    for line in summary.to_dict(orient="records"):
        cells = [
            f"{m} {line[f'{m}_mean']:.{d}f} +- {line[f'{m}_std']:.{d}f}"
            for m, d in [*((m, 2) for m in METRICS), *((m, 3) for m in ATTENTION)]
            if f"{m}_mean" in line and pd.notna(line[f"{m}_mean"])
        ]
        if pd.notna(line.get("delta_mAP")):
            cells.append(
                f"delta mAP vs {base_row} {line['delta_mAP']:+.2f} "
                f"[{line['ci95_low']:+.2f}, {line['ci95_high']:+.2f}]"
            )
        head = f"{line['row']} {line['dataset']} {line['ranking']} ({line['seeds']} seeds):"
        lines.append(f"{head} " + ", ".join(cells))
    return "\n".join(lines)


@click.command()
@click.option("--table", type=click.Choice(["2", "3", "4", "5", "6", "7", "study"]), required=True)
@click.option(
    "--dataset", default="market1501", show_default=True, help="Training (and test) dataset."
)
@click.option("--root", required=True, type=click.Path(file_okay=False))
@click.option(
    "--annotations",
    required=True,
    type=click.Path(file_okay=False),
    help="Annotation store of --dataset.",
)
@click.option(
    "--partial-root", multiple=True, help="Table 3: NAME=DIR for partial_reid / partial_ilids."
)
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False))
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--seeds",
    type=click.IntRange(min=1),
    default=None,
    help="Train every row N times (train.seed=0..N-1): mean +- std and 95% CIs vs --base-row.",
)
@click.option("--base-row", default=None, help="Row the CIs compare with (default: BASE_ROWS).")
@click.option("--only", multiple=True, help="Run only this row (repeatable), e.g. study_bot.")
@click.argument("overrides", nargs=-1)
def main(
    table,
    dataset,
    root,
    annotations,
    partial_root,
    out_dir,
    device,
    seeds,
    base_row,
    only,
    overrides,
) -> None:
    out = Path(out_dir or f"runs/table{table}")
    configs = table_configs(table)
    base_row = base_row or BASE_ROWS[table]
    for row, hint in ((base_row, "--base-row"), *((o, "--only") for o in only)):
        if row not in {c.stem for c in configs}:
            raise click.BadParameter(f"{row} is not a row of table {table}", param_hint=hint)
    configs = [c for c in configs if not only or c.stem in only]
    base = [
        f"data.dataset={dataset}",
        f"data.root={root}",
        f"data.annotations={annotations}",
        *overrides,
    ]
    torch_device = resolve_device(device)
    if table == "3":
        tests = [
            (name, build_dataset(name, path))
            for name, path in (p.split("=", 1) for p in partial_root)
        ]
        if not tests:
            raise click.UsageError(
                "table 3 needs --partial-root partial_reid=DIR and/or partial_ilids=DIR"
            )
    else:
        tests = [(dataset, build_dataset(dataset, root))]
    truth = AnnotationStore(Path(root) / "annotations") if dataset == "synthetic" else None
    rows = []
    for seed in range(seeds or 1):
        seed_out, seed_args = (out / f"seed{seed}", [f"train.seed={seed}"]) if seeds else (out, [])
        for config in configs:
            export_dir = run_row(config, [*base, *seed_args], seed_out)
            model, meta = load_inference_model(export_dir, torch_device)
            for name, test in tests:
                eval_dir = seed_out / config.stem / f"eval_{name}"
                evaluation = evaluate_model(
                    model, meta, test, torch_device, EvalOptions(rerank=table == "2")
                )
                model_name = config.stem + (f" seed {seed}" if seeds else "")
                write_evaluation(evaluation, eval_dir, model_name=model_name)
                metrics = evaluation.metrics_table()
                scores = {}
                if truth is not None:  # the attention against the true masks and keypoints
                    checkpoint = export_dir.parent / "checkpoints" / LAST_CHECKPOINT
                    trained, trained_meta = load_inference_model(checkpoint, torch_device)
                    scores = attention_scores(trained, test, truth, trained_meta, torch_device)
                for record in metrics.to_dict(orient="records"):
                    rows.append(
                        {
                            "row": config.stem,
                            **({"seed": seed} if seeds else {}),
                            **record,
                            **scores,
                            "eval_dir": str(eval_dir),
                        }
                    )
    result = pd.DataFrame(rows)
    result.to_csv(out / f"table{table}.csv", index=False, float_format="%.2f")
    click.echo(
        result.drop(columns="eval_dir").to_string(index=False, float_format=lambda v: f"{v:.2f}")
    )
    click.echo(f"written: {out / f'table{table}.csv'}")
    if seeds:
        summary = seed_summary(result, base_row)
        summary.to_csv(out / f"table{table}_seeds.csv", index=False, float_format="%.4f")
        click.echo(format_seed_summary(summary, base_row))
        click.echo(f"written: {out / f'table{table}_seeds.csv'}")


if __name__ == "__main__":
    try:
        main()
    except DaafError as exc:  # one line and exit 1, as the daaf command reports user errors
        sys.exit(f"Error: {exc}")
