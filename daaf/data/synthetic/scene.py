"""Everything around the person: a camera's scene palette and lighting, clutter, occluders.

A camera fixes the wall/floor palette, the lighting (gain, colour cast), the noise and the
blur; the clutter itself is redrawn for every image. Some clutter wears the garments of
other identities, so a colour or a pattern at a place in the image does not give away who
is there.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from daaf.data.synthetic.identity import Clothing, Fill, random_color

HEIGHT, WIDTH = 128, 64
AA = cv2.LINE_AA
FOREIGN_CLUTTER = 0.35  # share of clutter shapes painted with other people's garments


@dataclass(frozen=True)
class Camera:
    """What one camera does to all its images."""

    wall: np.ndarray
    floor: np.ndarray
    props: np.ndarray  # (3, 3) colours of the furniture of the scene
    floor_lines: int  # 0: plain floor, else the spacing of its tiles (px)
    gain: float
    cast: np.ndarray  # per-channel multipliers
    noise: float  # Gaussian noise sigma (grey levels)
    blur: float  # Gaussian blur sigma (px), 0 for none

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Camera:
        return cls(
            wall=random_color(rng, saturation=(0, 160), value=(60, 230)),
            floor=random_color(rng, saturation=(0, 120), value=(40, 200)),
            props=np.stack([random_color(rng) for _ in range(3)]),
            floor_lines=int(rng.choice([0, 6, 9, 12])),
            gain=rng.uniform(0.75, 1.2),
            cast=rng.uniform(0.85, 1.15, 3),
            noise=rng.uniform(1.5, 6.0),
            blur=float(rng.choice([0.0, rng.uniform(0.4, 0.9)])),
        )


def _jitter(color: np.ndarray, rng: np.random.Generator) -> list[float]:
    return np.clip(color * rng.uniform(0.75, 1.25), 0, 255).tolist()


def paint(
    image: np.ndarray, region: np.ndarray, fill: Fill, layer: np.ndarray | None = None
) -> None:
    """Alpha-blend ``fill`` into ``image`` where ``region`` (uint8 coverage) is set.

    Only the region's bounding box is touched; ``layer`` (uint8), if given, takes the union
    of the coverages (the person's mask is painted this way).
    """
    x, y, w, h = cv2.boundingRect(region)
    if w == 0:
        return
    rows, cols = slice(y, y + h), slice(x, x + w)
    alpha = region[rows, cols, None] / 255.0
    color = fill(rows, cols) if callable(fill) else np.asarray(fill, np.float64)
    image[rows, cols] += alpha * (color - image[rows, cols])
    if layer is not None:
        np.maximum(layer[rows, cols], region[rows, cols], out=layer[rows, cols])


def draw_background(
    rng: np.random.Generator, camera: Camera, foreign: list[Clothing]
) -> np.ndarray:
    """float64 (128, 64, 3) RGB scene: wall, floor, then 8-16 clutter shapes of random kinds."""
    image = np.empty((HEIGHT, WIDTH, 3))
    horizon = int(rng.integers(50, 100))
    image[:horizon] = camera.wall
    image[horizon:] = camera.floor
    image[:horizon] *= np.linspace(0.85, 1.1, horizon)[:, None, None]  # light from above
    if camera.floor_lines:
        shade = (camera.floor * 0.7).tolist()
        for y in range(horizon + int(rng.integers(camera.floor_lines)), HEIGHT, camera.floor_lines):
            cv2.line(image, (0, y), (WIDTH, y), shade, 1)
        for x in range(int(rng.integers(-40, 0)), WIDTH + 40, camera.floor_lines * 2):
            cv2.line(image, (x, horizon), (x + (x - WIDTH // 2) // 2, HEIGHT), shade, 1, AA)
    for _ in range(int(rng.integers(8, 17))):
        worn = (
            foreign[rng.integers(len(foreign))]
            if foreign and rng.random() < FOREIGN_CLUTTER
            else None
        )
        color = _jitter(camera.props[rng.integers(3)], rng)
        region = np.zeros((HEIGHT, WIDTH), np.uint8)
        x, y = int(rng.integers(-8, WIDTH + 8)), int(rng.integers(-8, HEIGHT + 8))
        kind = int(rng.integers(5))
        if kind == 0:  # box, door, window
            w, h = int(rng.integers(4, 30)), int(rng.integers(4, 50))
            cv2.rectangle(region, (x, y), (x + w, y + h), 255, -1)
        elif kind == 1:  # round thing
            cv2.circle(region, (x, y), int(rng.integers(3, 14)), 255, -1, AA)
        elif kind == 2:  # cable, rail, edge
            end = (x + int(rng.integers(-40, 41)), y + int(rng.integers(-40, 41)))
            cv2.line(region, (x, y), end, 255, int(rng.integers(1, 4)), AA)
        elif kind == 3:  # slanted surface
            pts = np.stack([rng.integers(-10, WIDTH + 10, 3), rng.integers(-10, HEIGHT + 10, 3)], 1)
            cv2.fillPoly(region, [pts.astype(np.int32)], 255, AA)
        else:  # upright capsule: a post, a coat on a hook, a person-sized blob
            w = int(rng.integers(3, 9))
            cv2.line(
                region,
                (x, y),
                (x + int(rng.integers(-3, 4)), y + int(rng.integers(15, 50))),
                255,
                w,
                AA,
            )
        paint(image, region, worn.fill((x, y)) if worn is not None else color)
    return image


OCCLUDERS = ("pole", "box", "object")


def occlude(
    image: np.ndarray, rng: np.random.Generator, camera: Camera, foreign: list[Clothing]
) -> tuple[np.ndarray, str]:
    """Draw an occluder in front of everything; returns where it is, uint8 (128, 64) in {0, 255},
    and its kind.

    Occluders have hard edges, so the person's visible coverage stays a multiple of 1/255.

    ``pole``: a vertical post; ``box``: a low wall, bench or box over the legs; ``object``: a
    round thing (bush, bin, someone's bag) or a passer-by's shoulder at one side.
    """
    region = np.zeros((HEIGHT, WIDTH), np.uint8)
    kind = OCCLUDERS[rng.integers(len(OCCLUDERS))]
    color = _jitter(camera.props[rng.integers(3)], rng)
    if kind == "pole":
        x, w = int(rng.integers(8, WIDTH - 16)), int(rng.integers(6, 16))
        cv2.rectangle(region, (x, 0), (x + w, HEIGHT), 255, -1)
    elif kind == "box":
        top = int(rng.integers(HEIGHT // 2, HEIGHT - 24))
        left, right = int(rng.integers(-20, 20)), int(rng.integers(WIDTH - 20, WIDTH + 20))
        cv2.rectangle(region, (left, top), (right, HEIGHT), 255, -1)
    elif rng.random() < 0.5:
        center = (int(rng.integers(0, WIDTH)), int(rng.integers(HEIGHT // 3, HEIGHT)))
        axes = (int(rng.integers(10, 24)), int(rng.integers(10, 30)))
        cv2.ellipse(region, center, axes, 0, 0, 360, 255, -1)
    else:  # a passer-by entering from one side, in someone else's clothes
        side = int(rng.choice([0, WIDTH]))
        y = int(rng.integers(20, 70))
        cv2.ellipse(region, (side, y + 60), (int(rng.integers(14, 24)), 70), 0, 0, 360, 255, -1)
        if foreign:
            garment = foreign[rng.integers(len(foreign))]
            color = garment.fill((side, y))
    paint(image, region, color)
    return region, kind


def apply_camera(image: np.ndarray, rng: np.random.Generator, camera: Camera) -> np.ndarray:
    """The camera's lighting, sensor noise and blur: float RGB -> uint8 (128, 64, 3)."""
    image = image * (camera.gain * rng.uniform(0.93, 1.07)) * camera.cast
    image += rng.normal(0.0, camera.noise, image.shape)
    if camera.blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), camera.blur)
    return np.clip(image, 0, 255).round().astype(np.uint8)
