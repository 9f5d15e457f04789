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
from daaf.data.images import read_rgb
from daaf.data.transforms import Sample3, train_transform
from daaf.errors import DaafError

MAX_LISTED = 5


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
    """Item ``i``: what a worker hands over for ``samples[i]``, the least the device needs.

    A dict with ``images`` uint8 (H, W, 3) RGB after the geometric augmentation, ``pids`` (),
    ``valid`` () (annotation status ok; False without a store) and ``erasing`` int32 (4,), the
    random-erasing rectangle; with ``masks`` uint8 (1, H, W) the person mask and with
    ``keypoints`` float32 (17, 3) the keypoints in the augmented frame (both need the store).
    ``daaf.data.device_batch.prepare_batch`` makes the rest. Augmentation draws from a generator
    seeded by (seed, epoch, index), so it is the same whatever the workers.
    """

    def __init__(
        self,
        samples: list[Sample],
        image_dir: Path,
        cfg: DataConfig,
        store: AnnotationStore | None = None,
        seed: int = 0,
        *,
        masks: bool = False,
        keypoints: bool = False,
    ) -> None:
        if (masks or keypoints) and store is None:
            raise ValueError("masks and keypoints come from an annotation store: pass one")
        self.samples, self.image_dir, self.cfg, self.store = samples, Path(image_dir), cfg, store
        self.masks, self.keypoints, self.seed = masks, keypoints, seed
        # In shared memory, so that persistent workers see set_epoch.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def _item(self, sample: Sample) -> tuple[Sample3, bool]:
        """The image with the mask (resized to it) and keypoints it needs, and the valid flag."""
        image = read_rgb(self.image_dir / sample.path)
        if self.store is None:
            return Sample3(image, None, None), False
        paths = [sample.path]  # the store reads only what is asked (a mask costs a decode)
        mask = keypoints = None
        if self.masks:
            size = (image.shape[1], image.shape[0])
            mask = cv2.resize(self.store.masks(paths)[0], size, interpolation=cv2.INTER_LINEAR)
        if self.keypoints:
            keypoints = self.store.keypoints(paths)[0]
        return Sample3(image, mask, keypoints), self.store.status(paths)[0] == STATUS_OK

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        item, valid = self._item(sample)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        item, erasing = train_transform(item, self.cfg, rng)
        out = {
            "images": torch.from_numpy(item.image),
            # numpy, not torch.tensor: a tensor from Python values costs a worker ~30 us each
            "pids": torch.from_numpy(np.array(sample.pid, np.int64)),
            "valid": torch.from_numpy(np.array(valid)),
            "erasing": torch.from_numpy(np.array(erasing, np.int32)),
        }
        if item.mask is not None:
            out["masks"] = torch.from_numpy(np.ascontiguousarray(item.mask))[None]
        if item.keypoints is not None:
            out["keypoints"] = torch.from_numpy(np.ascontiguousarray(item.keypoints, np.float32))
        return out
