"""The embedding file ``daaf embed`` writes and ``daaf search`` reads (docs/embeddings.md).

One HDF5 file: ``features`` (N, D) float32, ``paths`` (N,) UTF-8 relative to the ``root``
attribute, ``unreadable`` / ``unreadable_reason`` (M,) UTF-8, and attributes describing the model
and the inputs. Rows are appended one batch at a time and the progress attributes (``done``,
``rows``, ``num_unreadable``) are written after the rows, then the file is flushed: a run that
stops leaves a file whose attributes describe its last complete chunk, which ``--resume``
continues from.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from daaf.errors import DaafError

FORMAT = "daaf-embeddings"
FORMAT_VERSION = 1
TEXT = h5py.string_dtype("utf-8")
# Attributes a resumed run must share with the file it continues.
SAME_ON_RESUME = ("model_sha256", "embedding_dim", "flip", "image_size", "num_inputs",
                  "inputs_sha256", "root")  # fmt: skip


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def inputs_sha256(paths: list[str]) -> str:
    """Hex SHA-256 of the ordered input list: a resumed run must embed the same images."""
    return hashlib.sha256("\n".join(paths).encode("utf-8")).hexdigest()


@dataclass
class Embeddings:
    """A whole embedding file in memory: for galleries that fit; search reads in blocks."""

    features: np.ndarray
    paths: list[str]
    unreadable: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> str:
        return self.attrs.get("root", "")

    def full_path(self, index: int) -> Path:
        """The image file of row ``index`` (its path joined to the recorded root)."""
        return Path(self.root, self.paths[index]) if self.root else Path(self.paths[index])


def _attrs(f: h5py.File) -> dict[str, Any]:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}


def open_embeddings(path: Path) -> h5py.File:
    """The file opened for reading, after checking it is a complete daaf embedding file."""
    path = Path(path)
    if not path.is_file():
        raise DaafError(f"{path}: no such embedding file")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DaafError(f"{path}: not an HDF5 file ({exc})") from exc
    if f.attrs.get("format") != FORMAT or "features" not in f:
        f.close()
        raise DaafError(f"{path}: not an embedding file written by `daaf embed`")
    if not f.attrs.get("complete", False):
        f.close()
        raise DaafError(
            f"{path}: incomplete (the run stopped); finish it with `daaf embed --resume`"
        )
    return f


def read_embeddings(path: Path) -> Embeddings:
    """Features, paths, unreadable images and attributes of a complete embedding file."""
    with open_embeddings(path) as f:
        return Embeddings(
            features=f["features"][:],
            paths=[p.decode() for p in f["paths"][:]],
            unreadable=[p.decode() for p in f["unreadable"][:]],
            attrs=_attrs(f),
        )


def read_attrs(path: Path) -> dict[str, Any]:
    """The attributes of a complete embedding file (model, dim, metric, root, ...)."""
    with open_embeddings(path) as f:
        return _attrs(f)


def feature_blocks(f: h5py.File, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(start, features[start:start + rows])`` over the file, read into two reused buffers:
    memory holds two blocks, so the next can be read while the caller works on the current one.
    A block is overwritten when the one after the next is read: copy it to keep it."""
    features = _without_chunk_cache(f, "features")
    num, dim = features.shape
    buffers = [np.empty((min(rows, num), dim), np.float32) for _ in range(2 if num > rows else 1)]
    for k, start in enumerate(range(0, num, rows)):
        block = buffers[k % 2][: min(rows, num - start)]
        features.read_direct(block, np.s_[start : start + len(block)])
        yield start, block


def _without_chunk_cache(f: h5py.File, name: str) -> h5py.Dataset:
    """The dataset opened without HDF5's chunk cache: rows read once gain nothing from it, and it
    costs a copy (8,192-row blocks of 2,048-d float32 from the page cache: 1.4 GB/s without it,
    0.9 GB/s with it, where a memcpy does 2.0 GB/s, on the loaded 2-core machine)."""
    access = h5py.h5p.create(h5py.h5p.DATASET_ACCESS)
    access.set_chunk_cache(0, 0, 1.0)
    return h5py.Dataset(h5py.h5d.open(f.id, name.encode(), access))


