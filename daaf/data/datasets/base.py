"""What a dataset loader returns, and the registry that maps dataset names to loaders.

A loader is a function ``load(root: Path, **options) -> ReIDDataset``. It parses the folder
layout of one dataset, applies that dataset's rules (junk dropped, cameras 0-based, training
ids relabelled by sorting) and raises :class:`~daaf.errors.DaafError` naming the folder it
expected and what it found when the layout is wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from daaf.errors import DaafError

SPLITS: tuple[str, ...] = ("train", "query", "gallery")
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp"})
# How the annotation store keeps a sample's ids (daaf.data.annotations.schema.DATASET_DTYPES):
# a dataset whose ids do not fit is refused when it is loaded, before any image is labelled.
ID_DTYPES: dict[str, str] = {"pid": "<i4", "camid": "<i2"}
_ID_RANGES = {name: (int(np.iinfo(t).min), int(np.iinfo(t).max)) for name, t in ID_DTYPES.items()}
SHOWN_SKIPPED = 3  # file names shown per reason when skipped files are reported

logger = logging.getLogger(__name__)


def id_problem(pid: int, camid: int) -> str | None:
    """What is wrong with a sample's ids for the annotation store (:data:`ID_DTYPES`), or None."""
    for name, value in (("pid", pid), ("camid", camid)):
        low, high = _ID_RANGES[name]
        if not low <= value <= high:
            return (
                f"{name} {value} is out of range: the annotation store keeps {name}s as "
                f"{np.dtype(ID_DTYPES[name])} ({low} to {high}); rename the file"
            )
    return None


def check_ids(path: str | Path, pid: int, camid: int) -> None:
    """DaafError naming ``path`` when its pid or camid does not fit :data:`ID_DTYPES`."""
    problem = id_problem(pid, camid)
    if problem is not None:
        raise DaafError(f"{path}: {problem}")


def describe_skipped(skipped: dict[str, list[str]], examples: int = SHOWN_SKIPPED) -> list[str]:
    """Per reason: how many files were skipped and the first ``examples`` of them."""
    return [
        f"{reason}: {len(paths)} (e.g. {', '.join(paths[:examples])}"
        + (", ...)" if len(paths) > examples else ")")
        for reason, paths in skipped.items()
    ]


@dataclass(frozen=True)
class Sample:
    """One image: ``path`` is relative to :attr:`ReIDDataset.image_dir` (POSIX separators)."""

    path: str
    pid: int
    camid: int


@dataclass
class ReIDDataset:
    """Three lists of samples. ``image_dir / sample.path`` is the image file.

    ``train`` pids are relabelled to ``0..P-1`` (sorted original ids); ``query`` and
    ``gallery`` keep the dataset's own ids so that the evaluation protocol can compare them.
    ``skipped`` counts files that looked like images but whose names did not parse, with a few
    examples, so that the CLI can report them.
    """

    name: str
    image_dir: Path
    train: list[Sample]
    query: list[Sample]
    gallery: list[Sample]
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for sample in self.train + self.query + self.gallery:
            problem = id_problem(sample.pid, sample.camid)
            if problem is not None:
                raise DaafError(f"{self.image_dir / sample.path}: {problem}")

    def split(self, name: str) -> list[Sample]:
        if name not in SPLITS:
            raise DaafError(f"unknown split {name!r}; known: {', '.join(SPLITS)}")
        return getattr(self, name)

    @property
    def num_train_pids(self) -> int:
        return len({s.pid for s in self.train})

    def summary(self) -> dict[str, dict[str, int]]:
        """Per split: number of images, identities and cameras (the `datasets check --json` form)."""
        return {
            split: {
                "images": len(samples),
                "ids": len({s.pid for s in samples}),
                "cameras": len({s.camid for s in samples}),
            }
            for split, samples in ((name, self.split(name)) for name in SPLITS)
        }


Loader = Callable[..., ReIDDataset]


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    loader: Loader
    layout: str  # the folder layout it expects, shown by `daaf datasets list`


DATASETS: dict[str, DatasetEntry] = {}


def register_dataset(name: str, layout: str) -> Callable[[Loader], Loader]:
    """Decorator: register ``load(root, **options) -> ReIDDataset`` under ``name``."""

    def wrap(loader: Loader) -> Loader:
        if name in DATASETS:
            raise ValueError(f"dataset {name!r} is registered twice")
        DATASETS[name] = DatasetEntry(name, loader, layout)
        return loader

    return wrap


def build_dataset(
    name: str, root: str | Path, *, warn_skipped: bool = True, **options
) -> ReIDDataset:
    """Load dataset ``name`` from ``root``; unknown names get an error listing the known ones.
    Files the loader skipped are logged as one warning unless ``warn_skipped`` is False (for
    callers that report them themselves)."""
    if name not in DATASETS:
        raise DaafError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    root = Path(root)
    if not root.is_dir():
        raise DaafError(f"dataset root {root} does not exist or is not a folder")
    dataset = DATASETS[name].loader(root, **options)
    if dataset.skipped and warn_skipped:
        total = sum(len(paths) for paths in dataset.skipped.values())
        logger.warning(
            f"warning: {name}: skipped {total} file(s) under {dataset.image_dir}: "
            + "; ".join(describe_skipped(dataset.skipped))
            + f" (`daaf datasets check {name} --root {root}` lists them)"
        )
    return dataset
