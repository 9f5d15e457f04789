"""The labeling loop: plan shards, skip complete ones, decode in workers, label in batches, write.

Every split is cut into shards of ``shard_size`` images (``plan_shards``); under torchrun the
(split, shard) list is dealt round-robin to the ranks, so each shard is labeled by exactly one
process. Batches never cross a shard boundary and shards are written atomically, so a re-run
after a crash skips the complete shards and writes the others byte for byte as an
uninterrupted run would. What the store is made with is recorded in ``store.json``; a re-run
with other settings is refused before any work (:mod:`daaf.labeling.rerun`), and
``overwrite`` builds a new store beside the old one and swaps it in only once it validates.
An image on which the labeler raises, or for which it returns a malformed result, is stored with
status 3 (labeler error) and the run goes on; a batch that raises is labeled again image by
image, so only the image at fault is lost. A labeler that fails on every image (a broken CUDA
context) stops the run after ``max_consecutive_errors`` in a row, keeping the shards written.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm import tqdm

from daaf.data.annotations import (
    DEFAULT_MASK_SIZE,
    DEFAULT_SHARD_SIZE,
    STATUS_LABELER_ERROR,
    STATUS_OK,
    STATUS_UNREADABLE,
    AnnotationWriter,
    ImageAnnotation,
    empty_annotation,
    encode_mask,
    plan_shards,
    validate_store,
)
from daaf.data.annotations.digests import file_sha256
from daaf.data.annotations.info import make_store_info
from daaf.data.annotations.schema import STORE_KIND, keypoints_in_image
from daaf.data.datasets import SPLITS, ReIDDataset, Sample
from daaf.data.images import image_problem, read_rgb
from daaf.data.loader import Loader
from daaf.errors import DaafError
from daaf.labeling.base import Labeler, LabelResult, result_problem
from daaf.labeling.rerun import (
    check_rerun,
    check_store_out,
    finish_replace,
    overwrite_dir,
    replace_store,
    start_store,
)
from daaf.utils import distributed
from daaf.utils.device import resolve_device
from daaf.utils.files import remove_dir
from daaf.utils.processes import worker_start

MAX_CONSECUTIVE_ERRORS = 50  # labeler failures in a row that stop a run: a broken device


@dataclass(frozen=True)
class ShardJob:
    split: str
    index: int
    samples: list[Sample]


def assign_shards(jobs: list, world_size: int, rank: int) -> list:
    """This rank's share of ``jobs``: every ``world_size``-th one starting at ``rank``."""
    return jobs[rank::world_size]


class _ImageFiles(Dataset):
    """Decodes the images of the planned shards (in DataLoader workers)."""

    def __init__(self, image_dir: Path, samples: list[Sample]):
        self.image_dir = image_dir
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[int, np.ndarray | None, bytes | None]:
        """The decoded image, or None if it is missing, not an image, truncated or one that
        OpenCV cannot decode; and the SHA-256 of the file (None if it is missing or not a
        regular file), taken before decoding, so that a file replaced meanwhile shows up as a
        mismatch rather than as labels of the new file under the old digest."""
        path = self.image_dir / self.samples[index].path
        digest = file_sha256(path)
        if digest is None or image_problem(path):
            return index, None, digest
        try:
            return index, read_rgb(path), digest
        except DaafError:
            return index, None, digest


def _batches(jobs: list[ShardJob], batch_size: int) -> list[list[int]]:
    """Batches of flat sample indices that never cross a shard boundary."""
    batches, start = [], 0
    for job in jobs:
        for offset in range(0, len(job.samples), batch_size):
            stop = min(offset + batch_size, len(job.samples))
            batches.append(list(range(start + offset, start + stop)))
        start += len(job.samples)
    return batches


def error_line(exc: BaseException) -> str:
    """One line saying what was raised and where: ``Type: message (file.py:line in function)``."""
    lines = str(exc).strip().splitlines()
    frame = traceback.extract_tb(exc.__traceback__)[-1]
    where = f"{Path(frame.filename).name}:{frame.lineno} in {frame.name}"
    return f"{type(exc).__name__}{': ' + lines[0] if lines else ''} ({where})"


