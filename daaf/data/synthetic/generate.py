"""``daaf synth``: a Market-1501-layout dataset of synthetic pedestrians and its exact annotations.

A random half of the identities trains, the other half tests. A test identity gives one
query per camera it appears in and the rest of its images to the gallery (at least two
images per camera, so every query has a positive in another camera); distractors (pid 0)
and junk (pid -1, background only) go to ``bounding_box_test`` as in Market-1501.

Reproducibility: image ``i`` is drawn from its own stream ``SeedSequence([seed, 0, i])``,
identity ``p`` from ``[seed, 1, p]``, camera ``c`` from ``[seed, 2, c]`` and the plan from
``[seed, 3]``, so the bytes depend on neither the number of workers nor their order. The
store's ``created_utc`` is fixed to :data:`CREATED_UTC` for the same reason. A preset's
variation (``presets.py``) comes from a stream of its own, ``[seed, 4, i]``, so the default
preset, whose variation is neutral, draws exactly the original images.

Every preset but the default also writes ``conditions.csv``: per image, what it shows (cut-off
crop, occluders, other people, ...), so that a study can report such queries apart.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from daaf import __version__
from daaf.data.annotations import AnnotationWriter, ImageAnnotation, encode_mask, plan_shards
from daaf.data.annotations.schema import STORE_KIND
from daaf.data.datasets import ReIDDataset, Sample, build_dataset
from daaf.data.synthetic.identity import Clothing, Identity
from daaf.data.synthetic.presets import PRESETS, Preset, preset_named
from daaf.data.synthetic.render import Conditions, Variation, render_person, render_scene
from daaf.data.synthetic.scene import HEIGHT, WIDTH, Camera
from daaf.errors import DaafError
from daaf.utils.files import claim_dir
from daaf.utils.processes import start_pool

MARKET_DIR = "Market-1501-v15.09.15"
FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
GENERATOR_VERSION = 2
JPEG_QUALITY = 95
CREATED_UTC = "1970-01-01T00:00:00Z"  # fixed, so that the same seed gives the same store
STORE_DATASET = "synthetic"  # the registry name of this layout (configs/demo.yaml trains on it)
IMAGE_STREAM, IDENTITY_STREAM, CAMERA_STREAM, PLAN_STREAM, VARIATION_STREAM = 0, 1, 2, 3, 4
DISTRACTOR_KEY = 1 << 24  # appearance keys of distractors start here (no real pid is that big)
STRANGER_KEY = 1 << 25  # and those of strangers, the other people of a preset's crowd
CROWD = 4  # strangers offered to each image (render_person picks how many appear)
CONDITIONS_NAME = "conditions.csv"
FOREIGN_PEOPLE = 3  # other identities whose garments an image's clutter may wear


def stream(seed: int, kind: int, index: int = 0) -> np.random.Generator:
    """The random stream of one image, identity, camera or the plan."""
    return np.random.default_rng(np.random.SeedSequence([seed, kind, index]))


@functools.lru_cache(maxsize=4096)
def identity_of(seed: int, key: int) -> Identity:
    """The appearance of pid ``key`` (or of a distractor, ``key >= DISTRACTOR_KEY``)."""
    return Identity.draw(stream(seed, IDENTITY_STREAM, key))


@functools.lru_cache(maxsize=64)
def camera_of(seed: int, camera: int) -> Camera:
    return Camera.draw(stream(seed, CAMERA_STREAM, camera))


@dataclass(frozen=True)
class Job:
    """One image to draw: where it goes and who is in it (pid 0: a distractor, -1: junk)."""

    index: int
    folder: str
    pid: int
    camera: int  # 1-based, as in Market-1501 names
    seq: int
    frame: int
    det: int
    key: int  # appearance key: the pid, a distractor key, or -1 (no person)

    @property
    def path(self) -> str:
        """``folder/{pid:04d}_c{cam}s{seq}_{frame:06d}_{det:02d}.jpg`` (junk: ``-1_c...``)."""
        pid = f"{self.pid:04d}" if self.pid >= 0 else "-1"
        return f"{self.folder}/{pid}_c{self.camera}s{self.seq}_{self.frame:06d}_{self.det:02d}.jpg"


def _spread(rng: np.random.Generator, total: int, bins: int) -> np.ndarray:
    """``total`` images over ``bins`` cameras, at least two each (total >= 2 * bins)."""
    return 2 + rng.multinomial(total - 2 * bins, np.full(bins, 1.0 / bins))


def plan(identities: int, cameras: int, per_identity: int, seed: int) -> list[Job]:
    """Every image of the dataset, in a fixed order (the image index is the position)."""
    rng = stream(seed, PLAN_STREAM)
    test = set((rng.permutation(identities)[: identities - identities // 2] + 1).tolist())
    shots: list[tuple[str, int, int, int]] = []  # folder, pid, camera, appearance key
    for pid in range(1, identities + 1):
        visited = int(rng.integers(2, min(cameras, per_identity // 2) + 1))
        chosen = np.sort(rng.choice(cameras, size=visited, replace=False)) + 1
        for camera, count in zip(
            chosen.tolist(), _spread(rng, per_identity, visited).tolist(), strict=True
        ):
            for shot in range(count):
                folder = (
                    FOLDERS["train"]
                    if pid not in test
                    else FOLDERS["query" if shot == 0 else "gallery"]
                )
                shots.append((folder, pid, camera, pid))
    gallery = sum(folder == FOLDERS["gallery"] for folder, *_ in shots)
    for i in range(max(2, gallery // 6)):  # people in no query, kept as negatives
        shots.append((FOLDERS["gallery"], 0, int(rng.integers(1, cameras + 1)), DISTRACTOR_KEY + i))
    for _ in range(max(2, gallery // 20)):  # false detections, dropped by the loader
        shots.append((FOLDERS["gallery"], -1, int(rng.integers(1, cameras + 1)), -1))
    # Frame numbers grow with the index, so names never collide; sequence and detection vary.
    return [
        Job(
            index,
            folder,
            pid,
            camera,
            int(rng.integers(1, 7)),
            25 * index + int(rng.integers(25)),
            int(rng.integers(1, 9)),
            key,
        )
        for index, (folder, pid, camera, key) in enumerate(shots)
    ]


def draw_job(
    job: Job, seed: int, identities: int, occlusion: float, preset: Preset = PRESETS["default"]
) -> tuple:
    """Render one job: (image uint8 RGB, mask float32 (128, 64), keypoints, Conditions); the
    last three are None for junk (no person)."""
    rng = stream(seed, IMAGE_STREAM, job.index)
    others = [p for p in rng.choice(identities, FOREIGN_PEOPLE, replace=False) + 1 if p != job.key]
    foreign: list[Clothing] = [g for p in others for g in identity_of(seed, int(p)).garments()]
    camera = camera_of(seed, job.camera)
    if job.key < 0:
        return render_scene(camera, rng, foreign), None, None, None
    variation = stream(seed, VARIATION_STREAM, job.index)
    crowd = tuple(
        identity_of(seed, STRANGER_KEY + int(k)) for k in variation.integers(1 << 20, size=CROWD)
    )
    return render_person(
        identity_of(seed, job.key),
        camera,
        rng,
        foreign,
        occlusion,
        variation=Variation(preset, variation, crowd),
    )


def _write_job(
    args: tuple[Job, Path, int, int, float, Preset],
) -> tuple[int, np.ndarray | None, np.ndarray | None, Conditions | None, bytes]:
    """Draw a job and write its JPEG (fixed quality); returns (index, uint8 mask, keypoints,
    conditions, SHA-256 of the JPEG's bytes)."""
    job, image_dir, seed, identities, occlusion, preset = args
    image, mask, keypoints, conditions = draw_job(job, seed, identities, occlusion, preset)
    ok, jpeg = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
    )
    if not ok:
        raise DaafError(f"{image_dir / job.path}: JPEG encoding failed")
    data = jpeg.tobytes()
    (image_dir / job.path).write_bytes(data)
    # The rendered coverage is a multiple of 1/255, so uint8 holds it exactly.
    mask = None if mask is None else np.rint(mask * 255).astype(np.uint8)
    return job.index, mask, keypoints, conditions, hashlib.sha256(data).digest()


