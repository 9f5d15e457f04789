"""Reading shard files: open with clear errors, check the header, checksum, index into manifest.

Shared by the writer (manifest), the reader (index without a manifest) and validation, so that
all three agree on what a whole, current shard is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from daaf.data.annotations.digests import digest_hex
from daaf.data.annotations.schema import (
    DATASET_DTYPES,
    DIGEST_SIZE,
    MANIFEST_COLUMNS,
    READABLE_VERSIONS,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    SHARD_PATTERN,
    dataset_names,
)
from daaf.data.datasets.base import SPLITS
from daaf.data.keypoints import NUM_KEYPOINTS
from daaf.errors import DaafError
from daaf.utils.files import printable, regular_file_problem

MASK_BLOCK = 256  # masks are streamed in blocks of this many images when scanning a whole shard


@dataclass(frozen=True)
class ShardHeader:
    """The attributes of one shard file, checked against its schema version."""

    path: Path
    schema_version: int
    dataset: str
    split: str
    shard_index: int
    labeler: dict
    mask_size: tuple[int, int]
    num_images: int
    content_sha256: str
    created_utc: str
    daaf_version: str


def list_shard_paths(store_dir: Path) -> list[Path]:
    """Shard files of a store (``<split>-<nnnnn>.h5``), ordered by split then shard index."""
    found = []
    for path in Path(store_dir).glob("*.h5"):
        match = SHARD_PATTERN.match(path.name)
        if match:
            found.append((SPLITS.index(match["split"]), int(match["index"]), path))
    return [path for *_, path in sorted(found)]


def header_mismatches(headers: list[ShardHeader]) -> list[str]:
    """Shards that name another dataset, mask size or schema version than the first: a store
    holds one of each."""
    problems = []
    first = headers[0] if headers else None
    for header in headers[1:]:
        if header.schema_version != first.schema_version:
            problems.append(
                f"{header.path} has schema version {header.schema_version}, but "
                f"{first.path.name} {first.schema_version}; a store holds one version"
            )
        if header.dataset != first.dataset:
            problems.append(
                f"{header.path} belongs to dataset {header.dataset!r}, but {first.path.name} "
                f"to {first.dataset!r}; a store holds one dataset"
            )
        if header.mask_size != first.mask_size:
            problems.append(
                f"{header.path} stores masks at {header.mask_size}, but {first.path.name} at "
                f"{first.mask_size}"
            )
    return problems


def open_shard(path: Path) -> h5py.File:
    """Open a shard read-only; a missing, truncated or non-HDF5 file raises DaafError naming it,
    as does a FIFO or a device (refused before it is opened: HDF5 would wait on a FIFO)."""
    problem = regular_file_problem(path)
    if problem not in (None, "missing"):
        raise DaafError(f"annotation shard {printable(str(path))}: {problem}")
    try:
        return h5py.File(path, "r")
    except FileNotFoundError as exc:
        raise DaafError(f"annotation shard {path} does not exist") from exc
    except OSError as exc:
        raise DaafError(
            f"annotation shard {path} cannot be opened: truncated or not an HDF5 file ({exc})"
        ) from exc


def _dtype_matches(actual: np.dtype, expected: str) -> bool:
    """Is ``actual`` the schema's ``expected`` type (a string for ``"str"``), in either byte order?"""
    if expected == "str":
        return h5py.check_string_dtype(actual) is not None
    return actual.newbyteorder("=") == np.dtype(expected).newbyteorder("=")


def read_header(f: h5py.File, path: Path) -> ShardHeader:
    """Check the schema attributes and dataset shapes and types of an open shard; DaafError if wrong."""
    attrs = f.attrs
    version = _schema_version(attrs, path)
    names = dataset_names(version)
    missing = [name for name in names if name not in f]
    if missing:
        raise DaafError(f"{path} lacks the dataset(s) {', '.join(missing)} of schema v{version}")
    try:
        mask_size = tuple(int(v) for v in attrs["mask_size"])
        num_images = len(f["image_path"])
        _check_datasets(f, path, names, num_images, mask_size)
        return ShardHeader(
            path=Path(path),
            schema_version=version,
            dataset=str(attrs["dataset"]),
            split=str(attrs["split"]),
            shard_index=int(attrs["shard_index"]),
            labeler=json.loads(attrs["labeler"]),
            mask_size=mask_size,
            num_images=num_images,
            content_sha256=str(attrs["content_sha256"]),
            created_utc=str(attrs["created_utc"]),
            daaf_version=str(attrs["daaf_version"]),
        )
    except KeyError as exc:
        raise DaafError(f"{path} lacks the attribute {exc.args[0]!r} of schema v{version}") from exc


def _schema_version(attrs: h5py.AttributeManager, path: Path) -> int:
    """The shard's schema version; DaafError unless it is a daaf shard of a version this daaf
    reads."""
    schema = attrs.get("schema")
    if schema != SCHEMA_NAME:
        raise DaafError(
            f"{path} is not a daaf annotation shard (attribute schema={schema!r}, "
            f"expected {SCHEMA_NAME!r})"
        )
    version = attrs.get("schema_version")
    if not _readable_version(version):
        raise DaafError(
            f"{path} has annotation schema version {version}, but this daaf reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}; relabel the dataset or use a daaf release "
            "that reads that version"
        )
    return int(version)


