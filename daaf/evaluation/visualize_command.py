"""Command ``daaf visualize``: the paper's pictures (Fig. 5-9) for a trained model."""

from __future__ import annotations

from pathlib import Path

import click

from daaf.utils.options import (
    COMPONENTS,
    JITTER,
    PICTURE_IMAGES,
    dataset_option,
    device_option,
    model_option,
    out_dir_option,
    root_option,
    seed_option,
)

PICTURES_KIND = "`daaf visualize` output"  # the kind of daaf's marker in its --out


@click.command("visualize")
@model_option("Training checkpoint (all pictures) or export (Grad-CAM only).")
@click.option(
    "--base-model",
    "base_model_path",
    type=click.Path(exists=True),
    help="Model without attention branches, drawn beside --model (paper Fig. 5, 6).",
)
@dataset_option()
@root_option("Dataset root.")
@click.option(
    "--annotations",
    type=click.Path(exists=True, file_okay=False),
    help="Annotation store: the labeler's masks and keypoints beside the branch outputs.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "query", "gallery"]),
    default="query",
    show_default=True,
)
@click.option(
    "--n",
    "n",
    default=8,
    show_default=True,
    type=PICTURE_IMAGES,
    help="Images, spread over the split.",
)
@click.option(
    "--components",
    default=256,
    type=COMPONENTS,
    show_default=True,
    help="Embedding components averaged per Grad-CAM map (random subset, --seed); 0 = all, exact.",
)
@seed_option()
@click.option(
    "--jitter",
    default=2,
    type=JITTER,
    show_default=True,
    help="Grad-CAM maps averaged over JITTER x JITTER input shifts of whole layer1 cells, "
    "against the stride-2 dot grid; 1 = the plain single pass.",
)
@device_option
@out_dir_option(default="pictures")
def visualize(
    model_path,
    base_model_path,
    dataset,
    root,
    annotations,
    split,
    n,
    components,
    seed,
    jitter,
    device,
    out_dir,
) -> None:
    """Grad-CAM attention maps, HAB/PAB outputs and the 1x1 conv shuffle (paper Fig. 5-9)."""
    from daaf.evaluation.visualize.render import PictureOptions, render_all
    from daaf.utils.files import check_output_dir, marked_output

    options = PictureOptions(split=split, n=n, components=components, seed=seed, jitter=jitter)
    check_output_dir(out_dir, PICTURES_KIND)
    with marked_output(out_dir, PICTURES_KIND):
        report = render_all(
            Path(model_path),
            base_model_path and Path(base_model_path),
            dataset,
            Path(root),
            annotations and Path(annotations),
            Path(out_dir),
            device,
            options,
        )
    for note in report["notes"]:
        click.echo(f"note: {note}")
    score = report["decoupling"]
    if score is not None:
        near = score["nearest_diagonal"]
        click.echo(
            f"1x1 conv shuffle: {100 * near['feature_group']:.0f}% of shuffled heatmaps peak nearer "
            f"their feature group's own peak, {100 * near['conv_layer']:.0f}% nearer the conv's"
        )
    click.echo(f"written to {out_dir}/ ({', '.join(report['files'] + ['visualize.json'])})")
