"""The losses over training of every row of a seeded table, mean over the seeds (and the range).

    python scripts/plot_losses.py --runs runs/study --png docs/results/synthetic/losses.png

Reads ``RUNS/seed<i>/<row>/metrics.jsonl`` (``scripts/run_table.py --seeds``). Panels: the ReID
loss (id + triplet + center), and the HAB and PAB losses divided by their weights, i.e. L_h and
L_p themselves: the weight each step used (``weight/hab``, ``weight/pab``, logged when
``loss.branch_balance`` adapts them), else ``loss.hab_weight``, ``loss.pab_weight`` of the run's
config.yaml.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd
import yaml

from daaf.errors import DaafError

REID_TERMS = ("id", "triplet", "center")
PANELS = {"reid": "ReID loss (id + triplet + center)", "hab": "L_h (HAB)", "pab": "L_p (PAB)"}


def run_losses(run: Path) -> pd.DataFrame:
    """One run's ``step``, ``reid`` and, where the run trains the branch (a weight above 0),
    ``hab`` and ``pab`` divided by the weights they were trained with."""
    log = pd.read_json(run / "metrics.jsonl", lines=True)
    if "step" not in log:  # a run that has logged nothing yet
        return pd.DataFrame(columns=["step", "reid"])
    log = log[log["total"].notna()] if "total" in log else log  # not the branch-health lines
    weights = yaml.safe_load((run / "config.yaml").read_text())["loss"]
    out = pd.DataFrame(
        {"step": log["step"], "reid": log[[t for t in REID_TERMS if t in log]].sum(axis=1)}
    )
    for term in ("hab", "pab"):
        if term in log and weights[f"{term}_weight"]:  # a weight of 0 trains nothing
            weight = log.get(f"weight/{term}", pd.Series(index=log.index, dtype=float))
            out[term] = log[term] / weight.fillna(weights[f"{term}_weight"])
    return out


def seed_losses(runs: Path) -> dict[str, pd.DataFrame]:
    """Per row: per step, each panel's mean, min and max over the seeds (columns ``pab_mean``...)."""
    folders = sorted(p.parent for p in runs.glob("seed*/*/metrics.jsonl"))
    if not folders:
        raise DaafError(
            f"{runs}: no seed<i>/<row>/metrics.jsonl (run scripts/run_table.py --seeds)"
        )
    rows: dict[str, list[pd.DataFrame]] = {}
    for folder in folders:
        losses = run_losses(folder)
        if not losses.empty:
            rows.setdefault(folder.name, []).append(losses)
    summary = {}
    for row, logs in rows.items():
        grouped = pd.concat(logs).groupby("step")
        summary[row] = (
            pd.concat(
                [
                    grouped.mean().add_suffix("_mean"),
                    grouped.min().add_suffix("_min"),
                    grouped.max().add_suffix("_max"),
                ],
                axis=1,
            )
            .assign(seeds=len(logs))
            .reset_index()
        )
    return summary


def plot(summary: dict[str, pd.DataFrame], png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(12, 3.6))
    for ax, (panel, label) in zip(axes, PANELS.items(), strict=True):
        for i, (row, curve) in enumerate(summary.items()):  # one colour per row in every panel
            if f"{panel}_mean" not in curve:
                continue
            line = ax.plot(
                curve["step"],
                curve[f"{panel}_mean"],
                label=f"{row} ({curve['seeds'][0]} seeds)",
                color=f"C{i}",
            )
            ax.fill_between(
                curve["step"],
                curve[f"{panel}_min"],
                curve[f"{panel}_max"],
                color=line[0].get_color(),
                alpha=0.2,
            )
        ax.set(title=label, xlabel="iteration", yscale="log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{title}: mean over seeds, band = min..max")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)


@click.command()
@click.option("--runs", required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--png", required=True, type=click.Path(dir_okay=False))
@click.option("--title", default="training losses", show_default=True)
def main(runs: str, png: str, title: str) -> None:
    plot(seed_losses(Path(runs)), Path(png), title)
    click.echo(f"written: {png}")


if __name__ == "__main__":
    try:
        main()
    except DaafError as exc:
        sys.exit(f"Error: {exc}")
