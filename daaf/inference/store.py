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
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from daaf.errors import DaafError, short_repr
from daaf.utils.files import printable, regular_file_problem

FORMAT = "daaf-embeddings"
FORMAT_VERSION = 1
TEXT = h5py.string_dtype("utf-8")
# Attributes a resumed run must share with the file it continues.
SAME_ON_RESUME = (
    "model_sha256",
    "embedding_dim",
    "flip",
    "image_size",
    "num_inputs",
    "inputs_sha256",
    "root",
)


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def inputs_sha256(paths: list[str]) -> str:
    """Hex SHA-256 of the ordered input list (the names' own bytes, UTF-8 or not): a resumed
    run must embed the same images."""
    return hashlib.sha256("\n".join(paths).encode("utf-8", "surrogateescape")).hexdigest()


def storable(name: str) -> str:
    """``name`` as UTF-8 text can hold it: a file name's bytes that are not UTF-8 (surrogate
    escapes in Python) become ``\\xff`` escapes; any other name is unchanged."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


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


def _shown(value: Any) -> str:
    """An attribute value for a message, as Python writes it (5, not np.int64(5)), shortened."""
    return short_repr(value.tolist() if isinstance(value, np.ndarray | np.generic) else value)


def open_embeddings(path: Path) -> h5py.File:
    """The file opened for reading, after checking it is a complete daaf embedding file whose
    datasets and attributes agree (:func:`check_contents`): a hand-made or damaged file is a
    DaafError of one line naming it and what is wrong, not a traceback or garbage results."""
    path = Path(path)
    problem = regular_file_problem(path)
    if problem is not None:
        said = "no such embedding file" if problem == "missing" else problem
        raise DaafError(f"{printable(str(path))}: {said}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DaafError(f"{printable(str(path))}: not an HDF5 file ({exc})") from exc
    try:
        if f.attrs.get("format") != FORMAT or not isinstance(f.get("features"), h5py.Dataset):
            raise DaafError(
                f"{printable(str(path))}: not an embedding file written by `daaf embed`"
            )
        if not f.attrs.get("complete", False):
            raise DaafError(
                f"{printable(str(path))}: incomplete (the run stopped); finish it with "
                "`daaf embed --resume`"
            )
        check_contents(f, path)
    except BaseException:
        f.close()
        raise
    return f


def check_contents(f: h5py.File, path: Path) -> None:
    """DaafError naming ``path`` unless ``features`` is a float (rows, embedding_dim) matrix,
    ``paths`` (and ``unreadable``) text with a row per feature row (per unreadable image), and
    the attributes search uses are of their types and agree with the data."""
    shown = printable(str(path))
    features = f["features"]
    if features.ndim != 2 or features.dtype.kind != "f":
        raise DaafError(
            f"{shown}: features are {features.dtype} of shape {features.shape}, not a "
            "floating-point (rows, dimension) matrix"
        )
    dim = _whole_number(f, "embedding_dim", shown)
    if features.shape[1] != dim:
        raise DaafError(
            f"{shown}: features of dimension {features.shape[1]}, but its embedding_dim "
            f"attribute says {dim}"
        )
    counts = {
        "rows": (len(features), "rows of features"),
        "num_unreadable": (_text_rows(f, "unreadable", shown), "unreadable images"),
    }
    paths = _text_rows(f, "paths", shown)
    if paths != len(features):
        raise DaafError(f"{shown}: {len(features)} rows of features but {paths} paths")
    for name in ("features", "paths"):
        if _never_written(f[name]):
            raise DaafError(
                f"{shown}: its {name} hold {len(features)} rows, but not all of them were "
                "ever written (HDF5 would read the rest as zeros)"
            )
    for name, (held, what) in counts.items():
        if name in f.attrs and _whole_number(f, name, shown) != held:
            raise DaafError(
                f"{shown}: its {name} attribute says {f.attrs[name]}, but it holds {held} {what}"
            )
    _check_search_attrs(f, shown)


def _never_written(data: h5py.Dataset) -> bool:
    """Whether some of ``data`` was never written: a chunk or a contiguous dataset that HDF5
    holds no storage for (a file made with only a shape: reading it yields fill values)."""
    if data.size == 0:
        return False
    if data.chunks is None:
        return data.id.get_storage_size() == 0
    chunks = 1
    for size, chunk in zip(data.shape, data.chunks, strict=True):
        chunks *= -(-size // chunk)
    return data.id.get_num_chunks() < chunks


def _whole_number(f: h5py.File, name: str, shown: str) -> int:
    """The integer attribute ``name``; DaafError if it is missing or of another type."""
    value = f.attrs.get(name)
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise DaafError(f"{shown}: its {name} attribute is {_shown(value)}, not a whole number")
    return int(value)


def _text_rows(f: h5py.File, name: str, shown: str) -> int:
    """The length of the 1-D text dataset ``name`` (0 if the file has none)."""
    if name not in f:
        return 0
    data = f[name]
    if (
        not isinstance(data, h5py.Dataset)
        or data.ndim != 1
        or not h5py.check_string_dtype(data.dtype)
    ):
        shape = getattr(data, "shape", "a group")
        raise DaafError(f"{shown}: {name} is {shape}, not a list of text (one per row)")
    return len(data)


def _check_search_attrs(f: h5py.File, shown: str) -> None:
    """DaafError unless the attributes search reads have their documented types."""
    from daaf.evaluation.distance import METRICS

    metric, flip, root = (f.attrs.get(k) for k in ("metric", "flip", "root"))
    if metric is not None and metric not in METRICS:
        raise DaafError(
            f"{shown}: its metric attribute {_shown(metric)} is none of {', '.join(METRICS)}"
        )
    if flip is not None and not isinstance(flip, bool | np.bool_):
        raise DaafError(f"{shown}: its flip attribute is {_shown(flip)}, not true or false")
    if root is not None and not isinstance(root, str):
        raise DaafError(f"{shown}: its root attribute is {_shown(root)}, not a folder name")


def decode_paths(values: np.ndarray, path: Path) -> list[str]:
    """Text rows of an embedding file as strings; DaafError naming the file if one is not UTF-8."""
    try:
        return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]
    except UnicodeDecodeError as exc:
        raise DaafError(
            f"{printable(str(path))}: a path that is not UTF-8 ({exc.reason})"
        ) from None


def read_embeddings(path: Path) -> Embeddings:
    """Features, paths, unreadable images and attributes of a complete embedding file."""
    with open_embeddings(path) as f:
        unreadable = f["unreadable"][:] if "unreadable" in f else []
        return Embeddings(
            features=f["features"][:].astype(np.float32, copy=False),
            paths=decode_paths(f["paths"][:], path),
            unreadable=decode_paths(unreadable, path),
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
        self.made: tuple[int, int] | None = None  # (device, inode) of a file this run created
        if self.path.exists():
            if not resume:
                raise DaafError(self._exists())
            self.file = self._reopen(attrs)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = self._create(attrs)
            made = os.stat(self.path)
            self.made = (made.st_dev, made.st_ino)

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
        try:
            if f.attrs.get("format") != FORMAT:
                raise DaafError(f"{self.path}: not an embedding file written by `daaf embed`")
            differ = [k for k in SAME_ON_RESUME if _attrs(f).get(k) != _plain(attrs.get(k))]
            if differ:
                raise DaafError(
                    f"{self.path} was made with another model or other images "
                    f"({', '.join(differ)} differ): resume with the same --model, --images and "
                    "--flip, or use another --out"
                )
            rows, bad = _check_progress(f, self.path)
        except BaseException:
            f.close()
            raise
        for name, kept in (
            ("features", rows),
            ("paths", rows),
            ("unreadable", bad),
            ("unreadable_reason", bad),
        ):
            f[name].resize(kept, axis=0)  # drop a chunk half-written when it stopped
        return f

    @property
    def rows(self) -> int:
        """Rows of features in the complete chunks."""
        return int(self.file.attrs["rows"])

    def unreadable(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of the unreadable images of the complete chunks."""
        count = int(self.file.attrs["num_unreadable"])
        names, reasons = (self.file[k][:count] for k in ("unreadable", "unreadable_reason"))
        return [(n.decode(), r.decode()) for n, r in zip(names, reasons, strict=True)]

    def discard(self) -> None:
        """Delete the (closed) file if this writer created it and it is still that file: a
        file of no use (no rows, or a refused run's) must not stand in the next run's way."""
        try:
            found = os.stat(self.path)
        except OSError:
            return
        if self.made == (found.st_dev, found.st_ino):
            self.path.unlink()

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
        _extend(f["paths"], rows, [storable(p) for p in paths])
        _extend(f["unreadable"], bad, [storable(p) for p, _ in unreadable])
        _extend(f["unreadable_reason"], bad, [r for _, r in unreadable])
        f.attrs.update(
            {
                "rows": rows + len(paths),
                "num_unreadable": bad + len(unreadable),
                "done": self.done + inputs,
            }
        )
        f.flush()

    def close(self, complete: bool) -> None:
        if complete:
            self.file.attrs["complete"] = True
        self.file.close()


