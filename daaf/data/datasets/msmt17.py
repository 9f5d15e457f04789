"""MSMT17 (Wei et al. 2018), V1 or V2, from its list files.

Layout (V1): ``ROOT/MSMT17_V1/{train,test}/`` and ``ROOT/MSMT17_V1/list_{train,val,query,gallery}.txt``;
V2 has ``mask_train_v2`` and ``mask_test_v2`` instead of ``train`` and ``test``. Each list line
is ``<pid folder>/<file> <pid>``, e.g. ``0000/0000_000_01_0303morning_0015_0.jpg 0``; the third
``_`` field of the file name is the 1-based camera (15 cameras). Training uses the train and
val lists together, as is standard; query and gallery come from the test folder.
"""

from __future__ import annotations

from pathlib import Path

from daaf.data.datasets.base import IMAGE_SUFFIXES, ReIDDataset, Sample, register_dataset
from daaf.data.datasets.folders import Layout, add_skipped, find_layout, relabel
from daaf.errors import DaafError
from daaf.utils.files import read_text, regular_file_problem

LISTS = tuple(f"list_{split}.txt" for split in ("train", "val", "query", "gallery"))
VERSIONS = {  # dataset folder -> (train folder, test folder)
    "MSMT17_V1": ("train", "test"),
    "MSMT17_V2": ("mask_train_v2", "mask_test_v2"),
}
LAYOUTS = tuple(Layout((folder,), (*dirs, *LISTS)) for folder, dirs in VERSIONS.items())


def parse_list_line(line: str) -> tuple[str, int, int] | None:
    """``0000/0000_000_01_0303morning_0015_0.jpg 0`` -> (path, pid 0, camid 0); None if malformed."""
    parts = line.split()
    if len(parts) != 2 or not parts[1].isdigit():
        return None
    fields = Path(parts[0]).name.split("_")
    if len(fields) < 3 or not fields[2].isdigit() or int(fields[2]) < 1:
        return None
    return parts[0], int(parts[1]), int(fields[2]) - 1


def read_list(
    image_dir: Path, list_name: str, folder: str, skipped: dict[str, list[str]]
) -> list[Sample]:
    """Samples listed in ``image_dir/list_name``, paths relative to ``image_dir``."""
    list_path = image_dir / list_name
    samples = []
    for line in read_text(list_path, "list file").splitlines():
        if not line.strip():
            continue
        parsed = parse_list_line(line)
        if parsed is None or Path(parsed[0]).suffix.lower() not in IMAGE_SUFFIXES:
            add_skipped(skipped, f"line of {list_name} does not parse", line.strip())
            continue
        path, pid, camid = parsed
        relative = f"{folder}/{path}"
        problem = regular_file_problem(image_dir / relative)
        if problem is not None:
            add_skipped(skipped, f"listed in {list_name} but {problem}", relative)
            continue
        samples.append(Sample(relative, pid, camid))
    if not samples:
        raise DaafError(f"{list_path}: lists no image found under {image_dir / folder}")
    return samples


@register_dataset(
    "msmt17",
    "MSMT17_V1/{train,test}/0000/0000_000_01_0303morning_0015_0.jpg\n"
    "MSMT17_V1/list_{train,val,query,gallery}.txt  (lines: 0000/0000_000_01_0303morning_0015_0.jpg 0)\n"
    "or MSMT17_V2/{mask_train_v2,mask_test_v2}/ with the same lists; train = train + val lists",
)
def load_msmt17(root: Path) -> ReIDDataset:
    image_dir, layout = find_layout(root, *LAYOUTS)
    train_folder, test_folder = layout.entries[:2]
    skipped: dict[str, list[str]] = {}
    train = [
        sample
        for list_name in ("list_train.txt", "list_val.txt")
        for sample in read_list(image_dir, list_name, train_folder, skipped)
    ]
    query = read_list(image_dir, "list_query.txt", test_folder, skipped)
    gallery = read_list(image_dir, "list_gallery.txt", test_folder, skipped)
    return ReIDDataset("msmt17", image_dir, relabel(train), query, gallery, skipped)
