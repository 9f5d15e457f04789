"""Writing a store: one atomic, checksummed HDF5 shard per call, then ``manifest.csv``.

A shard is written under ``<name>.tmp-<pid>`` and renamed when complete, so a shard file that
exists is whole. Datasets are created with ``track_times=False``; with a fixed ``created_utc``
identical records give byte-identical files.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np

from daaf import __version__
from daaf.data.annotations.digests import stored_digest
from daaf.data.annotations.schema import (
    DATASET_DTYPES,
    DEFAULT_MASK_SIZE,
    DIGEST_SIZE,
    MANIFEST_NAME,
    SCHEMA_NAME,
    SCHEMA_VERSION,
    STATUS_NAMES,
    ImageAnnotation,
    shard_file_name,
)
from daaf.data.annotations.shards import hash_datasets, load_header, open_shard, scan_store
from daaf.data.keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS
from daaf.errors import DaafError
from daaf.utils.files import atomic_write

SMALL_CHUNK = 4096  # rows per chunk of the small per-image arrays


def _stack(records: list[ImageAnnotation], mask_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Records -> the shard's datasets; a record of the wrong shape or status raises ValueError."""
    for record in records:
        checks = (
            (
                record.mask.shape == mask_size and record.mask.dtype == np.uint8,
                "uint8 mask",
                mask_size,
            ),
            (np.shape(record.keypoints) == (NUM_KEYPOINTS, 3), "keypoints", (NUM_KEYPOINTS, 3)),
            (np.shape(record.person_box) == (4,), "person_box", (4,)),
            (len(record.image_size) == 2, "image_size", (2,)),
        )
        for ok, what, shape in checks:
            if not ok:
                raise ValueError(f"{record.image_path}: {what} must have shape {shape}")
        if record.status not in STATUS_NAMES:
            raise ValueError(
                f"{record.image_path}: status {record.status} is not one of {list(STATUS_NAMES)}"
            )
        digest = record.image_sha256
        if digest is not None and (not isinstance(digest, bytes) or len(digest) != DIGEST_SIZE):
            raise ValueError(f"{record.image_path}: image_sha256 must be {DIGEST_SIZE} bytes")
    return {
        "image_path": np.array([r.image_path for r in records], dtype=object),
        "pid": np.array([r.pid for r in records], DATASET_DTYPES["pid"]),
        "camid": np.array([r.camid for r in records], DATASET_DTYPES["camid"]),
        "image_size": np.array([r.image_size for r in records], np.uint16).reshape(-1, 2),
        "mask": np.stack([r.mask for r in records]),
        "keypoints": np.stack([np.asarray(r.keypoints, np.float32) for r in records]),
        "person_box": np.stack([np.asarray(r.person_box, np.float32) for r in records]),
        "person_score": np.array([r.person_score for r in records], np.float32),
        "status": np.array([r.status for r in records], np.uint8),
        "image_sha256": np.frombuffer(
            b"".join(stored_digest(r.image_sha256) for r in records), np.uint8
        ).reshape(-1, DIGEST_SIZE),
    }


def _create(f: h5py.File, name: str, data: np.ndarray, mask_size: tuple[int, int]) -> None:
    n = len(data)
    if name == "image_path":
        f.create_dataset(name, data=data, dtype=h5py.string_dtype("utf-8"), track_times=False)
    elif name == "mask":  # one image per chunk: cheap random reads
        f.create_dataset(
            name,
            data=data,
            chunks=(1, *mask_size),
            compression="gzip",
            compression_opts=4,
            fletcher32=True,
            track_times=False,
        )
    else:
        f.create_dataset(
            name,
            data=data,
            chunks=(min(n, SMALL_CHUNK), *data.shape[1:]),
            compression="gzip",
            compression_opts=4,
            fletcher32=True,
            track_times=False,
        )


class AnnotationWriter:
    """Writes the shards of one dataset's store into ``store_dir`` (created if needed).

    Args:
        store_dir: the store folder.
        dataset: dataset name stamped into every shard (e.g. ``market1501``).
        labeler: JSON-able description of how the labels were made (backend, weights, SHA-256s,
            thresholds, versions); ``{"weights": "random"}`` marks smoke-test labels.
        mask_size: (H, W) of the stored masks.
        created_utc: ISO-8601 time stamped into shards; None means now.
    """

    def __init__(
        self,
        store_dir: str | Path,
        dataset: str,
        labeler: dict,
        mask_size: tuple[int, int] = DEFAULT_MASK_SIZE,
        created_utc: str | None = None,
    ):
        self.store_dir = Path(store_dir)
        self.dataset = dataset
        self.labeler_json = json.dumps(labeler, sort_keys=True)
        self.mask_size = (int(mask_size[0]), int(mask_size[1]))
        self.created_utc = created_utc

    def shard_path(self, split: str, shard_index: int) -> Path:
        """``<store>/<split>-<shard:05d>.h5``."""
        return self.store_dir / shard_file_name(split, shard_index)

    def shard_exists(self, split: str, shard_index: int) -> bool:
        """Whether a complete shard is there (for resuming); a foreign or broken one raises."""
        path = self.shard_path(split, shard_index)
        if not path.exists():
            return False
        header = load_header(path)
        if header.dataset != self.dataset or header.mask_size != self.mask_size:
            raise DaafError(
                f"{path} holds dataset {header.dataset!r} at mask size {header.mask_size}, not "
                f"{self.dataset!r} at {self.mask_size}; use another store folder"
            )
        return True

    def shard_status(self, split: str, shard_index: int) -> np.ndarray:
        """The ``status`` column of a complete shard."""
        with open_shard(self.shard_path(split, shard_index)) as f:
            return f["status"][:]

    def write_shard(self, split: str, shard_index: int, records: list[ImageAnnotation]) -> Path:
        """Write ``records`` as shard ``shard_index`` of ``split`` atomically; returns its path."""
        if not records:
            raise ValueError(f"shard {shard_file_name(split, shard_index)} would be empty")
        wrong_split = [r.image_path for r in records if r.split != split]
        if wrong_split:
            raise ValueError(f"{wrong_split[0]}: record of another split than {split!r}")
        data = _stack(records, self.mask_size)
        created = self.created_utc or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        path = self.shard_path(split, shard_index)
        self.store_dir.mkdir(parents=True, exist_ok=True)

        def write(tmp: Path) -> None:
            with h5py.File(tmp, "w") as f:
                for name, array in data.items():
                    _create(f, name, array, self.mask_size)
                f.attrs.update(
                    {
                        "schema": SCHEMA_NAME,
                        "schema_version": SCHEMA_VERSION,
                        "dataset": self.dataset,
                        "split": split,
                        "shard_index": int(shard_index),
                        "labeler": self.labeler_json,
                        "keypoint_names": list(KEYPOINT_NAMES),
                        "mask_size": np.array(self.mask_size, np.int32),
                        "created_utc": created,
                        "daaf_version": __version__,
                        "content_sha256": hash_datasets(data),
                    }
                )

        atomic_write(path, write)
        return path

    def write_manifest(self) -> Path:
        """Index every shard in the folder into ``manifest.csv`` (written atomically)."""
        path = self.store_dir / MANIFEST_NAME
        return write_manifest_file(scan_store(self.store_dir), path)


def write_manifest_file(manifest, path: Path) -> Path:
    """Write a manifest DataFrame to ``path`` via a temporary file and a rename."""
    return atomic_write(
        path, lambda tmp: manifest.to_csv(tmp, index=False, float_format="%.6f", na_rep="nan")
    )
