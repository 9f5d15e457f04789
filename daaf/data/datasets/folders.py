"""Helpers the loaders share: find the dataset folder, list a split's images, relabel train ids."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from daaf.data.datasets.base import IMAGE_SUFFIXES, Sample, check_ids
from daaf.errors import DaafError
from daaf.utils.files import name_problem, printable

NAME_DOES_NOT_PARSE = "file name does not parse"
NOT_A_FILE = (
    "named like an image but not a regular file (a folder, a FIFO, a device, a socket, a broken "
    "link or a link loop)"
)
NAME_NOT_UTF8 = "file name is not UTF-8 (the annotation store cannot record it)"


@dataclass(frozen=True)
class Layout:
    """Entries (files or folders) a dataset folder must hold, and where it may sit under ROOT.

    The dataset folder is ``ROOT/<one of dirs>`` or ROOT itself.
    """

    dirs: tuple[str, ...]
    entries: tuple[str, ...]

    def describe(self) -> str:
        where = " or ".join([f"ROOT/{d}" for d in self.dirs] + ["ROOT itself"])
        return f"{', '.join(self.entries)} in {where}"


def describe_folder(folder: Path, limit: int = 12) -> str:
    """The first entries of ``folder`` for an error message ("nothing" when it is empty)."""
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    shown = ", ".join(entries[:limit])
    if len(entries) > limit:
        shown += f", ... ({len(entries)} entries)"
    return shown or "nothing"


def find_layout(root: Path, *layouts: Layout) -> tuple[Path, Layout]:
    """The dataset folder under ``root`` (or ``root`` itself) and the first layout it matches.

    Raises :class:`DaafError` naming every layout it looked for and what ``root`` holds.
    """
    for layout in layouts:
        for candidate in [root / d for d in layout.dirs] + [root]:
            if all((candidate / entry).exists() for entry in layout.entries):
                return candidate, layout
    expected = "; or ".join(layout.describe() for layout in layouts)
    found = f"found in {root}: {describe_folder(root)}"
    for d in dict.fromkeys(d for layout in layouts for d in layout.dirs):
        if (root / d).is_dir():
            found += f"; in {root / d}: {describe_folder(root / d)}"
    raise DaafError(f"{root}: expected {expected}; {found}")


def add_skipped(skipped: dict[str, list[str]], reason: str, path: str) -> None:
    """Record a file the loader could not use (the CLI shows the count and the first examples)."""
    skipped.setdefault(reason, []).append(path)


def list_images(folder: Path, skipped: dict[str, list[str]], root: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted; other files and sub-folders are ignored, but
    an entry named like an image that is no regular file (never opened), or whose name is not
    UTF-8, goes to ``skipped`` (relative to ``root``)."""
    images = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if not path.is_file():  # a regular file, or a link to one
            add_skipped(skipped, NOT_A_FILE, path.relative_to(root).as_posix())
        elif name_problem(path):
            add_skipped(skipped, NAME_NOT_UTF8, printable(path.relative_to(root).as_posix()))
        else:
            images.append(path)
    return images


def camera_index(number: str) -> int:
    """A 1-based camera number of a file name (Market-1501, Duke, CUHK03-NP) -> 0-based camid;
    ValueError for camera 0, which those datasets do not have."""
    if int(number) < 1:
        raise ValueError(f"camera c{number}: this dataset numbers its cameras from 1")
    return int(number) - 1


def parse_split_folder(
    image_dir: Path,
    folder: str,
    parse_name: Callable[[str], tuple[int, int] | None],
    skipped: dict[str, list[str]],
) -> list[Sample]:
    """Samples of the images in ``image_dir/folder``; names that ``parse_name`` rejects go to ``skipped``.

    ``parse_name`` maps a file stem to ``(pid, camid)``, None (skipped) or raises ValueError (a
    name that breaks the dataset's rules: refused, naming the file). An empty folder is an error.
    """
    split_dir = image_dir / folder
    if not split_dir.is_dir():
        raise DaafError(
            f"{split_dir}: expected a folder of images; found {describe_folder(image_dir)}"
        )
    images = list_images(split_dir, skipped, image_dir)
    if not images:
        raise DaafError(
            f"{split_dir}: no images found (expected .jpg/.png files); found {describe_folder(split_dir)}"
        )
    samples = []
    for path in images:
        try:
            parsed = parse_name(path.stem)
        except ValueError as exc:
            raise DaafError(f"{path}: {exc}") from None
        relative = path.relative_to(image_dir).as_posix()
        if parsed is None:
            add_skipped(skipped, NAME_DOES_NOT_PARSE, relative)
            continue
        check_ids(path, *parsed)  # before relabelling hides a train id that does not fit
        samples.append(Sample(relative, *parsed))
    return samples


def relabel(samples: list[Sample]) -> list[Sample]:
    """Training ids to 0..P-1 in sorted order of the original ids, so every process agrees."""
    labels = {pid: label for label, pid in enumerate(sorted({s.pid for s in samples}))}
    return [replace(s, pid=labels[s.pid]) for s in samples]
