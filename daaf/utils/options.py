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

SEED = click.IntRange(0, 2**32 - 1)  # numpy's legacy seeds and train.seed are 32-bit
BATCH_SIZE = click.IntRange(1, 65536)
WORKERS = click.IntRange(0, 256)


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
