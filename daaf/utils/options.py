"""The command-line options several commands share: their value types, so that each is checked
once, the same way, before any work (click prints one line and exits 2 on a bad value), and
their decorators (``--model``, ``--dataset``, ``--root``, ``--out``, ``--batch-size``,
``--workers``, ``--seed``, ``--device``), each command giving its own help where it differs.

This module imports click alone: the command modules import it at ``daaf --help`` time.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

# Device names a command or train.device accepts; resolve_device (daaf.utils.device) turns them
# into a torch.device and checks that CUDA is there.
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"
DEVICE_NAMES = "auto, cpu, cuda or cuda:N"

# Every count, size and repeat option has a bound, with what it bounds: past it a value would
# only exhaust memory or time, or change nothing. click refuses a value outside in one line.
SEED = click.IntRange(0, 2**32 - 1)  # numpy's legacy seeds and train.seed are 32-bit
# 65,536 images of 256x128 are 25 GB of float32 input alone, before any activation
BATCH_SIZE = click.IntRange(1, 65536)
# Processes, each with its own torch (as data.workers): past the cores of one machine they queue
MAX_WORKERS = 256
WORKERS = click.IntRange(0, MAX_WORKERS)
PROCESSES = click.IntRange(1, MAX_WORKERS)  # drawing processes of daaf synth: at least one

# daaf evaluate and compare
RANK_LISTS = click.IntRange(0, 1000)  # picture files to look through; per_query.csv lists all
# The resamples are kept for the plot and the percentiles (24 bytes each); the interval's Monte
# Carlo error shrinks as 1/sqrt(resamples): 10^6 give a tenth of the default 10^4's
BOOTSTRAP = click.IntRange(1, 10**6)
# daaf search: each query's rank list is one picture of its TOP images in a row, 1,000 of which
# make it 80,000 pixels wide
TOP = click.IntRange(1, 1000)

# daaf visualize: the N images go through the network in one batch with the graph kept for
# Grad-CAM: a ResNet-50 keeps 130 MB per 256x128 image, 8 GB for 64
PICTURE_IMAGES = click.IntRange(1, 64)
# No daaf embedding is longer (model.trinet_dims <= 8192, a ResNet's 2048); more means all, as 0
COMPONENTS = click.IntRange(0, 8192)
# JITTER x JITTER whole Grad-CAM passes; layer2-4 stride layer1's grid by 8 at most, so 8 shifts
# a side already meet every phase of it
JITTER = click.IntRange(1, 8)
# daaf annotations show: one PNG of 8 images a row at 256x128; 1,024 make it 33,276 x 1,052 px
GRID_IMAGES = click.IntRange(1, 1024)

# daaf label
# a shard is held in memory until written, 32 KB of mask an image: 2 GB for 65,536
SHARD_SIZE = click.IntRange(1, 65536)
# torchvision's own default working size: the ROI heads see a person at a fixed resolution
# whatever the working size, so past it only the cost grows
WORKING_SIZE = click.IntRange(32, 800)
ERRORS_IN_A_ROW = click.IntRange(1, 10**6)  # images: more than a dataset holds (MSMT17: 126,441)

# daaf synth: the generator's minimums; at most more than the largest benchmark, MSMT17 (4,101
# identities, 15 cameras, 31 images a person on average), whose plan is built before drawing
SYNTH_IDENTITIES = click.IntRange(4, 10_000)
SYNTH_CAMERAS = click.IntRange(2, 32)
SYNTH_IMAGES_PER_IDENTITY = click.IntRange(4, 100)
PROBABILITY = click.FloatRange(0, 1)
# daaf demo: its P x K batches take 8 identities of the training half; 1,000 (ten times the
# default) is a benchmark, for daaf synth and daaf train, not a tour
DEMO_IDENTITIES = click.IntRange(16, 1000)
DEMO_EPOCHS = click.IntRange(1, 120)  # the paper's whole BoT schedule


class DeviceName(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; anything else is refused while parsing."""

    name = "device"

    def convert(self, value, param, ctx) -> str:
        if isinstance(value, str) and re.fullmatch(DEVICE_PATTERN, value):
            return value
        self.fail(f"{value!r} is not a device: use {DEVICE_NAMES}", param, ctx)


DEVICE = DeviceName()
device_option = click.option(
    "--device", type=DEVICE, default="auto", show_default=True, help=f"{DEVICE_NAMES}."
)


Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]
DATASET_HELP = "Dataset name (see `daaf datasets list`)."


def model_option(help: str) -> Decorator:
    """``--model`` into ``model_path``: a model file or folder that exists."""
    return click.option(
        "--model", "model_path", required=True, type=click.Path(exists=True), help=help
    )


def dataset_option(help: str = DATASET_HELP, name: str = "dataset") -> Decorator:
    """``--dataset`` into ``name``: a registered dataset's name (checked when it is built)."""
    return click.option("--dataset", name, required=True, help=help)


def root_option(
    help: str, *, required: bool = True, file_okay: bool = False, path_type: type | None = None
) -> Decorator:
    """``--root``: the folder a dataset lies in (with ``file_okay``, also a file, refused later
    with a message naming the dataset)."""
    return click.option(
        "--root",
        required=required,
        type=click.Path(file_okay=file_okay, path_type=path_type),
        help=help,
    )


def out_dir_option(
    help: str | None = None, *, default: str | None = None, required: bool = False
) -> Decorator:
    """``--out`` into ``out_dir``: the folder a command writes (``default`` shown in --help)."""
    return click.option(
        "--out",
        "out_dir",
        default=default,
        show_default=default is not None,
        required=required,
        type=click.Path(file_okay=False),
        help=help,
    )


def out_file_option(help: str, name: str = "out_path", path_type: type | None = None) -> Decorator:
    """``--out`` into ``name``: the one file a command writes."""
    return click.option(
        "--out",
        name,
        required=True,
        type=click.Path(dir_okay=False, path_type=path_type),
        help=help,
    )


def batch_size_option(default: int) -> Decorator:
    """``--batch-size``: images a batch, within :data:`BATCH_SIZE`."""
    return click.option("--batch-size", type=BATCH_SIZE, default=default, show_default=True)


def workers_option(help: str | None = None) -> Decorator:
    """``--workers``: image loading processes beside the main one (0: none), 2 by default."""
    return click.option("--workers", type=WORKERS, default=2, show_default=True, help=help)


def seed_option(help: str | None = None) -> Decorator:
    """``--seed``: a 32-bit seed, 0 by default."""
    return click.option("--seed", type=SEED, default=0, show_default=True, help=help)
