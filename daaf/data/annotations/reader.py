"""Reading a store by image path: ``AnnotationStore``.

Shard files are opened lazily, one handle per shard per process; a store used in a forked
DataLoader worker notices the new process id and opens its own handles. The small per-image
arrays of a shard are read once per process and kept in memory; masks are read one chunk
(= one image) at a time.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from daaf.data.annotations.schema import MANIFEST_NAME, NO_DIGEST, ImageAnnotation
from daaf.data.annotations.shards import (
    header_mismatches,
    list_shard_paths,
    load_header,
    read_manifest,
    scan_store,
)
from daaf.errors import DaafError

SMALL_ARRAYS = (
    "pid",
    "camid",
    "image_size",
    "keypoints",
    "person_box",
    "person_score",
    "status",
    "image_sha256",  # schema v2
)


class AnnotationStore:
    """Masks, keypoints, boxes, scores and status of a store's images, by ``image_path``.

    Args:
        store_dir: folder with ``manifest.csv`` and ``<split>-<nnnnn>.h5`` shards. Without a
            manifest the index is built from the shards (nothing is written).

    Attributes:
        manifest: one row per image (image_path, split, pid, camid, shard, row, status,
            person_score, mean_keypoint_score, mask_area, image_sha256).
        dataset, mask_size, labeler, schema_version: from the shards' attributes (labeler of the
            first shard).
        headers: shard file name -> :class:`ShardHeader`.
    """

    def __init__(self, store_dir: str | Path):
        self.store_dir = Path(store_dir)
        if not self.store_dir.is_dir():
            raise DaafError(f"annotation store {self.store_dir} does not exist or is not a folder")
        manifest_path = self.store_dir / MANIFEST_NAME
        if manifest_path.exists():
            self.manifest = read_manifest(manifest_path)
        else:
            self.manifest = scan_store(self.store_dir)
        if self.manifest.empty:
            raise DaafError(f"annotation store {self.store_dir} holds no images (no shards)")
        shard_names = list(dict.fromkeys(self.manifest["shard"]))
        self.headers = {name: load_header(self.store_dir / name) for name in shard_names}
        headers = list(self.headers.values())
        mismatches = header_mismatches(headers)
        if mismatches:
            raise DaafError(mismatches[0])
        self.dataset = headers[0].dataset
        self.mask_size = headers[0].mask_size
        self.labeler = headers[0].labeler
        self.schema_version = headers[0].schema_version

        self._shard_names = shard_names
        codes = pd.Categorical(self.manifest["shard"], categories=shard_names).codes
        self._index = dict(
            zip(
                self.manifest["image_path"],
                zip(codes.tolist(), self.manifest["row"].tolist(), strict=True),
                strict=True,
            )
        )
        if len(self._index) != len(self.manifest):
            dup = self.manifest["image_path"][self.manifest["image_path"].duplicated()].iloc[0]
            raise DaafError(f"{self.store_dir} lists image {dup} more than once")
        self._pid = None
        self._files: dict[int, h5py.File] = {}
        self._mask_sets: dict[int, h5py.Dataset] = {}
        self._small: dict[int, dict[str, np.ndarray]] = {}

    # -- handles ---------------------------------------------------------------------------

    def _file(self, shard: int) -> h5py.File:
        if self._pid != os.getpid():  # new process (DataLoader worker, fork): own handles
            self._files, self._mask_sets, self._pid = {}, {}, os.getpid()
        f = self._files.get(shard)
        if f is None:
            path = self.store_dir / self._shard_names[shard]
            try:
                f = self._files[shard] = h5py.File(path, "r")
            except OSError as exc:
                raise DaafError(f"annotation shard {path} cannot be opened: {exc}") from exc
        return f

    def _mask_set(self, shard: int) -> h5py.Dataset:
        if self._pid != os.getpid() or shard not in self._mask_sets:
            self._mask_sets[shard] = self._file(shard)["mask"]
        return self._mask_sets[shard]

    def _arrays(self, shard: int) -> dict[str, np.ndarray]:
        arrays = self._small.get(shard)
        if arrays is None:
            f = self._file(shard)
            arrays = self._small[shard] = {name: f[name][()] for name in SMALL_ARRAYS if name in f}
        return arrays

    def close(self) -> None:
        """Close this process's shard handles (they reopen on the next read)."""
        if self._pid == os.getpid():
            for f in self._files.values():
                f.close()
        self._files, self._mask_sets, self._small = {}, {}, {}

    def __enter__(self) -> AnnotationStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(
            _pid=None, _files={}, _mask_sets={}, _small={}
        )  # h5py handles cannot be pickled
        return state

    # -- lookups ---------------------------------------------------------------------------

    def __contains__(self, image_path: str) -> bool:
        return image_path in self._index

    def __len__(self) -> int:
        return len(self._index)

    def missing(self, image_paths) -> list[str]:
        """The paths of ``image_paths`` that the store does not hold, in order."""
        return [path for path in image_paths if path not in self._index]

    def _locate(self, image_paths) -> np.ndarray:
        """(N, 2) int array of (shard, row); an unknown path raises DaafError."""
        try:
            return np.array([self._index[p] for p in image_paths], np.int64).reshape(-1, 2)
        except KeyError as exc:
            raise DaafError(
                f"image {exc.args[0]} is not in the annotation store {self.store_dir}; "
                f"check coverage with `daaf annotations validate {self.store_dir} --root ...`"
            ) from exc

    def _gather(self, name: str, image_paths) -> np.ndarray:
        if len(image_paths) == 1:  # a training worker's per-sample read: no grouping by shard
            ((shard, row),) = self._locate(image_paths).tolist()
            return self._arrays(shard)[name][row : row + 1]
        where = self._locate(image_paths)
        out = None
        for shard in np.unique(where[:, 0]):
            picked = np.flatnonzero(where[:, 0] == shard)
            values = self._arrays(int(shard))[name][where[picked, 1]]
            if out is None:
                out = np.empty((len(where), *values.shape[1:]), values.dtype)
            out[picked] = values
        if out is None:  # no paths: an empty array of the right dtype and shape
            template = self._arrays(0)[name]
            out = np.empty((0, *template.shape[1:]), template.dtype)
        return out

    def masks(self, image_paths) -> np.ndarray:
        """uint8 (N, H, W) masks; reads each shard's rows in increasing order."""
        if len(image_paths) == 1:  # a training worker's per-sample read: no sorting
            ((shard, row),) = self._locate(image_paths).tolist()
            return self._mask_set(shard)[row : row + 1]
        where = self._locate(image_paths)
        out = np.empty((len(where), *self.mask_size), np.uint8)
        for i in np.lexsort((where[:, 1], where[:, 0])).tolist():
            shard, row = where[i].tolist()
            out[i] = self._mask_set(shard)[row]  # one chunk = one image
        return out

    def keypoints(self, image_paths) -> np.ndarray:
        """float32 (N, 17, 3): x, y in original pixels, score; NaN, NaN, 0 where not found."""
        return self._gather("keypoints", image_paths)

    def person_boxes(self, image_paths) -> np.ndarray:
        """float32 (N, 4) x1 y1 x2 y2 in original pixels; NaN where no person."""
        return self._gather("person_box", image_paths)

    def person_scores(self, image_paths) -> np.ndarray:
        """float32 (N,) detector confidence of the chosen person; 0 where none."""
        return self._gather("person_score", image_paths)

    def status(self, image_paths) -> np.ndarray:
        """uint8 (N,): 0 ok, 1 no person found, 2 image unreadable."""
        return self._gather("status", image_paths)

    def get(self, image_path: str) -> ImageAnnotation:
        """Everything stored about one image."""
        ((shard, row),) = self._locate([image_path])
        arrays = self._arrays(int(shard))
        digest = arrays["image_sha256"][row].tobytes() if "image_sha256" in arrays else NO_DIGEST
        return ImageAnnotation(
            image_path=image_path,
            split=self.headers[self._shard_names[shard]].split,
            pid=int(arrays["pid"][row]),
            camid=int(arrays["camid"][row]),
            image_size=tuple(int(v) for v in arrays["image_size"][row]),
            mask=self.masks([image_path])[0],
            keypoints=arrays["keypoints"][row].copy(),
            person_box=arrays["person_box"][row].copy(),
            person_score=float(arrays["person_score"][row]),
            status=int(arrays["status"][row]),
            image_sha256=None if digest == NO_DIGEST else digest,
        )


FALLBACK_KEYPOINT_SCORE_THRESHOLD = 0.3


def keypoint_score_threshold(setting: float | str, store: AnnotationStore | None) -> float:
    """``data.keypoint_score_threshold`` as a number: a number is itself; ``"auto"`` is the
    store's recommendation (the labeler attribute's ``keypoint_score_threshold``, one per
    backend, see docs/annotations.md), or 0.3 for a store without one (shards written before
    recommendations were recorded, synthetic ground truth with scores 0 or 1) or no store."""
    if setting != "auto":
        try:
            return float(setting)
        except (TypeError, ValueError) as exc:
            raise DaafError(
                f"data.keypoint_score_threshold: {setting!r} is neither 'auto' nor a number"
            ) from exc
    recommended = None if store is None else store.labeler.get("keypoint_score_threshold")
    return FALLBACK_KEYPOINT_SCORE_THRESHOLD if recommended is None else float(recommended)


def store_dataset_name(store_dir: str | Path) -> str | None:
    """The ``dataset`` attribute of the first shard that opens, or None if none does."""
    for path in list_shard_paths(Path(store_dir)):
        try:
            return load_header(path).dataset
        except DaafError:
            continue
    return None
