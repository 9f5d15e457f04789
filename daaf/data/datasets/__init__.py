"""Dataset registry: ``build_dataset(name, root)`` returns train / query / gallery samples."""

from daaf.data.datasets.base import (
    DATASETS,
    IMAGE_SUFFIXES,
    SPLITS,
    ReIDDataset,
    Sample,
    build_dataset,
    register_dataset,
)

__all__ = [
    "DATASETS",
    "IMAGE_SUFFIXES",
    "SPLITS",
    "ReIDDataset",
    "Sample",
    "build_dataset",
    "register_dataset",
]

# Importing a loader module registers its datasets.
from daaf.data.datasets import market1501  # noqa: E402, F401
