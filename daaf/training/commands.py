"""Commands ``daaf train`` and ``daaf export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from daaf.utils.options import out_dir_option

if TYPE_CHECKING:
    from daaf.config import Config
    from daaf.training.hooks import Evaluate

EXPORT_KIND = "`daaf export` output"  # the kind of daaf's marker in its --out


@click.command("train", context_settings={"ignore_unknown_options": False})
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="YAML config (see configs/); may name a _base_ file.",
)
@out_dir_option("Run folder (default: runs/<config name>).")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoints/last.pt.")
@click.argument("overrides", nargs=-1)
def train(config_path: str, out_dir: str | None, resume: bool, overrides: tuple[str, ...]) -> None:
    """Train a base or DAAF network; KEY=VALUE overrides config values (e.g. optim.lr=1e-4).

    Runs DistributedDataParallel when started by torchrun:
    `torchrun --nproc-per-node 4 -m daaf.cli train --config ...`. A second run into the same
    --out while this one runs is refused.
    """
    from daaf.config import load_config
    from daaf.training.trainer import train as run_training
    from daaf.utils.files import check_output_path
    from daaf.utils.lock import folder_lock

    out = Path(out_dir) if out_dir else Path("runs") / Path(config_path).stem
    check_output_path(out)
    cfg = load_config(config_path, overrides)
    with folder_lock(out):
        last = run_training(cfg, out, resume=resume, evaluate=periodic_evaluation(cfg))
    click.echo(f"checkpoint: {last}")


def periodic_evaluation(cfg: Config) -> Evaluate:
    """mAP and Rank-1 on the dataset's query and gallery, as ``daaf evaluate`` computes them:
    the command line joins daaf.evaluation to the trainer, which imports none of it."""
    from daaf.evaluation.evaluate import evaluate_embeddings
    from daaf.models.meta import default_metric

    def evaluate(model, dataset, device) -> dict[str, float]:
        result = evaluate_embeddings(
            model, dataset, cfg.data, device, metric=default_metric(cfg.model)
        )
        return {"eval/mAP": float(result.mAP), "eval/rank1": float(result.cmc[0])}

    return evaluate


@click.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@out_dir_option(
    "Folder for model_state.pt, model.ts, model.onnx and export_report.json.", required=True
)
def export(checkpoint: str, out_dir: str) -> None:
    """Export the base network alone from a training checkpoint, and check it.

    Fails if the exported parameters or FLOPs differ from torchvision's ResNet plus the head,
    or if the TorchScript / ONNX embeddings differ from the trained model's by more than 1e-4.
    """
    from daaf.training.export import export_model
    from daaf.utils.files import check_output_dir, marked_output

    check_output_dir(out_dir, EXPORT_KIND)
    with marked_output(out_dir, EXPORT_KIND):
        report = export_model(Path(checkpoint), Path(out_dir))
    click.echo(json.dumps(report, indent=2))
