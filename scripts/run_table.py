"""Train, export and evaluate every row of one of the paper's tables; collect one CSV.

    python scripts/run_table.py --table 4 --root DATA --annotations DATA/annotations --out runs/table4
    python scripts/run_table.py --table 3 --root DATA --annotations DATA/annotations \
        --partial-root partial_reid=PARTIAL_REID_DIR --partial-root partial_ilids=PARTIAL_ILIDS_DIR

Rows are the configs ``configs/paper/table<N>_*.yaml`` (table 3 reuses table 2's models, trained
on --dataset, and evaluates them on the partial datasets). Finished runs are reused, so an
interrupted table resumes. Extra ``KEY=VALUE`` arguments override every row's config (e.g.
``train.device=cuda:1``). Results: OUT/table<N>.csv and, per row, the usual run folders.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd

from daaf.data.datasets import build_dataset
from daaf.errors import DaafError
from daaf.evaluation.evaluate import evaluate_model
from daaf.training.config import load_config
from daaf.training.export import export_model, load_inference_model
from daaf.training.trainer import LAST_CHECKPOINT, load_checkpoint, train
from daaf.utils.device import resolve_device

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper"


def run_row(config: Path, overrides: list[str], out: Path) -> Path:
    """Train (or resume, or reuse) one row and export it; returns the export folder."""
    cfg = load_config(config, overrides)
    run = out / config.stem
    last = run / "checkpoints" / LAST_CHECKPOINT
    done = last.is_file() and load_checkpoint(last)["epoch"] >= cfg.train.epochs
    if not done:
        train(cfg, run, resume=last.is_file())
    export_dir = run / "export"
    if not (export_dir / "export_report.json").is_file():
        export_model(last, export_dir)
    return export_dir


@click.command()
@click.option("--table", type=click.Choice(["2", "3", "4", "5", "6", "7"]), required=True)
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
@click.argument("overrides", nargs=-1)
def main(table, dataset, root, annotations, partial_root, out_dir, device, overrides) -> None:
    out = Path(out_dir or f"runs/table{table}")
    configs = sorted(PAPER.glob(f"table{'2' if table == '3' else table}_*.yaml"))
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
    rows = []
    for config in configs:
        export_dir = run_row(config, base, out)
        model, meta = load_inference_model(export_dir, torch_device)
        for name, test in tests:
            metrics = evaluate_model(
                model,
                meta,
                test,
                out / config.stem / f"eval_{name}",
                torch_device,
                rerank=table == "2",
            )
            for record in metrics.to_dict(orient="records"):
                rows.append({"row": config.stem, **record})
    result = pd.DataFrame(rows)
    result.to_csv(out / f"table{table}.csv", index=False, float_format="%.2f")
    click.echo(result.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    click.echo(f"written: {out / f'table{table}.csv'}")


if __name__ == "__main__":
    try:
        main()
    except DaafError as exc:  # one line and exit 1, as the daaf command reports user errors
        sys.exit(f"Error: {exc}")
