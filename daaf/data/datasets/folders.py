"""Helpers every loader uses: find the dataset folder, list a split's images, relabel train ids."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from daaf.data.datasets.base import IMAGE_SUFFIXES, Sample
from daaf.errors import DaafError

MAX_EXAMPLES = 5


def _describe(folder: Path) -> str:
    entries = sorted(p.name for p in folder.iterdir())
    shown = ", ".join(entries[:10]) + (
        f", ... ({len(entries)} entries)" if len(entries) > 10 else ""
    )
    return shown or "nothing"


def find_dataset_dir(root: Path, dataset_dir: str, split_folders: tuple[str, ...]) -> Path:
    """``root/dataset_dir`` or ``root`` itself, whichever holds all ``split_folders``."""
    for candidate in (root / dataset_dir, root):
        if all((candidate / folder).is_dir() for folder in split_folders):
            return candidate
    expected = ", ".join(f"{dataset_dir}/{folder}" for folder in split_folders)
    raise DaafError(f"{root}: expected the folders {expected}; found {_describe(root)}")


def parse_split_folder(
    image_dir: Path,
    folder: str,
    parse_name: Callable[[str], tuple[int, int] | None],
    skipped: dict[str, list[str]],
) -> list[Sample]:
    """Samples of the images in ``image_dir/folder`` (sorted); unparsable names go to ``skipped``."""
    split_dir = image_dir / folder
    images = sorted(p for p in split_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DaafError(
            f"{split_dir}: no images found (expected .jpg/.png files); found {_describe(split_dir)}"
        )
    samples = []
    for path in images:
        parsed = parse_name(path.stem)
        relative = path.relative_to(image_dir).as_posix()
        if parsed is None:
            skipped.setdefault("file name does not parse", []).append(relative)
            continue
        pid, camid = parsed
        samples.append(Sample(relative, pid, camid))
    return samples


def relabel(samples: list[Sample]) -> list[Sample]:
    """Training ids to 0..P-1 in sorted order of the original ids, so every process agrees."""
    labels = {pid: label for label, pid in enumerate(sorted({s.pid for s in samples}))}
    return [replace(s, pid=labels[s.pid]) for s in samples]
