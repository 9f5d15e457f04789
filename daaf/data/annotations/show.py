"""A picture of a store: a grid of images with the mask overlaid and the COCO skeleton drawn."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from daaf.data.annotations.reader import AnnotationStore
from daaf.data.annotations.schema import STATUS_NAMES, STATUS_OK, ImageAnnotation
from daaf.data.keypoints import PIXEL_CENTRE, SKELETON
from daaf.errors import DaafError

SOFTWARE = "daaf annotations show"  # the PNG text by which a grid proves daaf drew it
TILE = (256, 128)  # (height, width) of one grid cell
COLUMNS = 8
MASK_COLOUR = np.array([255, 96, 0], np.float32)  # BGR blue-ish overlay
LEFT, RIGHT, CENTRE = (0, 220, 0), (0, 140, 255), (0, 255, 255)  # BGR: left green, right orange


def _side(k: int) -> tuple[int, int, int]:
    return CENTRE if k == 0 else (LEFT if k % 2 else RIGHT)


def draw_annotation(annotation: ImageAnnotation, image: np.ndarray | None) -> np.ndarray:
    """One TILE-sized BGR picture: ``image`` (or a grey canvas), mask overlay, skeleton, status."""
    tile_h, tile_w = TILE
    height, width = annotation.image_size
    if height == 0 or width == 0:
        height, width = annotation.mask.shape
    if image is None:
        image = np.full((height, width, 3), 128, np.uint8)
    picture = cv2.resize(image, (tile_w, tile_h), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    alpha = cv2.resize(annotation.mask, (tile_w, tile_h)).astype(np.float32)[..., None] / 510.0
    picture = (picture * (1 - alpha) + MASK_COLOUR * alpha).astype(np.uint8)

    scale = np.array([tile_w / width, tile_h / height], np.float32)
    points = annotation.keypoints[:, :2] * scale - PIXEL_CENTRE  # cv2 draws pixel c centred at c
    found = np.isfinite(points).all(axis=1) & (annotation.keypoints[:, 2] > 0)
    for a, b in SKELETON:
        if found[a] and found[b]:
            start, end = (
                tuple(np.rint(points[a]).astype(int)),
                tuple(np.rint(points[b]).astype(int)),
            )
            colour = _side(a) if _side(a) == _side(b) else CENTRE
            cv2.line(picture, start, end, colour, 2, cv2.LINE_AA)
    for k in np.flatnonzero(found):
        cv2.circle(picture, tuple(np.rint(points[k]).astype(int)), 3, _side(k), -1, cv2.LINE_AA)
    if annotation.status != STATUS_OK:
        cv2.putText(
            picture,
            STATUS_NAMES[annotation.status],
            (4, 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (0, 0, 255),
            1,
            cv2.LINE_AA,
        )
    return picture


def draw_grid(
    store: AnnotationStore,
    out_path: str | Path,
    n: int = 16,
    image_dir: str | Path | None = None,
    seed: int = 0,
) -> Path:
    """Draw ``n`` images picked at random (``seed``) into a PNG grid at ``out_path``.

    With ``image_dir`` (the dataset's image folder) the real images are drawn; without it, or
    when an image cannot be read, a grey canvas of the image's size.
    """
    rng = np.random.default_rng(seed)
    paths = store.manifest["image_path"].to_numpy()
    chosen = rng.choice(len(paths), size=min(n, len(paths)), replace=False)
    tiles = []
    for path in paths[np.sort(chosen)]:
        image = cv2.imread(str(Path(image_dir) / path)) if image_dir is not None else None
        tiles.append(draw_annotation(store.get(path), image))
    columns = min(COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    gap = 4
    grid = np.full(
        (rows * (TILE[0] + gap) - gap, columns * (TILE[1] + gap) - gap, 3), 255, np.uint8
    )
    for i, tile in enumerate(tiles):
        y, x = (i // columns) * (TILE[0] + gap), (i % columns) * (TILE[1] + gap)
        grid[y : y + TILE[0], x : x + TILE[1]] = tile
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    text = PngInfo()
    text.add_text("Software", SOFTWARE)
    try:
        Image.fromarray(grid[:, :, ::-1]).save(out_path, pnginfo=text)  # other formats ignore it
    except (ValueError, KeyError, OSError) as exc:
        raise DaafError(
            f"cannot write the picture {out_path} ({exc}); use a .png or .jpg file name"
        ) from None
    return out_path


def drawn_by_daaf(path: str | Path) -> bool:
    """Whether the picture at ``path`` is a grid :func:`draw_grid` drew (its PNG text says so):
    the only file ``daaf annotations show --out`` replaces."""
    try:
        with Image.open(path) as image:
            return getattr(image, "text", {}).get("Software") == SOFTWARE
    except (OSError, ValueError):
        return False
