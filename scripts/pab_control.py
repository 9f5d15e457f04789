"""The PAB's positive control: can the keypoint branch learn on this testbed at all?

    python scripts/pab_control.py OUT [--settings v2]

Makes `daaf synth --preset misaligned` data in OUT/data (reused if there), trains the PAB on its
loss alone for 144 iterations on one thread, and prints its PCK on the queries beside a
constant map's (every keypoint at its median training place) and whether it localises: PCK at
least the constant map's + LOCALISES_MARGIN. ``--settings fix`` (the default) trains it the way
pose codebases train a heatmap head (configs/study/control_pab.yaml), which must localise;
``--settings v2`` trains study v2's PAB-alone diagnostic (control_pab_v2.yaml), which must not.
Exit status 0 when the verdict is the one the settings should give, else 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import torch

from daaf.config import load_config
from daaf.data.annotations import AnnotationStore
from daaf.data.datasets import build_dataset
from daaf.data.synthetic.generate import SynthSpec, generate_dataset
from daaf.data.synthetic.stats import summarize
from daaf.errors import DaafError
from daaf.evaluation.attention_metrics import LOCALISES_MARGIN, branch_accuracy
from daaf.models import load_inference_model
from daaf.training.trainer import train

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "study"
SETTINGS = {"fix": "control_pab.yaml", "v2": "control_pab_v2.yaml"}


def make_data(data: Path) -> Path:
    """``daaf synth --preset misaligned`` data at ``data`` (seed 0), unless it is there."""
    if not (data / "annotations" / "manifest.csv").is_file():
        generate_dataset(data, SynthSpec(preset="misaligned"), workers=1, progress=False)
    return data


def run_control(data: Path, run_dir: Path, settings: str = "fix") -> dict:
    """Train the control under ``settings`` on one thread into ``run_dir`` and return its PCK
    on the queries of ``data``, the constant map's and the verdict."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = load_config(
            CONFIGS / SETTINGS[settings],
            [
                "data.dataset=synthetic",
                f"data.root={data}",
                f"data.annotations={data / 'annotations'}",
                "train.device=cpu",
            ],
        )
        last = train(cfg, run_dir)
        dataset = build_dataset("synthetic", data)
        model, meta = load_inference_model(last, "cpu")
        truth = AnnotationStore(data / "annotations")
        accuracy = branch_accuracy(model, dataset, truth, meta, dataset.query, "cpu")
    finally:
        torch.set_num_threads(threads)
    constant = summarize(data)["constant_map_pck"]
    return {
        "settings": settings,
        "pck": accuracy.pck,
        "constant_map_pck": constant,
        "passes": accuracy.pck >= constant + LOCALISES_MARGIN,
    }


@click.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--settings",
    type=click.Choice(sorted(SETTINGS)),
    default="fix",
    show_default=True,
    help="fix: as pose codebases train (must localise); v2: study v2's settings (must not).",
)
def main(out: Path, settings: str) -> None:
    """Train the PAB's positive control into OUT and print its verdict."""
    result = run_control(make_data(out / "data"), out / settings, settings)
    click.echo(json.dumps(result))
    verdict = "localises" if result["passes"] else "does not localise"
    click.echo(
        f"PAB PCK {result['pck']:.3f} against a constant map's "
        f"{result['constant_map_pck']:.3f}: it {verdict} (needs +{LOCALISES_MARGIN})."
    )
    sys.exit(0 if result["passes"] == (settings == "fix") else 1)


if __name__ == "__main__":
    try:
        main()
    except DaafError as exc:
        sys.exit(f"Error: {exc}")
