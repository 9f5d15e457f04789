"""What ``daaf embed`` and ``daaf search`` read: folders (recursively), image files and text lists
of images, expanded into one ordered list of image paths."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from daaf.data.datasets.base import IMAGE_SUFFIXES
from daaf.errors import DaafError

LIST_SUFFIXES = (".txt", ".lst", ".list")


def _folder_images(folder: Path) -> list[Path]:
    """Image files under ``folder``, at any depth, sorted by path (a stable order for --resume)."""
    found = []
    for top, dirs, files in os.walk(folder):
        dirs.sort()
        found += [Path(top, f) for f in sorted(files) if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return found


def _listed_images(list_file: Path) -> list[Path]:
    """The images a text file names, one per line (blank lines and ``#`` comments skipped);
    relative lines are relative to the list file's folder."""
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise DaafError(f"{list_file}: not a UTF-8 text list of images ({exc.reason})") from exc
    entries = [line.strip() for line in lines]
    return [list_file.parent / e for e in entries if e and not e.startswith("#")]


def list_images(paths: Iterable[str | Path]) -> list[Path]:
    """Image paths from folders (searched recursively for the suffixes loaders read), image
    files and text lists (``.txt``, ``.lst``, ``.list``: one image per line), in the given order.

    A path that does not exist, a file of another kind, or inputs with no image at all are a
    DaafError naming the path; listed images are not opened here (unreadable ones are the
    reader's to report).
    """
    suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
    images: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = _folder_images(path)
            if not found:
                raise DaafError(f"{path}: no images ({suffixes}) in this folder or its subfolders")
            images += found
        elif not path.exists():
            raise DaafError(f"{path}: no such file or folder")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)
        elif path.suffix.lower() in LIST_SUFFIXES:
            listed = _listed_images(path)
            if not listed:
                raise DaafError(f"{path}: the list names no image")
            images += listed
        else:
            raise DaafError(
                f"{path}: neither an image ({suffixes}), a folder, nor a text list "
                f"({', '.join(LIST_SUFFIXES)})"
            )
    return images


def common_root(images: list[Path]) -> tuple[str, list[str]]:
    """The deepest folder all ``images`` share (absolute) and their paths relative to it, as
    POSIX strings; ``("", absolute paths)`` when they share only the file system's root."""
    absolute = [Path(os.path.abspath(p)) for p in images]
    root = Path(os.path.commonpath([p.parent for p in absolute])) if absolute else Path("/")
    if root == Path(root.anchor):
        return "", [p.as_posix() for p in absolute]
    return root.as_posix(), [p.relative_to(root).as_posix() for p in absolute]
