"""Commands `daaf label` (person masks and 17 keypoints for every image of a dataset) and
`daaf install-backend` (the optional detectron2 and mmpose labelers)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from daaf.utils.options import (
    ERRORS_IN_A_ROW,
    SHARD_SIZE,
    WORKING_SIZE,
    batch_size_option,
    dataset_option,
    device_option,
    out_dir_option,
    root_option,
    seed_option,
    workers_option,
)

OPTIONAL_BACKENDS = ("detectron2", "mmpose")  # installed by `daaf install-backend`
BACKENDS = ("torchvision", *OPTIONAL_BACKENDS)


def _splits(ctx, param, value: str) -> tuple[str, ...]:
    from daaf.data.datasets import SPLITS

    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in SPLITS]
    if unknown or not names:
        raise click.BadParameter(
            f"{value!r}: expected a comma-separated subset of {','.join(SPLITS)}"
        )
    return names


@click.command("label")
@dataset_option("Registered dataset name, e.g. market1501.", name="dataset_name")
@root_option("Folder holding the dataset.")
@out_dir_option("Annotation store folder.", required=True)
@click.option("--backend", type=click.Choice(BACKENDS), default="torchvision", show_default=True)
@click.option("--splits", default="train,query,gallery", show_default=True, callback=_splits)
@device_option
@batch_size_option(8)
@workers_option("Image decoding processes.")
@click.option(
    "--shard-size",
    type=SHARD_SIZE,
    default=None,
    help="Images per shard [default: 4096].",
)
@click.option(
    "--weights-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder with the weight files.",
)
@click.option(
    "--weights",
    type=click.Choice(("pretrained", "random")),
    default="pretrained",
    show_default=True,
    help="random: real architectures, random weights.",
)
@click.option(
    "--min-size",
    type=WORKING_SIZE,
    default=256,
    show_default=True,
    help="Working size: short side a crop is resized to before detection.",
)
@seed_option("Seed of random weights.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace a store made with other settings, once the new one is complete.",
)
@click.option(
    "--retry-errors",
    is_flag=True,
    help="Label again the shards holding images the labeler raised on (status 3).",
)
@click.option(
    "--max-consecutive-errors",
    type=ERRORS_IN_A_ROW,
    default=None,
    help="Stop once the labeler fails on this many images in a row [default: 50].",
)
def label(
    dataset_name,
    root,
    out_dir,
    backend,
    splits,
    device,
    batch_size,
    workers,
    shard_size,
    weights_dir,
    weights,
    min_size,
    seed,
    overwrite,
    retry_errors,
    max_consecutive_errors,
) -> None:
    """Label a dataset with person masks and 17 keypoints (COCO detectors) into annotation shards.

    Resumable (complete shards are skipped; --retry-errors labels again those holding an image
    the labeler raised on) and torchrun-aware (shards are shared out by rank).
    A re-run with other settings than the store's store.json is refused (use another --out or
    --overwrite); the finished store is validated before success is reported. A second run
    into the same --out while this one runs is refused.
    """
    from daaf.data.annotations import DEFAULT_SHARD_SIZE
    from daaf.data.datasets import build_dataset
    from daaf.labeling.driver import MAX_CONSECUTIVE_ERRORS, LabelOptions, run_labeler
    from daaf.labeling.report import format_report, store_report, write_report
    from daaf.utils import distributed
    from daaf.utils.device import resolve_device

    _check_out(out_dir, overwrite)
    dataset = build_dataset(dataset_name, root)
    labeler = _build_labeler(backend, weights, weights_dir, min_size, seed)
    options = LabelOptions(
        splits=splits,
        shard_size=shard_size or DEFAULT_SHARD_SIZE,
        batch_size=batch_size,
        workers=workers,
        seed=seed,
        overwrite=overwrite,
        retry_errors=retry_errors,
        max_consecutive_errors=max_consecutive_errors or MAX_CONSECUTIVE_ERRORS,
    )
    with _store_lock(out_dir):
        run = run_labeler(labeler, dataset, out_dir, options, resolve_device(device))
        if distributed.is_main_process():
            report = store_report(out_dir, run, labeler.describe())
            path = write_report(report, out_dir)
            click.echo(format_report(report))
            click.echo(f"wrote {path}")


def _check_out(out_dir: str, overwrite: bool) -> None:
    """DaafError unless ``out_dir`` (and with ``overwrite`` the folder the new store is built in,
    beside it, then renamed into its place) can be written."""
    from daaf.labeling.rerun import overwrite_dir
    from daaf.utils.files import check_output_path

    check_output_path(out_dir)
    if overwrite:
        check_output_path(overwrite_dir(Path(out_dir)))


def _build_labeler(backend: str, weights: str, weights_dir: str | None, min_size: int, seed: int):
    """The labeler of ``backend``; with random weights, a warning that its labels are not real."""
    from daaf.labeling.backends import build_labeler

    labeler = build_labeler(
        backend, weights=weights, weights_dir=weights_dir, min_size=min_size, seed=seed
    )
    if weights == "random":
        click.echo(
            "daaf label: --weights random: these annotations are NOT real labels (smoke test only)",
            err=True,
        )
    return labeler


@contextlib.contextmanager
def _store_lock(out_dir: str) -> Iterator[None]:
    """The store folder locked against a second run; the process group (torchrun) torn down
    after, whatever happened."""
    from daaf.utils import distributed
    from daaf.utils.lock import folder_lock

    try:
        with folder_lock(out_dir):
            yield
    finally:
        distributed.cleanup_distributed()


@click.command("install-backend")
@click.argument("backend", type=click.Choice(OPTIONAL_BACKENDS))
@click.option(
    "--source",
    type=click.Path(file_okay=False, exists=True),
    help="detectron2: build from this checkout instead of its git repository.",
)
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    help="mmpose: keep mmcv's build here, so that a stopped build resumes.",
)
def install_backend(backend: str, source: str | None, workdir: str | None) -> None:
    """Install the detectron2 or mmpose labeler into this Python environment, against its torch.

    Runs daaf/labeling/install_backend.sh, shipped with daaf, with this environment's Python.
    detectron2 is built from source; mmpose needs mmcv compiled from source, the longer build.
    """
    import os
    import subprocess
    import sys
    from importlib import resources

    script = resources.files("daaf.labeling") / "install_backend.sh"
    args = [backend]
    if source:
        args += ["--source", source]
    if workdir:
        args += ["--workdir", workdir]
    env = {**os.environ, "PYTHON": sys.executable}
    code = subprocess.run(["bash", str(script), *args], env=env).returncode
    if code:
        sys.exit(code)
