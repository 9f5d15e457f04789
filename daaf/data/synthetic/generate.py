"""``daaf synth``: a Market-1501-layout dataset of synthetic pedestrians and its exact annotations.

Half of the identities train, half test. A test identity gives one query per camera it
appears in and the rest of its images to the gallery; distractors (pid 0) and junk (pid -1)
go to the gallery folder as in Market-1501. Every image is drawn from its own random stream,
``SeedSequence([seed, image index])``, so the bytes do not depend on the number of workers.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from daaf import __version__
from daaf.data.annotations import (
    DEFAULT_SHARD_SIZE,
    AnnotationWriter,
    ImageAnnotation,
    encode_mask,
    plan_shards,
)
from daaf.data.datasets import ReIDDataset, build_dataset
from daaf.data.synthetic.render import Camera, Identity, render

MARKET_DIR = "Market-1501-v15.09.15"
GENERATOR_VERSION = 1
JPEG_QUALITY = 95
CREATED_UTC = "1970-01-01T00:00:00Z"  # fixed, so that the same seed gives the same files
IDENTITY_STREAM, CAMERA_STREAM, DISTRACTOR_STREAM = 1 << 20, 2 << 20, 3 << 20


@dataclass(frozen=True)
class Job:
    """One image to draw: where it goes and who is in it (pid 0: a distractor, -1: junk)."""

    index: int
    folder: str
    pid: int
    camera: int  # 1-based, as in Market-1501 names
    identity_key: int  # which identity appearance to draw (distractors have their own)

    @property
    def name(self) -> str:
        pid = f"{self.pid:04d}" if self.pid >= 0 else "-1"
        return f"{self.folder}/{pid}_c{self.camera}s1_{self.index:06d}_01.jpg"


def plan(identities: int, cameras: int, per_identity: int, seed: int) -> list[Job]:
    """Every image of the dataset, in a fixed order."""
    rng = np.random.default_rng([seed, 0])
    jobs: list[Job] = []
    train_ids = identities // 2
    for pid in range(1, identities + 1):
        visited = (
            np.sort(rng.choice(cameras, size=int(rng.integers(2, cameras + 1)), replace=False)) + 1
        )
        cams = np.concatenate(
            [visited, rng.choice(visited, size=max(per_identity - len(visited), 0))]
        )[:per_identity]
        queried: set[int] = set()
        for cam in cams.tolist():
            if pid <= train_ids:
                folder = "bounding_box_train"
            elif cam not in queried:
                folder, _ = "query", queried.add(cam)
            else:
                folder = "bounding_box_test"
            jobs.append(Job(len(jobs), folder, pid, cam, pid))
    for i in range(max(2, identities // 10)):  # distractors: people who are in no query
        jobs.append(
            Job(
                len(jobs),
                "bounding_box_test",
                0,
                int(rng.integers(1, cameras + 1)),
                DISTRACTOR_STREAM + i,
            )
        )
    for _ in range(max(2, identities // 20)):  # junk: background only
        jobs.append(Job(len(jobs), "bounding_box_test", -1, int(rng.integers(1, cameras + 1)), -1))
    return jobs


def _draw(args: tuple[Job, int, int, float]) -> tuple[str, bytes, np.ndarray, np.ndarray]:
    """Render one job: (relative name, JPEG bytes, uint8 mask, keypoints)."""
    job, seed, identities, occlusion = args
    rng = np.random.default_rng([seed, job.index])
    camera = Camera.draw(np.random.default_rng([seed, CAMERA_STREAM + job.camera]))
    # Clutter may wear another identity's colours, so a colour is no giveaway of who is there.
    other = int(rng.integers(1, identities))
    other += other >= job.pid > 0  # skip the person in the image
    others = Identity.draw(np.random.default_rng([seed, IDENTITY_STREAM + other])).colors()
    if job.identity_key < 0:
        identity = Identity.draw(rng)
        image, mask, keypoints = render(identity, camera, rng, others, occlusion=1.0)
        image = render_background_only(image, mask, rng)
    else:
        identity = Identity.draw(np.random.default_rng([seed, IDENTITY_STREAM + job.identity_key]))
        image, mask, keypoints = render(identity, camera, rng, others, occlusion)
    ok, jpeg = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    assert ok
    return job.name, jpeg.tobytes(), (mask * 255).round().astype(np.uint8), keypoints


def render_background_only(
    image: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Junk images: the person painted out, as Market-1501's junk boxes hold no full person."""
    hole = (mask > 0).astype(np.uint8)
    return cv2.inpaint(image, cv2.dilate(hole, np.ones((3, 3), np.uint8)), 3, cv2.INPAINT_TELEA)


def generate_dataset(
    out_dir: str | Path,
    identities: int = 100,
    cameras: int = 6,
    images_per_identity: int = 10,
    seed: int = 0,
    occlusion: float = 0.1,
    workers: int | None = None,
    progress: bool = True,
) -> ReIDDataset:
    """Write the images and the annotation store ``out_dir/annotations``; returns the dataset."""
    out_dir = Path(out_dir)
    if identities < 4 or cameras < 2 or images_per_identity < 2:
        raise ValueError("synth needs at least 4 identities, 2 cameras and 2 images per identity")
    jobs = plan(identities, cameras, images_per_identity, seed)
    base = out_dir / MARKET_DIR
    for folder in ("bounding_box_train", "query", "bounding_box_test"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    workers = min(4, multiprocessing.cpu_count()) if workers is None else workers
    truth: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    args = [(job, seed, identities, occlusion) for job in jobs]
    with multiprocessing.get_context("fork").Pool(workers) if workers > 1 else _Serial() as pool:
        for name, jpeg, mask, keypoints in tqdm(
            pool.imap(_draw, args, chunksize=16),
            total=len(jobs),
            desc="synth",
            disable=not progress,
        ):
            (base / name).write_bytes(jpeg)
            truth[name] = (mask, keypoints)
    dataset = build_dataset("synthetic", out_dir)
    write_ground_truth(dataset, truth, out_dir / "annotations", seed)
    return dataset


def write_ground_truth(
    dataset: ReIDDataset,
    truth: dict[str, tuple[np.ndarray, np.ndarray]],
    store_dir: Path,
    seed: int,
) -> None:
    """The exact masks and keypoints in the annotation store, in the loader's order."""
    labeler = {"backend": "synthetic-ground-truth", "weights": "exact", "generator_version": GENERATOR_VERSION,
               "seed": seed, "daaf_version": __version__}  # fmt: skip
    writer = AnnotationWriter(store_dir, "synthetic", labeler, created_utc=CREATED_UTC)
    for split in ("train", "query", "gallery"):
        for index, samples in enumerate(plan_shards(dataset.split(split), DEFAULT_SHARD_SIZE)):
            writer.write_shard(split, index, [_record(s, split, *truth[s.path]) for s in samples])
    writer.write_manifest()


def _record(sample, split: str, mask: np.ndarray, keypoints: np.ndarray) -> ImageAnnotation:
    ys, xs = np.nonzero(mask >= 128)
    box = (
        np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
        if len(xs)
        else np.full(4, np.nan, np.float32)
    )
    return ImageAnnotation(
        image_path=sample.path, split=split, pid=sample.pid, camid=sample.camid, image_size=mask.shape,
        mask=encode_mask(mask.astype(np.float32) / 255), keypoints=keypoints, person_box=box,
        person_score=1.0, status=0,
    )  # fmt: skip


class _Serial:
    """``Pool``'s imap in this process (workers <= 1)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def imap(self, fn, items, chunksize=1):
        return map(fn, items)