@dataclass(frozen=True)
class SynthSpec:
    """What :func:`generate_dataset` draws; the same spec gives the same bytes.

    Args:
        identities: people (a random half trains); at least 4.
        cameras: at least 2; every identity appears in 2 to ``min(cameras, K // 2)`` of them.
        images_per_identity: K, at least 4.
        occlusion: probability that an object occluder hides part of the person (default: the
            preset's, 0.1 for the default preset).
        preset: a name of :data:`~daaf.data.synthetic.presets.PRESETS`.
    """

    identities: int = 100
    cameras: int = 6
    images_per_identity: int = 10
    seed: int = 0
    occlusion: float | None = None
    preset: str = "default"


def generate_dataset(
    out_dir: str | Path,
    spec: SynthSpec = SynthSpec(),
    workers: int | None = None,
    progress: bool = True,
) -> ReIDDataset:
    """Write ``out_dir/Market-1501-v15.09.15`` and its annotation store ``out_dir/annotations``.

    Args:
        spec: what to draw.
        workers: drawing processes (default ``min(4, cpu_count)``); the output does not depend on it.

    Returns:
        The dataset as the ``market1501`` loader reads it.
    """
    out_dir = Path(out_dir)
    chosen = preset_named(spec.preset)
    occlusion = chosen.occlusion if spec.occlusion is None else spec.occlusion
    _check_spec(spec, occlusion)
    image_dir = _empty_image_dir(out_dir)
    jobs = plan(spec.identities, spec.cameras, spec.images_per_identity, spec.seed)
    workers = min(4, multiprocessing.cpu_count()) if workers is None else max(1, workers)
    args = [(job, image_dir, spec.seed, spec.identities, occlusion, chosen) for job in jobs]
    masks, keypoints, conditions, digests = _draw_jobs(args, workers, progress)
    dataset = build_dataset("market1501", out_dir)
    index_of = {job.path: job.index for job in jobs}
    labeler = {} if chosen.legacy else {"preset": chosen.name, "occlusion": occlusion}
    drawn = (masks, keypoints, digests)
    store_dir = out_dir / "annotations"
    write_ground_truth(dataset, drawn, index_of, store_dir, spec.seed, progress, labeler)
    if not chosen.legacy:
        write_conditions(dataset, conditions, keypoints, index_of, out_dir / CONDITIONS_NAME)
    return dataset


