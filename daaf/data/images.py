"""Reading dataset images: one RGB reader for training, evaluation and labeling, and a full
decode check that finds missing, non-image and truncated files before a run starts.

Both open a path only once it is known to be a regular file (:func:`daaf.utils.files.open_regular`):
a FIFO or a device named like an image would make ``cv2.imread`` or PIL wait for ever.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from daaf.data.datasets.base import SPLITS, ReIDDataset
from daaf.errors import DaafError
from daaf.utils.files import (
    UnreadableFile,
    name_problem,
    open_regular,
    printable,
)

DECODE_THREADS = 8
NAMED = 3  # unreadable files named in an error message
MAX_IMAGE_BYTES = 1 << 30  # read whole into memory to decode: no person crop comes near it


def read_rgb(path: Path) -> np.ndarray:
    """uint8 (H, W, 3) RGB, as ``cv2.imread`` decodes it (EXIF orientation applied); DaafError
    naming the file when it is missing, no regular file, too large or not an image. The bytes
    are decoded from memory: ``cv2.imread`` crashes the process on a name that is not UTF-8."""
    with open_regular(path, "image") as file:
        size = os.fstat(file.fileno()).st_size
        if size > MAX_IMAGE_BYTES:
            raise DaafError(f"{printable(str(path))}: {size:,} bytes is too large for an image")
        data = np.frombuffer(file.read(), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise DaafError(f"{printable(str(path))}: missing or not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_rgb_or_none(path: Path) -> np.ndarray | None:
    """:func:`read_rgb`'s image, or None where it would raise (a picture then shows a blank)."""
    try:
        return read_rgb(path)
    except DaafError:
        return None


def image_problem(path: Path) -> str | None:
    """Why ``path`` cannot be decoded completely (missing, not an image, truncated), or None.

    Decodes with PIL, which raises on a truncated file, where ``cv2.imread`` returns a partly
    grey image with only a libjpeg warning; then asks OpenCV, which :func:`read_rgb` uses,
    whether it reads the format (TGA, PCX, ICO: PIL does, OpenCV does not). A path that is no
    regular file (a FIFO, a device) or whose name is not UTF-8 is not opened.
    """
    problem = name_problem(path)
    if problem is not None:
        return problem
    try:
        with open_regular(path, "image") as file, Image.open(file) as image:
            image.load()
            kind = image.format
    except UnreadableFile as exc:  # missing, no regular file, no permission
        return exc.problem
    except UnidentifiedImageError:
        return "cannot be decoded: not an image file (no format PIL knows)"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return f"cannot be decoded: {exc}"
    if not cv2.haveImageReader(str(path)):  # reads the signature only
        return f"cannot be decoded: a {kind} file, a format OpenCV does not read"
    return None


def find_unreadable(
    paths: Iterable[Path], progress: bool = False, threads: int = DECODE_THREADS
) -> list[tuple[Path, str]]:
    """``(path, reason)`` for every file of ``paths`` that does not decode completely, in order."""
    paths = list(paths)
    with ThreadPoolExecutor(threads) as pool:
        problems = list(
            tqdm(
                pool.map(image_problem, paths),
                total=len(paths),
                desc="decode",
                unit="img",
                disable=not progress,
            )
        )
    return [(path, problem) for path, problem in zip(paths, problems, strict=True) if problem]


def dataset_image_paths(dataset: ReIDDataset, splits: tuple[str, ...] = SPLITS) -> list[Path]:
    """The image files of ``splits`` of ``dataset``, in split order."""
    return [dataset.image_dir / s.path for split in splits for s in dataset.split(split)]


def check_dataset_images(dataset: ReIDDataset, splits: tuple[str, ...] = SPLITS) -> None:
    """Raise DaafError naming the first images of ``splits`` that do not decode completely, so
    that a run stops before it writes anything instead of in a DataLoader worker."""
    unreadable = find_unreadable(dataset_image_paths(dataset, splits))
    if unreadable:
        named = "; ".join(f"{path} ({reason})" for path, reason in unreadable[:NAMED])
        more = f" and {len(unreadable) - NAMED} more" if len(unreadable) > NAMED else ""
        raise DaafError(
            f"{len(unreadable)} image(s) of dataset {dataset.name} cannot be decoded: "
            f"{named}{more}; `daaf datasets check {dataset.name} --root DIR --decode` lists them"
        )
