"""``DataConfig``: the dataset, annotation store, input size and augmentation a run trains on.

Each field carries its allowed values (see :mod:`daaf.utils.config_fields`); the run's config
(:mod:`daaf.config`) composes it as its ``data`` section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from daaf.utils.config_fields import setting

MAX_SIDE = 2048  # pixels: person crops are 256 x 128 in the paper; 2048 bounds what is allocated


def known_dataset(name: str) -> None:
    """ValueError unless ``name`` is a registered dataset (``daaf datasets list``)."""
    from daaf.data.datasets import DATASETS

    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")


@dataclass
class DataConfig:
    dataset: str = setting("market1501", check=known_dataset)
    root: str = ""
    annotations: str = ""  # annotation store folder (daaf label --out, or DIR/annotations)
    height: int = setting(256, min=1, max=MAX_SIDE)
    width: int = setting(128, min=1, max=MAX_SIDE)
    # TriNet resizes to a larger size and random-crops (height, width); null = resize directly.
    pre_crop_size: list[int] | None = setting(
        None, length=2, min=1, max=MAX_SIDE, min_field=("height", "width")
    )
    # BoT: pad by this many pixels, then random-crop back (0: none)
    pad: int = setting(10, min=0, max=MAX_SIDE)
    flip_prob: float = setting(0.5, min=0, max=1)
    erasing_prob: float = setting(0.5, min=0, max=1)
    pixel_mean: list[float] = setting(factory=lambda: [0.485, 0.456, 0.406], length=3)
    pixel_std: list[float] = setting(factory=lambda: [0.229, 0.224, 0.225], length=3, above=0)
    num_identities: int = setting(16, min=1, max=4096)  # P of the P x K sampler
    num_instances: int = setting(4, min=1, max=1024)  # K of the P x K sampler
    workers: int = setting(4, min=0, max=256)
    # HAB runs: decode the training masks once into a memory-mapped temporary file (N x H x W
    # bytes) instead of inflating one from the store per sample (daaf.data.mask_cache).
    cache_masks: bool = True
    # Gaussian sigma of the PAB's keypoint targets, in input pixels: CPN's target (sigma 1.37 at
    # output stride 4 for 256-high crops) at 256x128; scale it with data.height (docs/paper.md).
    # A tiny sigma squared underflows float32 (NaN peaks).
    heatmap_sigma: float = setting(5.5, min=0.1, max=MAX_SIDE)
    # Keypoints scored below get no heatmap peak; auto: the labeler's own threshold (its shards).
    keypoint_score_threshold: Literal["auto"] | float = setting("auto", min=0, max=1)
    test_batch_size: int = setting(128, min=1, max=65536)