def _check_spec(spec: SynthSpec, occlusion: float) -> None:
    """DaafError if ``spec`` is below the generator's minimums or ``occlusion`` no probability."""
    if spec.identities < 4 or spec.cameras < 2 or spec.images_per_identity < 4:
        raise DaafError(
            f"synth needs at least 4 identities, 2 cameras and 4 images per identity; got "
            f"{spec.identities}, {spec.cameras}, {spec.images_per_identity}"
        )
    if not 0.0 <= occlusion <= 1.0:
        raise DaafError(f"--occlusion is a probability in [0, 1], got {occlusion}")


def _empty_image_dir(out_dir: Path) -> Path:
    """The dataset's image folder with its three split folders; DaafError if it holds anything."""
    image_dir = out_dir / MARKET_DIR
    if image_dir.exists() and any(image_dir.iterdir()):
        raise DaafError(f"{image_dir} already exists and is not empty; pick a new --out folder")
    for folder in FOLDERS.values():
        (image_dir / folder).mkdir(parents=True, exist_ok=True)
    return image_dir


def _draw_jobs(
    args: list[tuple], workers: int, progress: bool
) -> tuple[np.ndarray, np.ndarray, list[Conditions | None], list[bytes | None]]:
    """Draws and writes every job of ``args`` (see :func:`_write_job`) in ``workers`` processes;
    returns the uint8 masks, keypoints, conditions and JPEG digests by image index."""
    masks = np.zeros((len(args), HEIGHT, WIDTH), np.uint8)
    keypoints = np.zeros((len(args), 17, 3), np.float32)
    conditions: list[Conditions | None] = [None] * len(args)
    digests: list[bytes | None] = [None] * len(args)
    with start_pool(workers) if workers > 1 else nullcontext() as pool:
        results = pool.imap_unordered(_write_job, args, 32) if pool else map(_write_job, args)
        for index, mask, points, shown, digest in tqdm(
            results, total=len(args), desc="synth", disable=not progress
        ):
            digests[index] = digest
            if mask is not None:
                masks[index], keypoints[index], conditions[index] = mask, points, shown
    return masks, keypoints, conditions, digests


