"""Safe file handling: atomic writes, output paths checked before any work, and the marker by
which daaf proves it made a folder before it deletes or replaces anything in it.

A reader never sees a half-written shard, manifest, checkpoint or model (:func:`atomic_write`).
daaf deletes or replaces only folders that hold its marker (:data:`MARKER_NAME`, written by
:func:`mark_dir` into a folder daaf creates), never a folder that merely holds the expected
file names: those may be anyone's.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from daaf.errors import DaafError

MARKER_NAME = ".daaf"  # {"made_by": "daaf", "kind": ...}: daaf made this folder
LOCK_NAME = ".daaf.lock"  # held while a run writes into the folder (daaf.utils.lock)
BOOKKEEPING = (MARKER_NAME, LOCK_NAME)


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` to ``<name>.tmp-<pid>`` beside ``path``, then rename it to ``path``; the
    temporary file is removed when ``write`` fails (an interrupted run leaves no partial file)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def check_output_path(path: str | Path, option: str = "--out", folder: bool = True) -> None:
    """DaafError, before any work, if ``path`` (a folder, or a file if not ``folder``) cannot be
    written: it or a parent is a file where a folder is needed, or the folder that would hold
    it is not writable. Creates nothing."""
    path = Path(path)
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if existing == path:
        if path.is_dir() != folder:
            what = "a folder, not a file" if path.is_dir() else "a file, not a folder"
            raise DaafError(f"{option} {path}: {path} is {what}")
        existing = path if folder else path.parent
    elif not existing.is_dir():
        raise DaafError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DaafError(f"{option} {path}: cannot write into {existing} (permission denied)")


def check_output_dir(folder: str | Path, kind: str, option: str = "--out") -> None:
    """DaafError, before any work, unless a command can write its outputs (``kind``) into
    ``folder``: writable (:func:`check_output_path`), and new, empty, or marked as daaf's
    folder of ``kind`` by an earlier run (:func:`marked_output`). A folder of someone's files is
    refused whatever their names: daaf replaces only files it can prove it made. Creates
    nothing."""
    check_output_path(folder, option)
    folder = Path(folder)
    if folder.is_dir() and user_entries(folder) and not made_by_daaf(folder, kind):
        raise DaafError(
            f"{option} {folder} holds files that daaf did not write (it has no {MARKER_NAME} "
            f"marker of {kind}); daaf writes only into a new or empty folder, or one of its own, "
            f"so as to replace nothing of yours: use another {option}"
        )


@contextmanager
def marked_output(folder: str | Path, kind: str) -> Iterator[None]:
    """Around a command's writing into ``folder``, checked by :func:`check_output_dir`: once it
    has written (or failed half-way), a folder it made or found empty gets daaf's marker of
    ``kind``, so that the next run may replace those files; nothing is made if nothing was."""
    try:
        yield
    finally:
        folder = Path(folder)
        if folder.is_dir() and not made_by_daaf(folder, kind):
            mark_dir(folder, kind)


def user_entries(folder: Path) -> list[Path]:
    """The entries of ``folder`` other than daaf's marker and lock file, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.name not in BOOKKEEPING)


def mark_dir(folder: Path, kind: str) -> None:
    """Create ``folder`` (and its parents) and write daaf's marker of ``kind`` into it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"made_by": "daaf", "kind": kind}) + "\n"
    atomic_write(folder / MARKER_NAME, lambda tmp: tmp.write_text(text))


def claim_dir(folder: Path, kind: str) -> None:
    """Create ``folder`` and mark it as made by daaf if it is new or empty; a folder that
    already holds other files is used as it is, unmarked (daaf will not delete it)."""
    folder = Path(folder)
    if not folder.is_dir() or not user_entries(folder):
        mark_dir(folder, kind)


def made_by_daaf(folder: Path, kind: str) -> bool:
    """Whether ``folder`` holds daaf's marker of ``kind``."""
    try:
        marker = json.loads((Path(folder) / MARKER_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and (marker.get("made_by"), marker.get("kind")) == (
        "daaf",
        kind,
    )


def check_made_by_daaf(folder: Path, kind: str) -> None:
    """DaafError, naming ``folder``, unless it holds daaf's marker of ``kind``."""
    if not made_by_daaf(folder, kind):
        raise DaafError(
            f"{folder} was not made by daaf (no {MARKER_NAME} marker of a {kind}); daaf deletes "
            "only folders it made: move it away yourself"
        )


def remove_dir(folder: Path, kind: str) -> None:
    """Delete ``folder``, which must hold daaf's marker of ``kind`` (DaafError otherwise).

    The marker goes last, so that a removal interrupted half-way can be finished by the next run.
    """
    folder = Path(folder).resolve()
    check_made_by_daaf(folder, kind)
    for entry in user_entries(folder):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    (folder / MARKER_NAME).unlink()
    shutil.rmtree(folder)  # the lock file, if any
