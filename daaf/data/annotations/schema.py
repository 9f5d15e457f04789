"""Annotation store schema v2: constants, the per-image record and helpers that build records.

The schema is a public contract (docs/annotations.md): other projects read the shards with h5py
alone. Anything that changes what a reader sees needs a new ``SCHEMA_VERSION``. Version 2 adds
``image_sha256``, the SHA-256 of the image file each row was labelled from; stores of version 1
are still read (their labels cannot be checked against the images).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from daaf.data.datasets.base import ID_DTYPES, SPLITS, Sample
from daaf.data.keypoints import NUM_KEYPOINTS

SCHEMA_NAME = "daaf.annotations"
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)  # versions this daaf reads; it writes only SCHEMA_VERSION
DEFAULT_MASK_SIZE: tuple[int, int] = (256, 128)
DEFAULT_SHARD_SIZE = 4096

STATUS_OK, STATUS_NO_PERSON, STATUS_UNREADABLE, STATUS_LABELER_ERROR = 0, 1, 2, 3
STATUS_NAMES: dict[int, str] = {
    STATUS_OK: "ok",
    STATUS_NO_PERSON: "no person",
    STATUS_UNREADABLE: "unreadable",
    STATUS_LABELER_ERROR: "labeler error",
}

# Per-image datasets of a shard, in the order their bytes enter ``content_sha256``.
DATASET_DTYPES: dict[str, str] = {
    "image_path": "str",
    "pid": ID_DTYPES["pid"],  # loaders refuse ids that do not fit (daaf.data.datasets.base)
    "camid": ID_DTYPES["camid"],
    "image_size": "<u2",
    "mask": "u1",
    "keypoints": "<f4",
    "person_box": "<f4",
    "person_score": "<f4",
    "status": "u1",
    "image_sha256": "u1",  # (N, 32): SHA-256 of the image file's bytes; schema v2
}
DIGEST_SIZE = 32
NO_DIGEST = bytes(DIGEST_SIZE)  # stored where no image bytes were read: the file was missing

MANIFEST_NAME = "manifest.csv"
STORE_KIND = "annotation store"  # the kind of daaf's marker in the stores it makes
MANIFEST_COLUMNS: tuple[str, ...] = (
    "image_path",
    "split",
    "pid",
    "camid",
    "shard",
    "row",
    "status",
    "person_score",
    "mean_keypoint_score",
    "mask_area",
    "image_sha256",
)
SHARD_PATTERN = re.compile(r"^(?P<split>train|query|gallery)-(?P<index>\d{5})\.h5$")


def dataset_names(version: int) -> list[str]:
    """The per-image datasets of a shard of schema ``version``, in ``content_sha256`` order."""
    return [name for name in DATASET_DTYPES if version >= 2 or name != "image_sha256"]


def manifest_columns(version: int) -> list[str]:
    """The columns of a manifest of schema ``version``."""
    return [name for name in MANIFEST_COLUMNS if version >= 2 or name != "image_sha256"]


def shard_file_name(split: str, shard_index: int) -> str:
    """``<split>-<shard:05d>.h5``, e.g. ``train-00003.h5``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return f"{split}-{shard_index:05d}.h5"


@dataclass
class ImageAnnotation:
    """Everything the store holds about one image (one row of one shard).

    ``mask`` is uint8 (H, W) at the store's ``mask_size`` (foreground probability x 255);
    ``keypoints`` float32 (17, 3): x, y in original pixels and a score in [0, 1], with
    ``NaN, NaN, 0`` where a keypoint was not found (a found one lies inside the image: see
    :func:`keypoints_off_image`); ``person_box`` float32 (4,) x1 y1 x2 y2 in original pixels,
    NaN if none; ``status`` 0 ok, 1 no person found, 2 image unreadable, 3 the labeler raised.
    ``image_sha256``: the SHA-256 (32 bytes) of the image file the labels were made from, None
    where no bytes were read (a missing file) or the writer recorded none.
    """

    image_path: str
    split: str
    pid: int
    camid: int
    image_size: tuple[int, int]
    mask: np.ndarray
    keypoints: np.ndarray
    person_box: np.ndarray
    person_score: float
    status: int
    image_sha256: bytes | None = None


def encode_mask(
    probability: np.ndarray, mask_size: tuple[int, int] = DEFAULT_MASK_SIZE
) -> np.ndarray:
    """Foreground probability (h, w) in [0, 1] at original size -> uint8 (H, W) at ``mask_size``."""
    probability = np.asarray(probability, dtype=np.float32)
    if probability.ndim != 2 or min(probability.shape) == 0:
        raise ValueError(f"a mask must be a non-empty (h, w) array, got shape {probability.shape}")
    height, width = mask_size
    resized = cv2.resize(probability, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.rint(np.clip(resized, 0.0, 1.0) * 255.0).astype(np.uint8)


def empty_keypoints() -> np.ndarray:
    """(17, 3) float32 of (NaN, NaN, 0): the schema's "not found"."""
    keypoints = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    keypoints[:, :2] = np.nan
    return keypoints


def keypoints_off_image(keypoints: np.ndarray, image_size) -> np.ndarray:
    """Which keypoints break the store's rule, (..., 17) bool from (..., 17, 3) and (..., 2).

    The rule: a keypoint lies inside its image, 0 <= x < W and 0 <= y < H in original pixels
    (pixel (col, row) covers [col, col + 1) x [row, row + 1)), or it is not found: NaN, NaN, 0.
    ``image_size`` is (height, width), one per image.
    """
    keypoints = np.asarray(keypoints, np.float64)
    size = np.asarray(image_size, np.float64)[..., None, :]
    x, y, score = keypoints[..., 0], keypoints[..., 1], keypoints[..., 2]
    inside = (x >= 0) & (x < size[..., 1]) & (y >= 0) & (y < size[..., 0])
    not_found = np.isnan(x) & np.isnan(y) & (score == 0)
    return ~(inside | not_found)


def keypoints_in_image(keypoints: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """A copy of (17, 3) ``keypoints`` in which those off the (height, width) image are not found.

    Every labeler's keypoints pass through it before they are stored (a top-down pose model
    may place a joint beyond the crop's edge), so a store never holds one off its image.
    """
    keypoints = np.array(keypoints, np.float32)
    keypoints[keypoints_off_image(keypoints, image_size)] = (np.nan, np.nan, 0.0)
    return keypoints


def empty_annotation(
    image_path: str,
    split: str,
    pid: int,
    camid: int,
    image_size: tuple[int, int],
    status: int,
    mask_size: tuple[int, int] = DEFAULT_MASK_SIZE,
    image_sha256: bytes | None = None,
) -> ImageAnnotation:
    """The record of an image without a person (status 1), that could not be read (2) or on
    which the labeler raised (3); ``image_sha256`` as in :class:`ImageAnnotation`."""
    return ImageAnnotation(
        image_path=image_path,
        split=split,
        pid=int(pid),
        camid=int(camid),
        image_size=(int(image_size[0]), int(image_size[1])),
        mask=np.zeros(tuple(mask_size), np.uint8),
        keypoints=empty_keypoints(),
        person_box=np.full(4, np.nan, np.float32),
        person_score=0.0,
        status=int(status),
        image_sha256=image_sha256,
    )


def plan_shards(samples: list[Sample], shard_size: int) -> list[list[Sample]]:
    """Cut a split into shards: shard ``i`` holds ``samples[i * size:(i + 1) * size]``."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    return [samples[i : i + shard_size] for i in range(0, len(samples), shard_size)]
