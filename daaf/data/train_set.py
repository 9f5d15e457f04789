"""The training dataset: images joined with their annotation-store masks and keypoints by path."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from daaf.data.annotations import STATUS_OK, AnnotationStore, validate_store
from daaf.data.annotations.info import read_store_info, relabel_command
from daaf.data.annotations.schema import STATUS_NAMES
from daaf.data.annotations.validate import check_images, identity_mismatches
from daaf.data.config import DataConfig
from daaf.data.datasets import Sample
from daaf.data.images import read_rgb
from daaf.data.mask_cache import MaskCache
from daaf.data.transforms import Augmentation, Sample3, draw_augmentations, train_transform
from daaf.errors import DaafError
from daaf.utils import distributed as dist_utils

logger = logging.getLogger(__name__)

MAX_LISTED = 5


def open_store_for(samples: list[Sample], store_dir: str | Path, dataset: str) -> AnnotationStore:
    """Open the store and check it belongs to ``dataset``, covers every sample and labels some.

    Its training shards are validated first (:func:`validate_store`: whole, a schema this daaf
    reads, content matching ``content_sha256``, manifest rows matching the shards, keypoints
    inside the image), which reads every shard once, as decoding their masks does.
    :class:`TrainSet` checks the images themselves against the store. A store giving an
    image another pid or camid than the dataset, or labeling no training image, is refused;
    images without labels (status not 0) are named in a warning.
    """
    problems = validate_store(store_dir, splits=("train",))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise DaafError(
            f"annotation store {store_dir} is not fit to train on: {problems[0]}{more}; "
            f"`daaf annotations validate {store_dir}` lists every problem"
        )
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
    _check_identities(store, samples)
    _check_labels(store, samples)
    return store


def _check_identities(store: AnnotationStore, samples: list[Sample]) -> None:
    """Refuse a store that gives training images another pid or camid than the dataset does:
    its labels were made for other images (rows or paths swapped)."""
    wrong = identity_mismatches(store.manifest, samples)
    if wrong:
        raise DaafError(
            f"annotation store {store.store_dir} gives {len(wrong)} of {len(samples)} training "
            f"images another pid or camid than the dataset does, first: {wrong[0]}; "
            "its labels belong to other images: relabel the dataset"
        )


def check_store_images(store: AnnotationStore, samples: list[Sample], image_dir: Path) -> None:
    """Refuse a store whose rows were labelled from other files than ``image_dir`` holds for
    ``samples`` (their SHA-256 differs from the store's: :func:`check_images`), naming the first
    few and the count; warn once when labels carry no digest and so cannot be checked."""
    try:
        info = read_store_info(store.store_dir)
    except DaafError:  # open_store_for has said so; the command still names the settings it can
        info = None
    relabel = relabel_command(store.store_dir, image_dir, store.dataset, store.labeler, info)
    problem, note = check_images(store.manifest, samples, image_dir, relabel)
    if problem:
        raise DaafError(
            f"annotation store {store.store_dir} was labelled from other images: {problem}"
        )
    if note and dist_utils.is_main_process():
        logger.warning("WARNING: annotation store %s: %s", store.store_dir, note)


def _check_labels(store: AnnotationStore, samples: list[Sample]) -> None:
    """Refuse a store without one labeled training image; warn, once, about unlabeled ones."""
    status = store.status([s.path for s in samples])
    unlabeled = np.flatnonzero(status != STATUS_OK)
    if not len(unlabeled):
        return
    counts = ", ".join(
        f"{n} {STATUS_NAMES.get(int(code), f'status {code}')}"
        for code, n in zip(*np.unique(status[unlabeled], return_counts=True), strict=True)
    )
    what = (
        f"annotation store {store.store_dir}: {len(unlabeled)} of {len(samples)} training "
        f"images have no labels ({counts}), first: {samples[unlabeled[0]].path}"
    )
    if len(unlabeled) == len(samples):
        raise DaafError(f"{what}; nothing to train the HAB/PAB on: relabel the dataset")
    if dist_utils.is_main_process():
        logger.warning("WARNING: %s; the HAB/PAB losses leave them out", what)


class TrainSet(Dataset):
    """Item ``i``: what a worker hands over for ``samples[i]``, the least the device needs.

    A dict with ``images`` uint8 (H, W, 3) RGB after the geometric augmentation, ``pids`` (),
    ``valid`` () (annotation status ok; False without a store) and ``erasing`` int32 (4,), the
    random-erasing rectangle; with ``masks`` uint8 (1, H, W) the person mask and with
    ``keypoints`` float32 (17, 3) the keypoints in the augmented frame (both need the store).
    ``daaf.data.device_batch.prepare_batch`` makes the rest. An epoch's augmentation is drawn
    at once from a generator seeded by (seed, epoch), so it is the same whatever the workers.
    A store is first checked against the images (:func:`check_store_images`): labels are used
    only with the files they were made from.
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
        self._paths = [self.image_dir / sample.path for sample in samples]
        # The store's small arrays, read once: a worker then looks up a row, not a path.
        self._valid = np.zeros(len(samples), bool)
        self._keypoints = self._masks = None
        if store is not None:
            check_store_images(store, samples, self.image_dir)
            names = [sample.path for sample in samples]
            self._valid = store.status(names) == STATUS_OK
            self._keypoints = store.keypoints(names) if keypoints else None
            self._masks = MaskCache(store, names) if masks and cfg.cache_masks else None
        # In shared memory, so that persistent workers see set_epoch.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._drawn: tuple[int, list[Augmentation]] | None = None  # (epoch, its draws)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def augmentations(self, epoch: int) -> list[Augmentation]:
        """Every sample's draws for ``epoch``, made once per epoch in each process. The
        generator is a child (spawn key 1) of (seed, epoch), apart from the sampler's."""
        if self._drawn is None or self._drawn[0] != epoch:
            seeds = np.random.SeedSequence([self.seed, epoch], spawn_key=(1,))
            self._drawn = (
                epoch,
                draw_augmentations(len(self), self.cfg, np.random.default_rng(seeds)),
            )
        return self._drawn[1]

    def __len__(self) -> int:
        return len(self.samples)

    def _item(self, index: int) -> tuple[Sample3, bool]:
        """The image with the mask (at the store's size) and keypoints it needs, and the valid
        flag."""
        image = read_rgb(self._paths[index])
        mask = None
        if self._masks is not None:
            mask = self._masks[index]
        elif self.masks:
            mask = self.store.masks([self.samples[index].path])[0]
        keypoints = None if self._keypoints is None else self._keypoints[index]
        return Sample3(image, mask, keypoints), bool(self._valid[index])

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.item(index, self.augmentations(self.epoch)[index])

    def item(self, index: int, augmentation: Augmentation) -> dict[str, torch.Tensor]:
        """What a worker hands over for sample ``index`` augmented by ``augmentation``."""
        item, valid = self._item(index)
        item = train_transform(item, self.cfg, augmentation)
        out = {
            "images": torch.from_numpy(item.image),
            # numpy, not torch.tensor: building a tensor from Python values is slow in a worker
            "pids": torch.from_numpy(np.array(self.samples[index].pid, np.int64)),
            "valid": torch.from_numpy(np.array(valid)),
            "erasing": torch.from_numpy(np.array(augmentation.erasing, np.int32)),
        }
        if item.mask is not None:
            out["masks"] = torch.from_numpy(item.mask[None])
        if item.keypoints is not None:
            out["keypoints"] = torch.from_numpy(item.keypoints)
        return out
