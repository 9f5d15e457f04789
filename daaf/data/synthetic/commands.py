"""Command ``daaf synth``."""

from __future__ import annotations

import click


@click.command("synth")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Dataset root to write.",
)
@click.option(
    "--identities", default=100, show_default=True, help="Identities (half train, half test)."
)
@click.option("--cameras", default=6, show_default=True)
@click.option("--images-per-identity", default=10, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--occlusion",
    default=0.1,
    show_default=True,
    help="Probability that an object hides part of the person.",
)
@click.option(
    "--workers", type=int, default=None, help="Drawing processes [default: min(4, CPUs)]."
)
def synth(out_dir, identities, cameras, images_per_identity, seed, occlusion, workers) -> None:
    """Synthetic pedestrians in Market-1501 layout, with exact masks and keypoints in OUT/annotations.

    The same seed gives byte-identical files. Read it with `--dataset synthetic --root OUT`.
    """
    from daaf.data.synthetic.generate import generate_dataset
    from daaf.errors import DaafError

    try:
        dataset = generate_dataset(
            out_dir, identities, cameras, images_per_identity, seed, occlusion, workers
        )
    except ValueError as exc:
        raise DaafError(str(exc)) from exc
    for split, row in dataset.summary().items():
        click.echo(
            f"{split:<8} {row['images']:>6} images {row['ids']:>5} ids {row['cameras']:>2} cameras"
        )
    click.echo(f"annotations: {out_dir}/annotations")
