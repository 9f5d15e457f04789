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
from daaf.data.datasets import (  # noqa: E402, F401
    cuhk03,
    custom,
    dukemtmc,
    market1501,
    msmt17,
    occluded_duke,
    partial,
)
