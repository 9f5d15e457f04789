"""What ``daaf embed`` and ``daaf search`` read: folders (recursively), image files and text lists
of images, expanded into one ordered list of image paths."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from daaf.data.datasets.base import IMAGE_SUFFIXES
from daaf.errors import DaafError
from daaf.utils.files import printable, read_text

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
    relative lines are relative to the list file's folder. A list that is no regular file,
    not UTF-8 text, or holds a NUL byte (a binary file) is a DaafError naming it."""
    lines = read_text(list_file, "list of images").splitlines()
    binary = next((n for n, line in enumerate(lines, 1) if "\0" in line), None)
    if binary is not None:
        raise DaafError(
            f"{printable(str(list_file))}: line {binary} holds a NUL byte: not a text list of images"
        )
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
        shown = printable(str(path))
        if path.is_dir():
            found = _folder_images(path)
            if not found:
                raise DaafError(f"{shown}: no images ({suffixes}) in this folder or its subfolders")
            images += found
        elif not path.exists():
            raise DaafError(f"{shown}: no such file or folder")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            images.append(path)  # the reader lists it if it is no readable image
        elif path.suffix.lower() in LIST_SUFFIXES:
            listed = _listed_images(path)
            if not listed:
                raise DaafError(f"{shown}: the list names no image")
            images += listed
        else:
            raise DaafError(
                f"{shown}: neither an image ({suffixes}), a folder, nor a text list "
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
