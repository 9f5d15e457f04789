"""CUHK03 (Li et al. 2014) under the new 767/700 protocol (CUHK03-NP, Zhong et al. 2017).

Two layouts are read, for the ``labeled`` and the ``detected`` boxes alike:

1. The original release plus the protocol files::

       ROOT/cuhk03/cuhk03_release/cuhk-03.mat                  MATLAB v7.3 (HDF5), read with h5py
       ROOT/cuhk03/cuhk03_new_protocol_config_labeled.mat      MATLAB v5, read with scipy
       ROOT/cuhk03/cuhk03_new_protocol_config_detected.mat

   The first run extracts the images once to ``ROOT/cuhk03/images_{labeled,detected}/`` as
   ``{campair}_{pid:03d}_{view}_{image:02d}.png`` (the names the protocol files list; view 1
   or 2 is the camera); later runs reuse that folder.

2. An already extracted CUHK03-NP folder:
   ``ROOT/cuhk03-np/{labeled,detected}/{bounding_box_train,query,bounding_box_test}/0001_c1_1.png``.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

from daaf.data.datasets.base import ReIDDataset, Sample, register_dataset
from daaf.data.datasets.folders import Layout, add_skipped, camera_index, find_layout, relabel
from daaf.data.datasets.market1501 import SPLIT_FOLDERS, load_market_layout
from daaf.errors import DaafError
from daaf.utils.files import open_regular, regular_file_problem

CUHK03_DIR = "cuhk03"
MAT_FILE = "cuhk03_release/cuhk-03.mat"
KINDS = ("labeled", "detected")
PROTOCOL_SPLITS = {"train": "train_idx", "query": "query_idx", "gallery": "gallery_idx"}
PROTOCOL_FIELDS = (*PROTOCOL_SPLITS.values(), "labels", "filelist")
EXTRACTED_NAME = re.compile(r"^(\d+)_(\d+)_([12])_(\d+)\.png$")
NP_NAME = re.compile(r"^(\d+)_c(\d+)_\d+$")


def protocol_file(kind: str) -> str:
    return f"cuhk03_new_protocol_config_{kind}.mat"


def images_folder(kind: str) -> str:
    return f"images_{kind}"


def parse_np_name(stem: str) -> tuple[int, int] | None:
    """CUHK03-NP ``0001_c1_1`` -> (1, 0): pid and 0-based camera; None if the name does not
    parse, ValueError for camera c0."""
    match = NP_NAME.match(stem)
    return None if match is None else (int(match.group(1)), camera_index(match.group(2)))


def extract_images(mat_path: Path, kind: str, out_dir: Path) -> None:
    """Write every ``kind`` image of ``cuhk-03.mat`` to ``out_dir`` as PNG, atomically.

    The file holds ``kind`` as a cell array of 5 camera pairs, each a cell array of
    (identities x 10 images), images 1-5 from the pair's first camera and 6-10 from its
    second; empty cells mark missing images. MATLAB stores every array transposed.
    """
    import cv2
    import h5py
    from tqdm import tqdm

    problem = regular_file_problem(mat_path)
    if problem is not None:  # h5py would wait for ever on a FIFO
        raise DaafError(f"{mat_path}: {problem}")
    partial_dir = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(partial_dir, ignore_errors=True)
    partial_dir.mkdir(parents=True)
    try:
        mat = h5py.File(mat_path, "r")
    except OSError as exc:
        raise DaafError(f"{mat_path}: cannot be read as a MATLAB v7.3 (HDF5) file: {exc}") from exc
    with mat:
        if kind not in mat:
            raise DaafError(f"{mat_path}: has no {kind!r} cell array; found {', '.join(mat)}")
        pairs = [mat[ref][()].T for ref in mat[kind][()].ravel()]  # each (identities, 10) refs
        with tqdm(total=sum(len(p) for p in pairs), desc=f"extract {kind}", unit="id") as bar:
            for pair_index, pair in enumerate(pairs, start=1):
                for pid, refs in enumerate(pair, start=1):
                    for image_index, ref in enumerate(refs, start=1):
                        image = mat[ref][()].T  # (H, W, 3) RGB
                        if image.ndim != 3 or image.size == 0:
                            continue
                        view = 1 if image_index <= 5 else 2
                        name = f"{pair_index}_{pid:03d}_{view}_{image_index:02d}.png"
                        bgr = np.ascontiguousarray(image[:, :, ::-1], dtype=np.uint8)
                        cv2.imwrite(str(partial_dir / name), bgr)
                    bar.update()
    partial_dir.rename(out_dir)


def cell_text(cell: np.ndarray) -> str:
    """The string inside one cell of a scipy-loaded MATLAB cell array of strings."""
    value = np.asarray(cell).ravel()
    return str(value[0]) if value.size else ""


def read_protocol(path: Path) -> dict[str, list[tuple[str, int]]]:
    """Per split, the (file name, pid) pairs a ``cuhk03_new_protocol_config_*.mat`` lists."""
    from scipy.io import loadmat

    try:
        with open_regular(path, "protocol file") as file:
            mat = loadmat(file)
    except (OSError, ValueError, NotImplementedError) as exc:
        raise DaafError(f"{path}: cannot be read as a MATLAB file: {exc}") from exc
    missing = [field for field in PROTOCOL_FIELDS if field not in mat]
    if missing:
        raise DaafError(f"{path}: missing the fields {', '.join(missing)}")
    files = [cell_text(cell) for cell in mat["filelist"].ravel()]
    labels = mat["labels"].ravel().astype(int)
    splits = {}
    for split, field in PROTOCOL_SPLITS.items():
        indices = mat[field].ravel().astype(int) - 1  # MATLAB indices are 1-based
        if indices.size and (indices.min() < 0 or indices.max() >= len(files)):
            raise DaafError(f"{path}: {field} indexes outside filelist (1..{len(files)})")
        splits[split] = [(files[i], int(labels[i])) for i in indices]
    return splits


def load_protocol_split(
    image_dir: Path, kind: str, entries: list[tuple[str, int]], skipped: dict[str, list[str]]
) -> list[Sample]:
    """Samples of one protocol split; names missing from the extracted folder are skipped."""
    folder = images_folder(kind)
    present = {p.name for p in (image_dir / folder).iterdir()}
    samples = []
    for file_name, pid in entries:
        relative = f"{folder}/{file_name}"
        match = EXTRACTED_NAME.match(file_name)
        if match is None:
            add_skipped(skipped, "file name does not parse", relative)
        elif file_name not in present:
            add_skipped(skipped, f"listed in {protocol_file(kind)} but missing", relative)
        else:
            samples.append(Sample(relative, pid, int(match.group(3)) - 1))
    return samples


def load_cuhk03(root: Path, kind: str) -> ReIDDataset:
    """CUHK03 ``kind`` (labeled or detected) boxes under the 767/700 protocol."""
    name = f"cuhk03_{kind}"
    image_dir, layout = find_layout(
        root,
        Layout((CUHK03_DIR,), (MAT_FILE, protocol_file(kind))),
        Layout((CUHK03_DIR,), (images_folder(kind), protocol_file(kind))),
        Layout((f"cuhk03-np/{kind}", kind), tuple(SPLIT_FOLDERS.values())),
    )
    if protocol_file(kind) not in layout.entries:
        return load_market_layout(image_dir, name, (), parse_np_name)
    if not (image_dir / images_folder(kind)).is_dir():
        extract_images(image_dir / MAT_FILE, kind, image_dir / images_folder(kind))
    protocol = read_protocol(image_dir / protocol_file(kind))
    skipped: dict[str, list[str]] = {}
    splits = {
        split: load_protocol_split(image_dir, kind, entries, skipped)
        for split, entries in protocol.items()
    }
    for split, samples in splits.items():
        if not samples:
            raise DaafError(
                f"{image_dir / protocol_file(kind)}: no {split} image found in "
                f"{image_dir / images_folder(kind)}"
            )
    return ReIDDataset(
        name, image_dir, relabel(splits["train"]), splits["query"], splits["gallery"], skipped
    )


def _layout(kind: str) -> str:
    return (
        f"cuhk03/{MAT_FILE} + cuhk03/{protocol_file(kind)}\n"
        f"(images extracted once to cuhk03/{images_folder(kind)}/1_001_1_01.png)\n"
        f"or CUHK03-NP: cuhk03-np/{kind}/{{bounding_box_train,query,bounding_box_test}}/0001_c1_1.png"
    )


@register_dataset("cuhk03_labeled", _layout("labeled"))
def load_cuhk03_labeled(root: Path) -> ReIDDataset:
    return load_cuhk03(root, "labeled")


@register_dataset("cuhk03_detected", _layout("detected"))
def load_cuhk03_detected(root: Path) -> ReIDDataset:
    return load_cuhk03(root, "detected")
