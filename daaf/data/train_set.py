"""The training dataset: images joined with their annotation-store masks and keypoints by path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from daaf.data.annotations import STATUS_OK, AnnotationStore
from daaf.data.config import DataConfig
from daaf.data.datasets import Sample
from daaf.data.heatmaps import render_heatmaps
from daaf.data.transforms import Sample3, train_transform
from daaf.errors import DaafError

MAX_LISTED = 5


def read_rgb(path: Path) -> np.ndarray:
    """uint8 (H, W, 3) RGB; DaafError naming the file when it is missing or not an image."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DaafError(f"{path}: missing or not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def open_store_for(samples: list[Sample], store_dir: str | Path, dataset: str) -> AnnotationStore:
    """Open the store and check it belongs to ``dataset`` and covers every sample."""
    store = AnnotationStore(store_dir)
    if store.dataset != dataset:
        raise DaafError(
            f"annotation store {store_dir} was made for dataset {store.dataset!r}, not {dataset!r}"
        )
    missing = store.missing([s.path for s in samples])
    if missing:
        listed = ", ".join(missing[:MAX_LISTED])
        raise DaafError(
            f"annotation store {store_dir} does not cover the training split: {len(missing)} "
            f"of {len(samples)} images missing, first: {listed}"
        )
    return store


class TrainSet(Dataset):
    """Item ``i``: the contract's batch entries for ``samples[i]``.

    Returns a dict with ``images`` (3, H, W) normalised, ``pids`` (), ``masks`` (1, H, W) in
    [0, 1], ``heatmaps`` (17, H, W) and ``valid`` () (annotation status ok). Without a store
    (base networks) masks and heatmaps are zeros and ``valid`` is False. Augmentation draws
    from a generator seeded by (seed, epoch, index), so it is the same whatever the workers.
    """

    def __init__(
        self,
        samples: list[Sample],
        image_dir: Path,
        cfg: DataConfig,
        store: AnnotationStore | None = None,
        seed: int = 0,
    ) -> None:
        self.samples, self.image_dir, self.cfg, self.store = samples, Path(image_dir), cfg, store
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def _annotation(
        self, sample: Sample, height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Mask resized to the original image size, keypoints in original pixels, valid flag."""
        if self.store is None:
            keypoints = np.zeros((17, 3), np.float32)
            return np.zeros((height, width), np.float32), keypoints, False
        record = self.store.get(sample.path)
        mask = cv2.resize(record.mask, (width, height), interpolation=cv2.INTER_LINEAR)
        return mask.astype(np.float32) / 255.0, record.keypoints, record.status == STATUS_OK

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        image = read_rgb(self.image_dir / sample.path)
        mask, keypoints, valid = self._annotation(sample, *image.shape[:2])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        tensor, item = train_transform(Sample3(image, mask, keypoints), self.cfg, rng)
        heatmaps = render_heatmaps(
            item.keypoints,
            (self.cfg.height, self.cfg.width),
            self.cfg.heatmap_sigma,
            self.cfg.keypoint_score_threshold,
        )
        return {
            "images": tensor,
            "pids": torch.tensor(sample.pid, dtype=torch.long),
            "masks": torch.from_numpy(np.ascontiguousarray(item.mask))[None],
            "heatmaps": torch.from_numpy(heatmaps),
            "valid": torch.tensor(valid),
        }