def _check_progress(f: h5py.File, path: Path) -> tuple[int, int]:
    """``(rows, num_unreadable)`` of the complete chunks of a file to resume; DaafError if its
    progress attributes are not whole numbers that the datasets and the inputs can hold."""
    shown = printable(str(path))
    for name in ("features", "paths", "unreadable", "unreadable_reason"):
        data = f.get(name)
        if (
            not isinstance(data, h5py.Dataset)
            or data.chunks is None
            or data.maxshape[:1] != (None,)
        ):
            raise DaafError(
                f"{shown}: cannot be resumed, its {name} is not a dataset `daaf "
                "embed` writes; use another --out"
            )
    if f["features"].shape[1:] != (_whole_number(f, "embedding_dim", shown),):
        raise DaafError(
            f"{shown}: cannot be resumed, its features are {f['features'].shape}; use another --out"
        )
    rows, bad, done, inputs = (
        _whole_number(f, k, shown) for k in ("rows", "num_unreadable", "done", "num_inputs")
    )
    limits = {
        "rows": (rows, min(len(f["features"]), len(f["paths"]))),
        "num_unreadable": (bad, min(len(f["unreadable"]), len(f["unreadable_reason"]))),
    }
    for name, (value, held) in limits.items():
        if not 0 <= value <= held:
            raise DaafError(
                f"{shown}: cannot be resumed, its {name} attribute says {value} but "
                f"it holds {held}; use another --out"
            )
    if rows + bad != done or done > inputs:
        raise DaafError(
            f"{shown}: cannot be resumed, its progress attributes disagree (rows "
            f"{rows} + unreadable {bad} for {done} of {inputs} inputs); use another "
            "--out"
        )
    return rows, bad


def _extend(dataset: h5py.Dataset, start: int, values) -> None:
    if len(values):
        dataset.resize(start + len(values), axis=0)
        dataset[start:] = values


def _plain(value: Any) -> Any:
    """An attribute value as it reads back from HDF5 (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value
