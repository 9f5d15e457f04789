"""Each run's last branch-health measurement: did its HAB and PAB learn by the end of training?

    python scripts/health_table.py RUNS [--csv health.csv]

Reads ``RUNS/seed<i>/<row>/metrics.jsonl`` (``scripts/run_table.py --seeds``) and prints, per
run with branch-health signals, each branch's loss beside the all-zero and the mean target
map's, how far below the all-zero map's it is (``daaf train`` warns under 5%), the gradient it
sends into the shared backbone as a fraction of the ReID loss's, and the weight it trained with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import pandas as pd
import yaml

from daaf.errors import DaafError
from daaf.training.branch_health import BRANCHES, last_measurement


def configured_weights(run: Path) -> dict[str, float]:
    """Each branch's ``loss.<branch>_weight`` in the run's config.yaml, or DaafError naming
    what is wrong with the file."""
    path = run / "config.yaml"
    try:
        loss = yaml.safe_load(path.read_text())["loss"]
        return {branch: float(loss[f"{branch}_weight"]) for branch in BRANCHES}
    except (OSError, yaml.YAMLError, TypeError, KeyError, ValueError) as error:
        raise DaafError(f"{path}: not a run's config with loss weights ({error!r})") from None


def health_rows(runs: Path) -> pd.DataFrame:
    """One line per run and trained branch (a weight of 0 in its config.yaml trains nothing):
    row, seed, branch, step, loss, zero_map_loss, mean_map_loss, below_zero (1 - loss /
    zero_map_loss), grad_ratio, and the weight in use then (``weight/...``, logged when
    ``loss.branch_balance`` adapts it; else the config's)."""
    lines = []
    for metrics in sorted(runs.glob("seed*/*/metrics.jsonl")):
        last = last_measurement(metrics)
        configured = configured_weights(metrics.parent)
        for branch in BRANCHES:
            loss = last.get(f"health/{branch}/loss")
            if loss is None or not configured[branch]:
                continue
            zero = last[f"health/{branch}/zero_map_loss"]
            lines.append(
                {
                    "row": metrics.parent.name,
                    "seed": metrics.parent.parent.name,
                    "branch": branch,
                    "step": last["step"],
                    "loss": loss,
                    "zero_map_loss": zero,
                    "mean_map_loss": last.get(f"health/{branch}/mean_map_loss", float("nan")),
                    "below_zero": 1 - loss / zero if zero else float("nan"),
                    "grad_ratio": last.get(f"health/{branch}/grad_ratio", float("nan")),
                    "weight": last.get(f"weight/{branch}", configured[branch]),
                }
            )
    if not lines:
        raise DaafError(f"{runs}: no seed<i>/<row>/metrics.jsonl with branch-health signals")
    return pd.DataFrame(lines)


@click.command()
@click.argument("runs", type=click.Path(file_okay=False, exists=True))
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write the table.")
def main(runs: str, csv_path: str | None) -> None:
    """Print the last branch-health measurement of every run in RUNS."""
    table = health_rows(Path(runs))
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if csv_path:
        table.to_csv(csv_path, index=False)


if __name__ == "__main__":
    try:
        main(standalone_mode=True)
    except DaafError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
