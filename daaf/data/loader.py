"""DataLoaders for training and evaluation: lean uint8 batches, pinned for asynchronous copies,
and a worker's DaafError (an unreadable image) raised as its own one-line message."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from daaf.errors import DaafError
from daaf.utils.processes import starting_workers, worker_start

# Batches per worker kept ready: uint8 batches are small (64 x 256 x 128 DAAF samples: 8.4 MB),
# so a deeper queue absorbs slow images cheaply.
PREFETCH_FACTOR = 4


def worker_message(exc: DaafError) -> str:
    """The error's own message: DataLoader re-raises a worker's exception with the worker's
    traceback as its message, whose last line is ``module.Class: message``."""
    text = str(exc)
    marker = f"\n{type(exc).__module__}.{type(exc).__qualname__}: "
    if not text.startswith("Caught ") or marker not in text:
        return text
    return text.rpartition(marker)[2].strip()


class Loader(DataLoader):
    """A DataLoader whose workers' DaafErrors come out as the error alone, no worker traceback,
    and whose workers start with Ctrl-C held (:func:`~daaf.utils.processes.starting_workers`)."""

    def __iter__(self) -> Iterator[Any]:
        batches = None
        try:
            with starting_workers():
                batches = super().__iter__()
        except BaseException:  # a Ctrl-C held while they started: stop them now, not at exit,
            if hasattr(batches, "_shutdown_workers"):  # where torch reports them killed
                batches._shutdown_workers()
            raise
        try:
            yield from batches
        except DaafError as exc:
            raise DaafError(worker_message(exc)) from None


def build_loader(
    dataset: Dataset, device: torch.device, workers: int, persistent: bool = False, **kwargs: Any
) -> Loader:
    """Pinned memory on CUDA (the copies to the device are ``non_blocking``); with workers, a
    prefetch queue, workers that die with this process and leave Ctrl-C to it and, when
    ``persistent``, workers kept from one pass to the next."""
    if workers > 0:
        kwargs.update(
            prefetch_factor=PREFETCH_FACTOR,
            persistent_workers=persistent,
            worker_init_fn=functools.partial(worker_start, os.getpid()),
        )
    return Loader(dataset, num_workers=workers, pin_memory=device.type == "cuda", **kwargs)