class EmbeddingWriter:
    """Appends chunks of rows to a new embedding file, or continues one (``resume``)."""

    def __init__(self, path: Path, attrs: dict[str, Any], resume: bool = False) -> None:
        self.path = Path(path)
        if self.path.exists():
            if not resume:
                raise DaafError(self._exists())
            self.file = self._reopen(attrs)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = self._create(attrs)

    def _exists(self) -> str:
        return f"{self.path} exists: pass --resume to continue it, or another --out"

    def _create(self, attrs: dict[str, Any]) -> h5py.File:
        try:  # "x": a file another run made since the check above is refused, never truncated
            f = h5py.File(self.path, "x")
        except OSError as exc:
            if self.path.exists():
                raise DaafError(self._exists()) from None
            raise DaafError(f"{self.path}: cannot be created ({exc})") from None
        dim = int(attrs["embedding_dim"])
        rows = max(1, min(1024, (1 << 20) // (4 * dim)))  # about 1 MB HDF5 chunks
        f.create_dataset("features", (0, dim), np.float32, maxshape=(None, dim), chunks=(rows, dim))
        for name in ("paths", "unreadable", "unreadable_reason"):
            f.create_dataset(name, (0,), TEXT, maxshape=(None,), chunks=(1024,))
        f.attrs.update({"format": FORMAT, "format_version": FORMAT_VERSION, **attrs})
        f.attrs.update({"done": 0, "rows": 0, "num_unreadable": 0, "complete": False})
        f.flush()
        return f

    def _reopen(self, attrs: dict[str, Any]) -> h5py.File:
        try:
            f = h5py.File(self.path, "a")
        except OSError as exc:
            raise DaafError(
                f"{self.path}: cannot be resumed, not a readable HDF5 file ({exc})"
            ) from exc
        if f.attrs.get("format") != FORMAT:
            f.close()
            raise DaafError(f"{self.path}: not an embedding file written by `daaf embed`")
        differ = [k for k in SAME_ON_RESUME if _attrs(f).get(k) != _plain(attrs.get(k))]
        if differ:
            f.close()
            raise DaafError(
                f"{self.path} was made with another model or other images ({', '.join(differ)} "
                "differ): resume with the same --model, --images and --flip, or use another --out"
            )
        f["features"].resize(
            int(f.attrs["rows"]), axis=0
        )  # drop a chunk half-written when it stopped
        f["paths"].resize(int(f.attrs["rows"]), axis=0)
        for name in ("unreadable", "unreadable_reason"):
            f[name].resize(int(f.attrs["num_unreadable"]), axis=0)
        return f

    @property
    def done(self) -> int:
        """Inputs (readable or not) covered by the complete chunks."""
        return int(self.file.attrs["done"])

    @property
    def complete(self) -> bool:
        return bool(self.file.attrs["complete"])

    def append(
        self, features: np.ndarray, paths: list[str], unreadable: list[tuple[str, str]], inputs: int
    ) -> None:
        """One chunk: rows and unreadable images for the next ``inputs`` inputs, then the progress
        attributes, then a flush (the chunk is complete on disk)."""
        f = self.file
        rows, bad = int(f.attrs["rows"]), int(f.attrs["num_unreadable"])
        _extend(f["features"], rows, features)
        _extend(f["paths"], rows, paths)
        _extend(f["unreadable"], bad, [p for p, _ in unreadable])
        _extend(f["unreadable_reason"], bad, [r for _, r in unreadable])
        f.attrs.update({"rows": rows + len(paths), "num_unreadable": bad + len(unreadable),
                        "done": self.done + inputs})  # fmt: skip
        f.flush()

    def close(self, complete: bool) -> None:
        if complete:
            self.file.attrs["complete"] = True
        self.file.close()


def _extend(dataset: h5py.Dataset, start: int, values) -> None:
    if len(values):
        dataset.resize(start + len(values), axis=0)
        dataset[start:] = values


def _plain(value: Any) -> Any:
    """An attribute value as it reads back from HDF5 (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value