def _check_datasets(
    f: h5py.File, path: Path, names: list[str], num_images: int, mask_size: tuple[int, ...]
) -> None:
    """DaafError unless the datasets ``names`` of the shard have the schema's shapes (one row an
    image, masks of ``mask_size``) and types."""
    expected = {
        "pid": (num_images,),
        "camid": (num_images,),
        "image_size": (num_images, 2),
        "mask": (num_images, *mask_size),
        "keypoints": (num_images, NUM_KEYPOINTS, 3),
        "person_box": (num_images, 4),
        "person_score": (num_images,),
        "status": (num_images,),
        "image_sha256": (num_images, DIGEST_SIZE),
    }
    expected = {name: shape for name, shape in expected.items() if name in names}
    wrong = [f"{n} {f[n].shape} (expected {s})" for n, s in expected.items() if f[n].shape != s]
    if wrong:
        raise DaafError(f"{path} has datasets of the wrong shape: {'; '.join(wrong)}")
    wrong = [
        f"{n} {f[n].dtype} (expected {d})"
        for n, d in DATASET_DTYPES.items()
        if n in names and not _dtype_matches(f[n].dtype, d)
    ]
    if wrong:
        raise DaafError(f"{path} has datasets of the wrong type: {'; '.join(wrong)}")


def _readable_version(version) -> bool:
    """Is the ``schema_version`` attribute one this daaf reads (an integer, not a string)?"""
    return isinstance(version, (int, np.integer)) and int(version) in READABLE_VERSIONS


def load_header(path: Path) -> ShardHeader:
    """Open a shard just to read and check its header."""
    with open_shard(path) as f:
        return read_header(f, path)


def _path_bytes(values) -> bytes:
    return b"".join((v.encode("utf-8") if isinstance(v, str) else bytes(v)) + b"\0" for v in values)


def _mask_blocks(masks):
    for start in range(0, len(masks), MASK_BLOCK):
        yield masks[start : start + MASK_BLOCK]


def _mask_area(block: np.ndarray) -> np.ndarray:
    """The manifest's ``mask_area`` of a block of masks: the fraction of pixels >= 128."""
    return (block >= 128).mean(axis=(1, 2))


def hash_datasets(
    datasets: Mapping[str, object], areas: list | None = None, version: int = SCHEMA_VERSION
) -> str:
    """``content_sha256``: SHA-256 over the datasets of schema ``version`` in ``DATASET_DTYPES``
    order.

    ``image_path`` contributes each path's UTF-8 bytes followed by one zero byte; every other
    dataset its C-order bytes in its schema dtype (little-endian). ``datasets`` maps names to
    numpy arrays or open h5py datasets (masks are read in blocks). ``areas``, if given, gets
    each block's ``mask_area``, so that a check that also indexes the shard inflates the masks
    once.
    """
    digest = hashlib.sha256()
    for name in dataset_names(version):
        dtype = DATASET_DTYPES[name]
        if name == "image_path":
            digest.update(_path_bytes(datasets[name][()]))
            continue
        blocks = _mask_blocks(datasets[name]) if name == "mask" else [datasets[name][()]]
        for block in blocks:
            digest.update(np.ascontiguousarray(block, dtype=np.dtype(dtype)).tobytes())
            if name == "mask" and areas is not None:
                areas.append(_mask_area(block))
    return digest.hexdigest()


def index_shard(
    f: h5py.File, header: ShardHeader, mask_area: np.ndarray | None = None
) -> pd.DataFrame:
    """The manifest rows of one open shard (reads masks in blocks for ``mask_area`` unless
    given)."""
    n = header.num_images
    scores = np.nan_to_num(f["keypoints"][:, :, 2])
    digests = f["image_sha256"][()] if "image_sha256" in f else np.zeros((n, DIGEST_SIZE), "u1")
    if mask_area is None:
        mask_area = np.concatenate([_mask_area(b) for b in _mask_blocks(f["mask"])] or [[]])
    frame = pd.DataFrame(
        {
            "image_path": f["image_path"].asstr()[()],
            "split": header.split,
            "pid": f["pid"][()].astype(np.int64),
            "camid": f["camid"][()].astype(np.int64),
            "shard": header.path.name,
            "row": np.arange(n, dtype=np.int64),
            "status": f["status"][()].astype(np.int64),
            "person_score": f["person_score"][()].astype(np.float64),
            "mean_keypoint_score": scores.mean(axis=1).astype(np.float64),
            "mask_area": mask_area.astype(np.float64),
            "image_sha256": [digest_hex(digest.tobytes()) for digest in digests],
        }
    )
    return frame[list(MANIFEST_COLUMNS)]


def empty_manifest() -> pd.DataFrame:
    return pd.DataFrame({column: [] for column in MANIFEST_COLUMNS})


def scan_store(store_dir: Path) -> pd.DataFrame:
    """Manifest rows of every shard in ``store_dir``, ordered by split, shard, row."""
    frames = []
    for path in list_shard_paths(store_dir):
        with open_shard(path) as f:
            frames.append(index_shard(f, read_header(f, path)))
    return pd.concat(frames, ignore_index=True) if frames else empty_manifest()


def read_manifest(path: Path) -> pd.DataFrame:
    """Load ``manifest.csv`` with the column types of the schema; a manifest of schema v1, without
    ``image_sha256``, gets that column empty (no digest recorded)."""
    try:
        frame = pd.read_csv(
            path,
            dtype={"image_path": str, "split": str, "shard": str, "image_sha256": str},
            keep_default_na=False,
            na_values={c: ["nan"] for c in ("person_score", "mean_keypoint_score", "mask_area")},
        )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DaafError(f"{path} cannot be read as a manifest CSV: {exc}") from exc
    if "image_sha256" not in frame.columns:
        frame["image_sha256"] = ""
    missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
    if missing:
        raise DaafError(f"{path} lacks the manifest column(s) {', '.join(missing)}")
    return frame[list(MANIFEST_COLUMNS)]
