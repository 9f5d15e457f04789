"""Command `daaf annotations`: inspect, validate and draw an annotation store."""

from __future__ import annotations

from pathlib import Path

import click

from daaf.utils.options import GRID_IMAGES, out_file_option, root_option, seed_option


@click.group("annotations")
def annotations() -> None:
    """Inspect, validate and draw annotation stores (masks + keypoints in HDF5 shards)."""


@annotations.command("inspect")
@click.argument("store_dir", type=click.Path(path_type=Path))
def inspect(store_dir: Path) -> None:
    """Images per split and status, score and mask-area statistics."""
    from daaf.data.annotations.reader import AnnotationStore
    from daaf.data.annotations.report import format_summary, summarize_store

    with AnnotationStore(store_dir) as store:
        click.echo(format_summary(summarize_store(store)))


@annotations.command("validate")
@click.argument("store_dir", type=click.Path(path_type=Path))
@root_option(
    "Dataset root: also check that the store covers exactly the dataset's images and that "
    "each is the file it was labelled from (SHA-256).",
    required=False,
    file_okay=True,
    path_type=Path,
)
def validate(store_dir: Path, root: Path | None) -> None:
    """Check every shard (whole, checksum, schema version) and the manifest; exit 1 on problems."""
    from daaf.data.annotations.reader import store_dataset_name
    from daaf.data.annotations.validate import validate_store
    from daaf.data.datasets import build_dataset

    dataset, problems = None, []
    if root is not None:
        name = store_dataset_name(store_dir)
        if name is None:
            problems.append(f"{store_dir}: no readable shard names a dataset to check against")
        else:
            dataset = build_dataset(name, root)
    notes: list[str] = []
    problems = validate_store(store_dir, dataset, progress=True, notes=notes) + problems
    for note in notes:
        click.echo(f"note: {note}")
    if problems:
        for problem in problems:
            click.echo(f"- {problem}")
        click.echo(f"INVALID: {len(problems)} problem(s) in {store_dir}")
        raise SystemExit(1)
    covered = f", covers dataset {dataset.name} at {root}" if dataset is not None else ""
    click.echo(f"OK: {store_dir}{covered}")


@annotations.command("show")
@click.argument("store_dir", type=click.Path(path_type=Path))
@out_file_option("PNG file to write.", name="out", path_type=Path)
@click.option("--n", type=GRID_IMAGES, default=16, show_default=True, help="Number of images.")
@root_option(
    "Dataset root, to draw the real images (else grey canvases).", required=False, path_type=Path
)
@seed_option("Which images are picked.")
def show(store_dir: Path, out: Path, n: int, root: Path | None, seed: int) -> None:
    """Draw a grid of images with the mask overlaid and the COCO skeleton."""
    from daaf.data.annotations.reader import AnnotationStore
    from daaf.data.annotations.show import draw_grid, drawn_by_daaf
    from daaf.data.datasets import build_dataset
    from daaf.errors import DaafError
    from daaf.utils.files import check_output_path

    check_output_path(out, folder=False)
    if out.exists() and not drawn_by_daaf(out):
        raise DaafError(
            f"--out {out} exists and is not a grid daaf drew; daaf replaces only files it made: "
            "use another --out"
        )
    with AnnotationStore(store_dir) as store:
        image_dir = build_dataset(store.dataset, root).image_dir if root is not None else None
        path = draw_grid(store, out, n=n, image_dir=image_dir, seed=seed)
    click.echo(f"wrote {path}")
