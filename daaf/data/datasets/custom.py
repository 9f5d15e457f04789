"""A user's own dataset, described by a CSV file or by a folder tree.

CSV (read when ``ROOT/dataset.csv`` exists): a header row with the columns ``path,pid,camid,split``
(any order; other columns are ignored), one row per image. ``path`` is relative to ROOT;
``pid`` and ``camid`` are non-negative integers used as given (write 0-based cameras);
``split`` is ``train``, ``query`` or ``gallery``.

Folder tree (otherwise): ``ROOT/{train,query,gallery}/<pid>/<camid>_<anything>.<ext>``, pid the
integer folder name, camid the integer before the first ``_`` of the file name, used as given.

In both, ``train`` may be absent (a test-only dataset) but query and gallery may not; rows or
files that cannot be used are skipped and counted, files that are not images are ignored.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path, PurePosixPath

from daaf.data.datasets.base import IMAGE_SUFFIXES, SPLITS, ReIDDataset, Sample, register_dataset
from daaf.data.datasets.folders import (
    Layout,
    add_skipped,
    describe_folder,
    find_layout,
    list_images,
    relabel,
)
from daaf.errors import DaafError
from daaf.utils.files import read_text, regular_file_problem

CSV_FILE = "dataset.csv"
CSV_COLUMNS = ("path", "pid", "camid", "split")
REQUIRED_SPLITS = ("query", "gallery")


def parse_int(text: str) -> int | None:
    """A non-negative integer, or None."""
    text = text.strip()
    return int(text) if text.isdigit() else None


def read_csv(root: Path, skipped: dict[str, list[str]]) -> dict[str, list[Sample]]:
    """Samples per split from ``root/dataset.csv``."""
    csv_path = root / CSV_FILE
    splits: dict[str, list[Sample]] = {split: [] for split in SPLITS}
    with io.StringIO(read_text(csv_path, "CSV file"), newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise DaafError(
                f"{csv_path}: expected the columns {','.join(CSV_COLUMNS)}; "
                f"missing {', '.join(missing)} (header: {','.join(reader.fieldnames or [])})"
            )
        for line, row in enumerate(reader, start=2):
            path = PurePosixPath((row["path"] or "").strip().replace("\\", "/"))
            pid, camid = parse_int(row["pid"] or ""), parse_int(row["camid"] or "")
            split = (row["split"] or "").strip()
            where = f"line {line}: {path}"
            if split not in splits:
                add_skipped(skipped, "split is not train, query or gallery", where)
            elif pid is None or camid is None:
                add_skipped(skipped, "pid or camid is not a non-negative integer", where)
            elif path.is_absolute() or ".." in path.parts or not path.parts:
                add_skipped(skipped, "path is not relative to ROOT", where)
            elif path.suffix.lower() not in IMAGE_SUFFIXES:
                add_skipped(skipped, "not an image file", where)
            elif problem := regular_file_problem(root / path):
                add_skipped(
                    skipped, "file does not exist" if problem == "missing" else problem, where
                )
            else:
                splits[split].append(Sample(path.as_posix(), pid, camid))
    for split in REQUIRED_SPLITS:
        if not splits[split]:
            raise DaafError(f"{csv_path}: no usable {split} row")
    return splits


def read_split_tree(root: Path, split: str, skipped: dict[str, list[str]]) -> list[Sample]:
    """Samples in ``root/split/<pid>/<camid>_*.<ext>``."""
    split_dir = root / split
    samples = []
    for image in list_images(split_dir, skipped, root):
        add_skipped(skipped, "image not inside a <pid> folder", image.relative_to(root).as_posix())
    for pid_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        pid = parse_int(pid_dir.name)
        for image in list_images(pid_dir, skipped, root):
            relative = image.relative_to(root).as_posix()
            camid = parse_int(image.stem.split("_", 1)[0]) if "_" in image.stem else None
            if pid is None:
                add_skipped(skipped, "pid folder name is not an integer", relative)
            elif camid is None:
                add_skipped(skipped, "file name does not start with <camid>_", relative)
            else:
                samples.append(Sample(relative, pid, camid))
    if not samples:
        raise DaafError(
            f"{split_dir}: no images found (expected <pid>/<camid>_<anything>.jpg); "
            f"found {describe_folder(split_dir)}"
        )
    return samples


@register_dataset(
    "custom",
    f"{CSV_FILE}  (columns {','.join(CSV_COLUMNS)}: path relative to ROOT, camid 0-based,"
    " split train|query|gallery)\n"
    "or the tree {train,query,gallery}/<pid>/<camid>_<anything>.jpg"
    "  (train optional; the CSV wins if both exist)",
)
def load_custom(root: Path) -> ReIDDataset:
    image_dir, layout = find_layout(root, Layout((), (CSV_FILE,)), Layout((), REQUIRED_SPLITS))
    skipped: dict[str, list[str]] = {}
    if layout.entries == (CSV_FILE,):
        splits = read_csv(image_dir, skipped)
    else:
        splits = {
            split: read_split_tree(image_dir, split, skipped)
            if (image_dir / split).is_dir()
            else []
            for split in SPLITS
        }
    return ReIDDataset(
        "custom", image_dir, relabel(splits["train"]), splits["query"], splits["gallery"], skipped
    )
