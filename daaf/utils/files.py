"""Safe file handling: atomic writes, output paths checked before any work, the marker by which
daaf proves it made a folder before it deletes or replaces anything in it, and input files read
only when they are regular files.

A reader never sees a half-written shard, manifest, checkpoint or model (:func:`atomic_write`).
daaf deletes or replaces only folders that hold its marker (:data:`MARKER_NAME`, written by
:func:`mark_dir` into a folder daaf creates), never a folder that merely holds the expected
file names: those may be anyone's.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from daaf.errors import DaafError, shorten

MARKER_NAME = ".daaf"  # {"made_by": "daaf", "kind": ...}: daaf made this folder
LOCK_NAME = ".daaf.lock"  # held while a run writes into the folder (daaf.utils.lock)
BOOKKEEPING = (MARKER_NAME, LOCK_NAME)
FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
LINE_BREAKING = ("Cc", "Cs", "Zl", "Zp")  # Unicode categories `printable` escapes


def file_kind(mode: int) -> str:
    """What a file of ``os.stat`` mode ``mode`` is, in words, when it is no regular file."""
    return next((kind for test, kind in FILE_KINDS if test(mode)), "not a regular file")


def printable(text: str) -> str:
    """``text`` as one printable line: control characters (a newline in a file name) and line
    separators as escapes (``\\n``), bytes that are not UTF-8 (a file name's, which Python keeps
    as surrogate escapes and cannot print) as ``\\xff``."""
    if text.isprintable():
        return text
    shown = []
    for char in text:
        if unicodedata.category(char) not in LINE_BREAKING:
            shown.append(char)
        elif 0xDC80 <= ord(char) <= 0xDCFF:  # a byte os.fsdecode could not decode
            shown.append(f"\\x{ord(char) - 0xDC00:02x}")
        else:
            shown.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(shown)


def name_problem(path: str | Path) -> str | None:
    """Why daaf cannot record ``path``'s name (its bytes are not UTF-8), or None."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not UTF-8 (rename the file)"
    return None


def regular_file_problem(path: str | Path) -> str | None:
    """Why ``path`` is no regular file that can be read (missing, a FIFO, a device, a folder,
    ...), or None; it is never opened, so a FIFO or a device cannot make a reader wait."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        return f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
    return None if stat.S_ISREG(mode) else f"{file_kind(mode)}, not a regular file"


class UnreadableFile(DaafError):
    """A path that is no regular file daaf can read; ``problem`` says why, without the path
    (:func:`regular_file_problem`'s words)."""

    def __init__(self, path: str | Path, problem: str, what: str = "file") -> None:
        said = f"no such {what}" if problem == "missing" else problem
        super().__init__(f"{printable(str(path))}: {said}")
        self.problem = problem


def open_regular(path: str | Path, what: str = "file") -> BinaryIO:
    """``path`` opened for reading bytes if it is a regular file, else :class:`UnreadableFile`
    (``no such {what}``, a FIFO, a device, ...). The kind is checked before it is opened and
    again on what was opened, without waiting on a FIFO that took its place."""
    problem = regular_file_problem(path)
    if problem is not None:
        raise UnreadableFile(path, problem, what)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise UnreadableFile(path, f"cannot be read ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnreadableFile(path, f"{file_kind(mode)}, not a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_text(path: str | Path, what: str = "file") -> str:
    """The UTF-8 text of the regular file ``path`` (:func:`open_regular`); a DaafError of one
    line naming it when it is missing, no regular file, or not UTF-8."""
    with open_regular(path, what) as file:
        data = file.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DaafError(f"{printable(str(path))}: not a UTF-8 text {what} ({exc.reason})") from None


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
    it is not writable, or an existing file is not a regular one (a FIFO, a device), or a name
    in it is longer than the file system allows. Creates nothing."""
    path = Path(path)
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    _check_name_lengths(path, existing, option)
    if existing == path:
        kind, wanted = _existing_kind(path), "a folder" if folder else "a file"
        if kind != wanted:
            shown = printable(str(path))
            raise DaafError(f"{option} {shown}: {shown} is {kind}, not {wanted}")
        existing = path if folder else path.parent
    elif not existing.is_dir():
        raise DaafError(
            f"{option} {printable(str(path))}: {printable(str(existing))} is "
            f"{_existing_kind(existing)}, not a folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DaafError(f"{option} {path}: cannot write into {existing} (permission denied)")


def _check_name_lengths(path: Path, existing: Path, option: str) -> None:
    """DaafError if a name in ``path`` is longer than the file system of ``existing`` (its
    deepest existing folder) allows: every look at it would fail with 'File name too long'."""
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except OSError:
        limit = 255
    size = max(len(os.fsencode(part)) for part in path.parts)
    if size > limit:
        raise DaafError(
            f"{option} {shorten(printable(str(path)), 120)}: a name of {size} bytes, more than the "
            f"{limit} its file system allows"
        )


def _existing_kind(path: Path) -> str:
    """ "a folder", "a file" (a regular one), or what else ``path`` is (:func:`file_kind`)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "a broken link"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a file" if stat.S_ISREG(mode) else file_kind(mode)


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
    ``kind``, so that the next run may replace those files; nothing is made if nothing was.
    A run that fails (a refused model) before writing a file removes the folders it made."""
    folder = Path(folder)
    made = _missing_folders(folder)
    try:
        yield
    except BaseException:
        for empty in made:  # deepest first; a folder that holds anything stays
            if not empty.is_dir() or any(empty.iterdir()):
                break
            empty.rmdir()
        raise
    finally:
        if folder.is_dir() and not made_by_daaf(folder, kind):
            mark_dir(folder, kind)


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its parents that do not exist yet, deepest first."""
    missing = []
    while not os.path.lexists(folder) and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


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