def label_each(labeler: Labeler, images: list[np.ndarray]) -> list[LabelResult | str]:
    """``labeler.label(images)``; if the batch raises or returns another number of results,
    each image alone. A one-line error (:func:`error_line`, or what is malformed about the
    result: :func:`result_problem`) stands in place of an image's result when the labeler
    raises on it alone or returns a result that breaks the contract."""
    if not images:
        return []
    try:
        results = list(labeler.label(images))
    except DaafError:
        raise  # a user error (settings, files): every image would fail alike
    except Exception as exc:  # noqa: BLE001 - any failure of one image must not stop the run
        if len(images) == 1:
            return [error_line(exc)]
        return [label_each(labeler, [image])[0] for image in images]
    if len(results) != len(images):
        if len(images) == 1:
            return [f"malformed result: the labeler returned {len(results)} results for 1 image"]
        return [label_each(labeler, [image])[0] for image in images]
    problems = [result_problem(r, *i.shape[:2]) for r, i in zip(results, images, strict=True)]
    return [
        result if problem is None else f"malformed result: {problem}"
        for result, problem in zip(results, problems, strict=True)
    ]


def _record(
    sample: Sample, split: str, image, digest, result: LabelResult | None, mask_size
) -> ImageAnnotation:
    if image is None:
        return empty_annotation(
            image_path=sample.path,
            split=split,
            pid=sample.pid,
            camid=sample.camid,
            image_size=(0, 0),
            status=STATUS_UNREADABLE,
            mask_size=mask_size,
            image_sha256=digest,
        )
    image_size = tuple(int(v) for v in image.shape[:2])
    if result.status != STATUS_OK:
        return empty_annotation(
            image_path=sample.path,
            split=split,
            pid=sample.pid,
            camid=sample.camid,
            image_size=image_size,
            status=result.status,
            mask_size=mask_size,
            image_sha256=digest,
        )
    return ImageAnnotation(
        image_path=sample.path,
        split=split,
        pid=sample.pid,
        camid=sample.camid,
        image_size=image_size,
        mask=encode_mask(result.mask, mask_size),
        keypoints=keypoints_in_image(result.keypoints, image_size),
        person_box=np.asarray(result.box, np.float32),
        person_score=float(result.score),
        status=int(result.status),
        image_sha256=digest,
    )


def _sum_over_ranks(value: int, device: torch.device) -> int:
    where = device if device.type == "cuda" else torch.device("cpu")
    return int(distributed.sum_over_processes(torch.tensor([value]), where).item())


def _merge_over_ranks(errors: dict[str, str]) -> dict[str, str]:
    gathered = distributed.all_gather_objects(errors)
    return {path: text for part in gathered for path, text in part.items()}


def _labeler_broken(how: str, last: str, errors: dict[str, str], shards: int) -> DaafError:
    """The one line that stops a run whose labeler fails on every image (a broken CUDA context)
    before the store holds nothing but labeler errors."""
    return DaafError(
        f"the labeler failed on {how}, last {last}: {errors[last]}; stopped (the {shards} "
        "shard(s) written are kept): fix the cause and re-run to resume, with --retry-errors to "
        "label the failed images again"
    )


@dataclass
class LabelRun:
    """What a run did, over all ranks: shards written and skipped, images labeled, seconds spent,
    and the one-line error of each image the labeler raised on (status 3), by image path."""

    shards_written: int
    shards_skipped: int
    images_labeled: int
    seconds: float
    errors: dict[str, str]


@dataclass(frozen=True)
class LabelOptions:
    """How :func:`run_labeler` labels: which splits, in shards of how many images, in batches
    decoded by how many worker processes; and what it does with a store already there."""

    splits: tuple[str, ...] = SPLITS
    shard_size: int = DEFAULT_SHARD_SIZE
    batch_size: int = 8
    workers: int = 2
    mask_size: tuple[int, int] = DEFAULT_MASK_SIZE
    seed: int = 0
    progress: bool = True
    overwrite: bool = False  # build a new store beside the old one, swapped in once valid
    retry_errors: bool = False  # label again the complete shards holding a status-3 image
    max_consecutive_errors: int = MAX_CONSECUTIVE_ERRORS


