"""Command group `daaf datasets`: list the supported datasets, check one on disk."""

from __future__ import annotations

import json
from pathlib import Path

import click

from daaf.utils.options import root_option


@click.group("datasets")
def datasets() -> None:
    """List supported datasets and check one on disk."""


@datasets.command("list")
def list_command() -> None:
    """Every dataset with the folder layout it expects under --root."""
    from daaf.data.datasets import DATASETS

    width = max(len(name) for name in DATASETS) + 2
    click.echo(f"{'NAME':<{width}}LAYOUT UNDER --root (ROOT may also be the dataset folder itself)")
    for name in sorted(DATASETS):
        first, *rest = DATASETS[name].layout.splitlines()
        click.echo(f"{name:<{width}}{first}")
        for line in rest:
            click.echo(f"{'':<{width}}{line}")


def format_summary(summary: dict[str, dict[str, int]]) -> str:
    """The per-split table of images, identities and cameras."""
    lines = [f"{'split':<9}{'images':>8}{'ids':>8}{'cameras':>9}"]
    for split, counts in summary.items():
        lines.append(f"{split:<9}{counts['images']:>8}{counts['ids']:>8}{counts['cameras']:>9}")
    return "\n".join(lines)


def format_skipped(skipped: dict[str, list[str]]) -> str:
    """One line per reason: how many files were skipped and the first few of them."""
    from daaf.data.datasets.base import describe_skipped

    total = sum(len(paths) for paths in skipped.values())
    lines = [f"skipped {total} file{'s' if total != 1 else ''}:"]
    return "\n".join(lines + [f"  {line}" for line in describe_skipped(skipped)])


@datasets.command("check")
@click.argument("name")
@root_option("Folder holding the dataset.", file_okay=True, path_type=Path)
@click.option("--json", "as_json", is_flag=True, help="Print only the per-split counts as JSON.")
@click.option(
    "--decode",
    is_flag=True,
    help="Also decode every image; list the unreadable ones (missing, not an image, truncated).",
)
def check_command(name: str, root: Path, as_json: bool, decode: bool) -> None:
    """Parse dataset NAME under --root; print images, identities and cameras per split.

    With --decode, exit status 1 when any image does not decode completely.
    """
    from daaf.data.datasets import build_dataset
    from daaf.data.images import dataset_image_paths, find_unreadable

    dataset = build_dataset(name, root, warn_skipped=False)  # listed below
    summary = dataset.summary()
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"{name}: {dataset.image_dir}")
        click.echo(format_summary(summary))
    if dataset.skipped:
        click.echo(format_skipped(dataset.skipped), err=as_json)
    if decode:
        paths = dataset_image_paths(dataset)
        unreadable = find_unreadable(paths, progress=not as_json)
        click.echo(f"decoded {len(paths)} images: {len(unreadable)} unreadable", err=as_json)
        for path, reason in unreadable:
            click.echo(f"  {path}: {reason}", err=as_json)
        if unreadable:
            raise SystemExit(1)
