"""The labeling loop: plan shards, skip complete ones, decode in workers, label in batches, write.

Every split is cut into shards of ``shard_size`` images (``plan_shards``); under torchrun the
(split, shard) list is dealt round-robin to the ranks, so each shard is labeled by exactly one
process. Batches never cross a shard boundary and shards are written atomically, so a re-run
after a crash skips the complete shards and writes the others byte for byte as an
uninterrupted run would.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from daaf.data.annotations import (
    DEFAULT_MASK_SIZE,
    DEFAULT_SHARD_SIZE,
    AnnotationWriter,
    ImageAnnotation,
    empty_annotation,
    encode_mask,
    plan_shards,
)
from daaf.data.datasets import SPLITS, ReIDDataset, Sample
from daaf.errors import DaafError
from daaf.labeling.base import STATUS_OK, STATUS_UNREADABLE, Labeler, LabelResult
from daaf.utils import distributed


@dataclass(frozen=True)
class ShardJob:
    split: str
    index: int
    samples: list[Sample]


def assign_shards(jobs: list, world_size: int, rank: int) -> list:
    """This rank's share of ``jobs``: every ``world_size``-th one starting at ``rank``."""
    return jobs[rank::world_size]


def read_rgb(path: Path) -> np.ndarray | None:
    """uint8 (H, W, 3) RGB image, or None if the file is missing or cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class _ImageFiles(Dataset):
    """Decodes the images of the planned shards (in DataLoader workers)."""

    def __init__(self, image_dir: Path, samples: list[Sample]):
        self.image_dir = image_dir
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None]:
        return index, read_rgb(self.image_dir / self.samples[index].path)


def _batches(jobs: list[ShardJob], batch_size: int) -> list[list[int]]:
    """Batches of flat sample indices that never cross a shard boundary."""
    batches, start = [], 0
    for job in jobs:
        for offset in range(0, len(job.samples), batch_size):
            stop = min(offset + batch_size, len(job.samples))
            batches.append(list(range(start + offset, start + stop)))
        start += len(job.samples)
    return batches


def _record(
    sample: Sample, split: str, image, result: LabelResult | None, mask_size
) -> ImageAnnotation:
    if image is None:
        return empty_annotation(
            image_path=sample.path, split=split, pid=sample.pid, camid=sample.camid,
            image_size=(0, 0), status=STATUS_UNREADABLE, mask_size=mask_size,
        )  # fmt: skip
    image_size = tuple(int(v) for v in image.shape[:2])
    if result.status != STATUS_OK:
        return empty_annotation(
            image_path=sample.path, split=split, pid=sample.pid, camid=sample.camid,
            image_size=image_size, status=result.status, mask_size=mask_size,
        )  # fmt: skip
    return ImageAnnotation(
        image_path=sample.path,
        split=split,
        pid=sample.pid,
        camid=sample.camid,
        image_size=image_size,
        mask=encode_mask(result.mask, mask_size),
        keypoints=np.asarray(result.keypoints, np.float32),
        person_box=np.asarray(result.box, np.float32),
        person_score=float(result.score),
        status=int(result.status),
    )


def check_same_labeler(shard_path: Path, labeler: dict) -> None:
    """A resumed run must use the labeler settings of the shards already there."""
    with h5py.File(shard_path, "r") as f:
        stored = json.loads(f.attrs["labeler"])
    expected = json.loads(json.dumps(labeler))
    changed = sorted(key for key, value in expected.items() if stored.get(key) != value)
    if changed:
        raise DaafError(
            f"{shard_path} was written with other labeler settings ({', '.join(changed)} differ); "
            f"use a new --out, or delete the store to relabel it"
        )


def _sum_over_ranks(value: int, device: torch.device) -> int:
    if not dist.is_initialized():
        return value
    total = torch.tensor([value], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(total)
    return int(total.item())


@dataclass
class LabelRun:
    """What a run did, over all ranks: shards written and skipped, images labeled, seconds spent."""

    shards_written: int
    shards_skipped: int
    images_labeled: int
    seconds: float


def run_labeler(
    labeler: Labeler,
    dataset: ReIDDataset,
    out_dir: str | Path,
    splits: tuple[str, ...] = SPLITS,
    shard_size: int = DEFAULT_SHARD_SIZE,
    batch_size: int = 8,
    workers: int = 2,
    device: torch.device | str = "cpu",
    mask_size: tuple[int, int] = DEFAULT_MASK_SIZE,
    seed: int = 0,
    progress: bool = True,
) -> LabelRun:
    """Label ``splits`` of ``dataset`` into the store ``out_dir``; resumable, torchrun-aware.

    Rank 0 writes ``manifest.csv`` once every rank has finished. Returns this process's
    :class:`LabelRun` (the same on every rank).
    """
    start = time.perf_counter()
    device = torch.device(device)
    torch.manual_seed(seed)
    distributed.init_distributed(device)
    world, rank = distributed.world_size(), distributed.rank()
    labeler.to(device)
    writer = AnnotationWriter(out_dir, dataset.name, labeler.describe(), mask_size=mask_size)

    planned = [
        ShardJob(split, index, samples)
        for split in splits
        for index, samples in enumerate(plan_shards(dataset.split(split), shard_size))
    ]
    complete = [writer.shard_exists(job.split, job.index) for job in planned]
    todo = [job for job, done in zip(planned, complete, strict=True) if not done]
    if any(complete):
        done = planned[complete.index(True)]
        check_same_labeler(writer.shard_path(done.split, done.index), labeler.describe())
    distributed.barrier()  # every rank has seen the same complete shards before anyone writes
    mine = assign_shards(todo, world, rank)

    samples = [sample for job in mine for sample in job.samples]
    loader = DataLoader(
        _ImageFiles(dataset.image_dir, samples),
        batch_sampler=_batches(mine, batch_size),
        num_workers=workers,
        collate_fn=list,
    )
    bar = tqdm(
        total=len(samples),
        desc=f"label rank {rank}" if world > 1 else "label",
        disable=not progress,
        unit="img",
    )
    jobs, job, records, first = iter(mine), None, [], 0
    for batch in loader:
        readable = [(index, image) for index, image in batch if image is not None]
        labels = labeler.label([image for _, image in readable]) if readable else []
        results = dict(zip([index for index, _ in readable], labels, strict=True))
        for index, image in batch:
            if job is None:
                job, first, records = next(jobs), index, []
            records.append(
                _record(job.samples[index - first], job.split, image, results.get(index), mask_size)
            )
            if len(records) == len(job.samples):
                writer.write_shard(job.split, job.index, records)
                job = None
        bar.update(len(batch))
    bar.close()

    images_labeled = _sum_over_ranks(len(samples), device)
    if distributed.is_main_process():
        writer.write_manifest()
    distributed.barrier()
    return LabelRun(
        shards_written=len(todo),
        shards_skipped=len(planned) - len(todo),
        images_labeled=images_labeled,
        seconds=time.perf_counter() - start,
    )
