"""Command ``daaf synth``."""

from __future__ import annotations

import click

from daaf.data.synthetic.presets import PRESETS
from daaf.utils.options import (
    PROBABILITY,
    PROCESSES,
    SYNTH_CAMERAS,
    SYNTH_IDENTITIES,
    SYNTH_IMAGES_PER_IDENTITY,
    out_dir_option,
    seed_option,
)

SYNTH_KIND = "`daaf synth` output"  # the kind of daaf's marker in its --out


@click.command("synth")
@out_dir_option("Dataset root to write (new or empty).", required=True)
@click.option(
    "--identities",
    type=SYNTH_IDENTITIES,
    default=100,
    show_default=True,
    help="People; a random half trains, the rest test.",
)
@click.option("--cameras", type=SYNTH_CAMERAS, default=6, show_default=True)
@click.option(
    "--images-per-identity", type=SYNTH_IMAGES_PER_IDENTITY, default=10, show_default=True
)
@seed_option("Same seed, same bytes.")
@click.option(
    "--occlusion",
    type=PROBABILITY,
    default=None,
    help="Probability that an object hides part of the person  [default: the preset's; 0.1]",
)
@click.option(
    "--preset",
    default="default",
    show_default=True,
    help=f"How far images depart from a centred, whole, walking person: {', '.join(PRESETS)} "
    "(docs/synthetic_presets.md).",
)
@click.option(
    "--workers",
    type=PROCESSES,
    default=None,
    help="Drawing processes  [default: min(4, CPUs)]",
)
def synth(
    out_dir, identities, cameras, images_per_identity, seed, occlusion, preset, workers
) -> None:
    """Synthetic pedestrians in Market-1501 layout, with exact masks and keypoints in OUT/annotations.

    Read them with `daaf datasets check market1501 --root OUT` (or the `synthetic` name, which
    the annotation store carries). The same seed gives byte-identical files whatever --workers.
    """
    from daaf.data.synthetic.generate import SynthSpec, generate_dataset
    from daaf.utils.files import check_output_dir, marked_output

    check_output_dir(out_dir, SYNTH_KIND)
    with marked_output(out_dir, SYNTH_KIND):
        spec = SynthSpec(identities, cameras, images_per_identity, seed, occlusion, preset)
        dataset = generate_dataset(out_dir, spec, workers)
    for split, row in dataset.summary().items():
        click.echo(
            f"{split:<8} {row['images']:>6} images {row['ids']:>5} ids {row['cameras']:>2} cameras"
        )
    click.echo(f"annotations: {out_dir}/annotations")
