"""Loading weight files that anyone may have written, without running code they hold.

A pickle runs whatever its author chose when it is loaded. daaf reads every ``.pt``/``.pth``
file with ``torch.load(weights_only=True)`` (:func:`load_weights_only`), and checks a
third-party weight file that a backend library would unpickle itself (detectron2's ``.pkl``,
mmengine's ``.pth``) with a restricted unpickler first (:func:`check_weights_file`): tensors,
NumPy arrays, numbers, strings, lists and dicts only. A refusal is one DaafError line naming
the file.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path
from typing import Any

from daaf.errors import DaafError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
REFUSED = (
    "refused: loading it would need to run code or unpickle arbitrary objects "
    "(torch.load weights_only=True); daaf only loads files of tensors, numbers, strings, "
    "lists and dicts"
)


def describe_exception(exc: BaseException) -> str:
    """``Type: first line of the message``: an exception as a part of daaf's one-line errors."""
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text.splitlines()[0]}" if text else exc.__class__.__name__


def _array_globals() -> dict[str, Any]:
    """The globals a pickled NumPy array calls, by the names NumPy 1 and 2 pickle them under,
    and the two harmless ones plain pickles of dicts and bytes use."""
    import codecs

    import numpy as np

    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    found = {
        "numpy.ndarray": np.ndarray,
        "numpy.dtype": np.dtype,
        "collections.OrderedDict": collections.OrderedDict,
        "_codecs.encode": codecs.encode,
    }
    for package in ("numpy.core", "numpy._core"):
        found[f"{package}.multiarray._reconstruct"] = multiarray._reconstruct
        found[f"{package}.multiarray.scalar"] = multiarray.scalar
    for code in "?bBhHiIlLqQefdgFDGUSV":  # the dtype classes torch's unpickler builds
        cls = type(np.dtype(code))
        found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (``torch.jit.save``): code as well as weights."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def load_weights_only(path: Path, numpy: bool = False) -> Any:
    """What ``torch.load(path, weights_only=True)`` gives, on the CPU; ``numpy`` also allows
    NumPy arrays. DaafError naming ``path`` when it is missing, unreadable, or would need more
    than tensors, numbers, strings, lists and dicts (never an UnpicklingError traceback)."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise DaafError(f"{path}: no such file")
    if _is_torchscript(path):  # torch.load would hand it to torch.jit.load
        raise DaafError(f"{path}: {REFUSED} (this is a TorchScript archive)")
    try:
        extra = [(obj, name) for name, obj in _array_globals().items()] if numpy else []
        with torch.serialization.safe_globals(extra):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        if zipfile.is_zipfile(path) or _is_legacy_torch(path):  # a torch.save file of objects
            raise DaafError(f"{path}: {REFUSED}") from None
        raise DaafError(f"{path}: not a readable .pt file (not a torch.save zip archive)") from None
    except Exception as exc:  # truncated or corrupted archive, or no torch file at all
        raise DaafError(f"{path}: not a readable .pt file ({_unreadable(path, exc)})") from None


def _unreadable(path: Path, exc: BaseException) -> str:
    """Why ``torch.load`` failed on ``path``, in words a user can act on: torch's own error
    (a ``KeyError: 101`` for a text file, an ``EOFError`` for an empty one) says nothing."""
    with open(path, "rb") as f:
        head = f.read(4)
    if not head:
        return "an empty file"
    if zipfile.is_zipfile(path) or _is_legacy_torch(path):  # damaged inside
        return describe_exception(exc)
    if head == b"PK\x03\x04":  # a zip archive's first entry, without its end
        return "a truncated or damaged torch.save zip archive"
    return "not a torch.save zip archive"


class _Refused(pickle.UnpicklingError):
    pass


class _ArraysOnly(pickle.Unpickler):
    """A plain pickle of NumPy arrays, numbers, strings, lists and dicts (detectron2's model
    zoo ``.pkl``); any other global is refused before it is called."""

    def find_class(self, module: str, name: str) -> Any:
        allowed = _array_globals()
        if f"{module}.{name}" not in allowed:
            raise _Refused(f"global {module}.{name} is not allowed")
        return allowed[f"{module}.{name}"]


def _is_legacy_torch(path: Path) -> bool:
    """Whether ``path`` starts as torch.save's pre-1.6 (non-zip) format does."""
    try:
        with open(path, "rb") as f:
            return _ArraysOnly(f).load() == LEGACY_MAGIC
    except Exception:  # noqa: BLE001 - anything else is not that format
        return False


def check_weights_file(path: Path) -> None:
    """DaafError unless ``path`` holds only tensors, NumPy arrays, numbers, strings, lists and
    dicts: a plain pickle (detectron2's ``.pkl``) read with :class:`_ArraysOnly`, or a
    ``torch.save`` file (zip or legacy) loaded with ``weights_only=True``. For a file that a
    library then unpickles itself."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        load_weights_only(path, numpy=True)
        return
    if not path.is_file():
        raise DaafError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            _ArraysOnly(f, encoding="latin1").load()
            more = f.read(1)
    except _Refused:
        raise DaafError(f"{path}: {REFUSED}") from None
    except Exception as exc:  # truncated, or not a pickle at all
        raise DaafError(f"{path}: not a readable weight file ({describe_exception(exc)})") from None
    if more:  # several pickles: torch's legacy format, which torch.load reads past the first
        load_weights_only(path, numpy=True)