def ground_truth_record(
    sample: Sample, split: str, mask: np.ndarray, keypoints: np.ndarray, digest: bytes | None = None
) -> ImageAnnotation:
    """The exact annotation of one image: mask, keypoints, the mask's box, score 1, status 0, and
    the SHA-256 of the JPEG it was drawn into."""
    ys, xs = np.nonzero(mask > 0)
    box = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] if len(xs) else [np.nan] * 4
    return ImageAnnotation(
        image_path=sample.path,
        split=split,
        pid=sample.pid,
        camid=sample.camid,
        image_size=mask.shape,
        mask=encode_mask(mask / np.float32(255)),
        keypoints=keypoints,
        person_box=np.asarray(box, np.float32),
        person_score=1.0,
        status=0,
        image_sha256=digest,
    )


def write_ground_truth(
    dataset: ReIDDataset,
    drawn: tuple[np.ndarray, np.ndarray, list[bytes | None]],
    index_of: dict[str, int],
    store_dir: Path,
    seed: int,
    progress: bool = False,
    settings: dict | None = None,
) -> None:
    """The store: one record per image the loader returns, shards in the loader's order, from
    ``drawn`` (masks, keypoints and JPEG SHA-256s by image index); ``settings`` join the
    labeler's record (a preset's name and occlusion)."""
    masks, keypoints, digests = drawn
    labeler = {
        "backend": "synthetic-ground-truth",
        "weights": "exact",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "daaf_version": __version__,
        **(settings or {}),
    }
    claim_dir(store_dir, STORE_KIND)  # daaf label --overwrite may replace it
    writer = AnnotationWriter(store_dir, STORE_DATASET, labeler, created_utc=CREATED_UTC)
    shards = [
        (split, i, samples)
        for split in FOLDERS
        for i, samples in enumerate(plan_shards(dataset.split(split), 4096))
    ]
    for split, i, samples in tqdm(shards, desc="annotations", disable=not progress):
        rows = [index_of[s.path] for s in samples]
        writer.write_shard(
            split,
            i,
            [
                ground_truth_record(s, split, masks[r], keypoints[r], digests[r])
                for s, r in zip(samples, rows, strict=True)
            ],
        )
    writer.write_manifest()


CONDITIONS_COLUMNS = (
    "image_path",
    "split",
    "pid",
    "camid",
    "occluded",
    "misaligned",
    "cut_head",
    "cut_feet",
    "people_in_front",
    "people_behind",
    "occluder",
    "carrying",
    "crouching",
    "occluded_fraction",
    "visible_keypoints",
    "zoom",
    "aspect",
    "offset_x",
    "offset_y",
    "view",
)


def write_conditions(
    dataset: ReIDDataset,
    conditions: list[Conditions | None],
    keypoints: np.ndarray,
    index_of: dict[str, int],
    path: Path,
) -> None:
    """``conditions.csv``: one row per image the loader returns, in the store's order (booleans 0/1)."""
    rows = []
    for split in FOLDERS:
        for sample in dataset.split(split):
            row = index_of[sample.path]
            shown = conditions[row]
            values = {
                **vars(shown),
                "occluded": shown.occluded,
                "misaligned": shown.misaligned,
                "image_path": sample.path,
                "split": split,
                "pid": sample.pid,
                "camid": sample.camid,
                "visible_keypoints": int((keypoints[row, :, 2] > 0).sum()),
            }
            rows.append({key: _cell(values[key]) for key in CONDITIONS_COLUMNS})
    frame = pd.DataFrame(rows, columns=list(CONDITIONS_COLUMNS))
    frame.to_csv(path, index=False, float_format="%.4f")


def _cell(value):
    """A CSV cell: booleans as 0/1."""
    return int(value) if isinstance(value, bool) else value
