"""Command ``daaf evaluate``."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("evaluate")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True),
    help="Export folder, model.ts, model_state.pt, or a training checkpoint.",
)
@click.option("--dataset", required=True, help="Dataset name (see `daaf datasets list`).")
@click.option("--root", required=True, type=click.Path(file_okay=False), help="Dataset root.")
@click.option(
    "--rerank", is_flag=True, help="Also report k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)."
)
@click.option("--flip", is_flag=True, help="Average each embedding with its mirror image's.")
@click.option(
    "--metric",
    type=click.Choice(["euclidean", "cosine"]),
    default=None,
    help="Distance (default: the model's, cosine for BoT, euclidean for TriNet).",
)
@click.option("--batch-size", default=128, show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option(
    "--num-ranklists",
    default=8,
    show_default=True,
    help="Rank-list pictures (best and worst queries).",
)
@click.option(
    "--out", "out_dir", default="eval", show_default=True, type=click.Path(file_okay=False)
)
def evaluate(model_path, dataset, root, rerank, flip, metric, batch_size, workers, device,
             num_ranklists, out_dir) -> None:  # fmt: skip
    """mAP, CMC and mINP of a model on a dataset's query/gallery; metrics files and pictures."""
    from daaf.data.datasets import build_dataset
    from daaf.evaluation.evaluate import evaluate_model
    from daaf.training.export import load_inference_model
    from daaf.utils.device import resolve_device

    torch_device = resolve_device(device)
    data = build_dataset(dataset, root)
    model, meta = load_inference_model(Path(model_path), torch_device)
    table = evaluate_model(
        model, meta, data, Path(out_dir), torch_device, metric=metric, rerank=rerank, flip=flip,
        batch_size=batch_size, workers=workers, num_ranklists=num_ranklists,
    )  # fmt: skip
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    click.echo(
        f"written to {out_dir}/ (metrics.json, metrics.csv, per_query.csv, cmc.png, ranklists/)"
    )