@dataclass
class _Plan:
    """The store a run writes into, and its shards: all of them, and those still to label."""

    build_dir: Path
    writer: AnnotationWriter
    planned: list[ShardJob]
    todo: list[ShardJob]


def run_labeler(
    labeler: Labeler,
    dataset: ReIDDataset,
    out_dir: str | Path,
    options: LabelOptions = LabelOptions(),
    device: torch.device | str = "cpu",
) -> LabelRun:
    """Label ``options.splits`` of ``dataset`` into the store ``out_dir``; resumable,
    torchrun-aware.

    A store made with other settings (``store.json``) is refused unless ``options.overwrite``,
    which builds the new store beside it and replaces it only once complete and valid. Rank 0
    writes ``manifest.csv`` once every rank has finished and validates the store; a store that
    does not validate raises DaafError. ``options.retry_errors`` labels again the complete
    shards that hold an image the labeler raised on (status 3), e.g. after a CUDA
    out-of-memory. The run stops with DaafError once the labeler has failed on
    ``options.max_consecutive_errors`` images in a row (a broken CUDA context fails on every
    image): the shards written so far are kept and a re-run resumes. Returns this process's
    :class:`LabelRun` (the same on every rank).
    """
    start = time.perf_counter()
    device = resolve_device(device)
    torch.manual_seed(options.seed)
    store_dir = Path(out_dir)
    plan = _plan_store(labeler, dataset, store_dir, options, device)
    mine = assign_shards(plan.todo, distributed.world_size(), distributed.rank())
    errors = _label_shards(labeler, dataset, plan.writer, mine, options)
    images_labeled = _sum_over_ranks(sum(len(job.samples) for job in mine), device)
    errors = _merge_over_ranks(errors)
    _finish_store(plan, store_dir, dataset, options.overwrite)
    return LabelRun(
        shards_written=len(plan.todo),
        shards_skipped=len(plan.planned) - len(plan.todo),
        images_labeled=images_labeled,
        seconds=time.perf_counter() - start,
        errors=errors,
    )


def _plan_store(
    labeler: Labeler,
    dataset: ReIDDataset,
    store_dir: Path,
    options: LabelOptions,
    device: torch.device,
) -> _Plan:
    """Checks the store against the run's settings, starts it (beside the old one with
    ``overwrite``), moves the labeler to ``device`` and lists the shards still to label, the
    same on every rank."""
    samples_by_split = {split: dataset.split(split) for split in options.splits}
    info = make_store_info(
        dataset.name, samples_by_split, options.shard_size, options.mask_size, labeler.describe()
    )
    check_store_out(store_dir, dataset)
    if distributed.is_main_process():
        finish_replace(store_dir)  # a swap that a crash interrupted
    check_rerun(store_dir, info, options.overwrite)
    distributed.init_distributed(device)
    build_dir = overwrite_dir(store_dir) if options.overwrite else store_dir
    if distributed.is_main_process():
        start_store(build_dir, info, options.overwrite)
    labeler.to(device)
    writer = AnnotationWriter(
        build_dir, dataset.name, labeler.describe(), mask_size=options.mask_size
    )
    distributed.barrier()  # store.json is there before anyone looks for complete shards

    planned = [
        ShardJob(split, index, samples)
        for split, split_samples in samples_by_split.items()
        for index, samples in enumerate(plan_shards(split_samples, options.shard_size))
    ]
    todo = [
        job
        for job in planned
        if not writer.shard_exists(job.split, job.index)
        or (
            options.retry_errors
            and (writer.shard_status(job.split, job.index) == STATUS_LABELER_ERROR).any()
        )
    ]
    distributed.barrier()  # every rank has seen the same complete shards before anyone writes
    return _Plan(build_dir, writer, planned, todo)


