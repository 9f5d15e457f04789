"""Value types of the command-line options several commands share, so that each is checked once,
the same way, before any work (click prints one line and exits 2 on a bad value).

This module imports click alone: the command modules import it at ``daaf --help`` time.
"""

from __future__ import annotations

import re

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
