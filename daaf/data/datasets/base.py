"""What a dataset loader returns, and the registry that maps dataset names to loaders.

A loader is a function ``load(root: Path, **options) -> ReIDDataset``. It parses the folder
layout of one dataset, applies that dataset's rules (junk dropped, cameras 0-based, training
ids relabelled by sorting) and raises :class:`~daaf.errors.DaafError` naming the folder it
expected and what it found when the layout is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from daaf.errors import DaafError

SPLITS: tuple[str, ...] = ("train", "query", "gallery")
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


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


def build_dataset(name: str, root: str | Path, **options) -> ReIDDataset:
    """Load dataset ``name`` from ``root``; unknown names get an error listing the known ones."""
    if name not in DATASETS:
        raise DaafError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
    root = Path(root)
    if not root.is_dir():
        raise DaafError(f"dataset root {root} does not exist or is not a folder")
    return DATASETS[name].loader(root, **options)