def _label_shards(
    labeler: Labeler,
    dataset: ReIDDataset,
    writer: AnnotationWriter,
    mine: list[ShardJob],
    options: LabelOptions,
) -> dict[str, str]:
    """Labels this rank's shards ``mine``, writing each once all its images are labeled;
    returns the one-line error of each image the labeler raised on, by image path."""
    samples = [sample for job in mine for sample in job.samples]
    loader = Loader(  # its workers start with Ctrl-C held, and leave it to this process
        _ImageFiles(dataset.image_dir, samples),
        batch_sampler=_batches(mine, options.batch_size),
        num_workers=options.workers,
        collate_fn=list,
        worker_init_fn=functools.partial(worker_start, os.getpid()),  # none outlives a kill -9
    )
    world = distributed.world_size()
    bar = tqdm(
        total=len(samples),
        desc=f"label rank {distributed.rank()}" if world > 1 else "label",
        disable=not options.progress,
        unit="img",
    )
    shards = _ShardRecords(writer, mine, options)
    for batch in loader:
        readable = [(index, image) for index, image, _ in batch if image is not None]
        labels = label_each(labeler, [image for _, image in readable])
        results = dict(zip([index for index, _ in readable], labels, strict=True))
        for index, image, digest in batch:
            sample, result = shards.sample(index), results.get(index)
            if isinstance(result, str):
                bar.write(f"daaf label: {sample.path}: {result}", file=sys.stderr)
                if shards.count_error(sample, result):
                    bar.close()
                    raise shards.broken(f"{shards.streak} images in a row")
                result = LabelResult.empty(*image.shape[:2], status=STATUS_LABELER_ERROR)
            elif result is not None:
                shards.count_labeled()
            shards.add(sample, image, digest, result)
        bar.update(len(batch))
    bar.close()
    shards.check_not_all_failed()
    return shards.errors


class _ShardRecords:
    """The records of the shard being labeled, written once complete; and the labeler's failures
    in a row, which stop the run at ``max_consecutive_errors``."""

    def __init__(self, writer: AnnotationWriter, jobs: list[ShardJob], options: LabelOptions):
        self.writer, self.jobs, self.options = writer, iter(jobs), options
        self.job, self.first, self.records = None, 0, []
        self.errors: dict[str, str] = {}
        self.streak = self.shards_done = self.labeled = 0  # failures in a row, shards, images
        self.failed = ""

    def sample(self, index: int) -> Sample:
        """The sample at flat index ``index``, starting the next shard at its first image."""
        if self.job is None:
            self.job, self.first, self.records = next(self.jobs), index, []
        return self.job.samples[index - self.first]

    def count_error(self, sample: Sample, error: str) -> bool:
        """Records the labeler's error on ``sample``; whether the run must stop."""
        self.errors[sample.path] = error
        self.streak, self.failed = self.streak + 1, sample.path
        return self.streak >= self.options.max_consecutive_errors

    def count_labeled(self) -> None:
        self.streak, self.labeled = 0, self.labeled + 1

    def add(self, sample: Sample, image, digest, result: LabelResult | None) -> None:
        job = self.job
        self.records.append(
            _record(sample, job.split, image, digest, result, self.options.mask_size)
        )
        if len(self.records) == len(job.samples):
            self.writer.write_shard(job.split, job.index, self.records)
            self.job, self.shards_done = None, self.shards_done + 1

    def check_not_all_failed(self) -> None:
        """DaafError if every image failed, fewer than ``max_consecutive_errors`` of them."""
        if self.streak and not self.labeled:
            raise self.broken(f"all {self.streak} images it was given")

    def broken(self, how: str) -> DaafError:
        """The error that stops the run: the labeler failed on ``how``."""
        return _labeler_broken(how, self.failed, self.errors, self.shards_done)


def _finish_store(plan: _Plan, store_dir: Path, dataset: ReIDDataset, overwrite: bool) -> None:
    """Rank 0 writes the manifest and validates the store, swapping it in with ``overwrite``;
    DaafError on every rank if it does not validate."""
    problems = []
    if distributed.is_main_process():
        plan.writer.write_manifest()
        problems = validate_store(plan.build_dir, dataset)
        if overwrite and not problems:
            replace_store(plan.build_dir, store_dir)
        elif overwrite:
            remove_dir(plan.build_dir, STORE_KIND)  # the old store stays as it was
    distributed.barrier()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        after = (
            f"the old store {store_dir} is unchanged"
            if overwrite
            else f"`daaf annotations validate {store_dir}` lists every problem"
        )
        raise DaafError(f"the labeled store does not validate: {problems[0]}{more}; {after}")
