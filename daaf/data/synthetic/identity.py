"""What makes one synthetic person recognisable: body proportions, clothing, hair, shoes, bag.

An :class:`Identity` is drawn once from the identity's own random stream and is the only
thing that differs between two people; pose, viewpoint, scene and lighting are drawn per
image, so a model has to learn the person to tell identities apart.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

# What to paint a region with: an RGB colour, or a function of (rows, cols) giving the patch.
Fill = np.ndarray | list[float] | Callable[[slice, slice], np.ndarray]
PATTERNS = ("solid", "hstripes", "vstripes", "checks", "twotone")
BAGS = ("none", "backpack", "shoulder")
SKIN_TONES = np.array(
    [
        [236, 188, 160],
        [224, 172, 140],
        [198, 134, 66],
        [141, 85, 36],
        [255, 219, 172],
        [110, 70, 45],
    ],
    np.float64,
)


def random_color(rng: np.random.Generator, saturation=(40, 256), value=(40, 256)) -> np.ndarray:
    """An RGB colour (float64 (3,)) of any hue, drawn in HSV so that hues are spread evenly."""
    hsv = np.array(
        [[[rng.integers(0, 180), rng.integers(*saturation), rng.integers(*value)]]], np.uint8
    )
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


@dataclass(frozen=True)
class Clothing:
    """A garment's look: main and second colour, a pattern of ``PATTERNS`` and its period (px)."""

    color: np.ndarray
    second: np.ndarray
    pattern: str
    period: int

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Clothing:
        return cls(
            random_color(rng), random_color(rng), str(rng.choice(PATTERNS)), int(rng.integers(3, 7))
        )

    def patch(self, origin: tuple[float, float], rows: slice, cols: slice) -> np.ndarray:
        """float64 (h, w, 3) of the pattern over ``rows`` x ``cols``, anchored at ``origin`` (x, y)."""
        ys = np.arange(rows.start, rows.stop)[:, None] - origin[1]
        xs = np.arange(cols.start, cols.stop)[None, :] - origin[0]
        period = self.period
        if self.pattern == "hstripes":
            first = (ys // period) % 2 == 0
        elif self.pattern == "vstripes":
            first = (xs // period) % 2 == 0
        elif self.pattern == "checks":
            first = ((ys // period) + (xs // period)) % 2 == 0
        elif self.pattern == "twotone":
            first = ys < 2.5 * period
        else:
            return np.broadcast_to(self.color, (len(ys), xs.shape[1], 3))
        return np.where(first[..., None], self.color, self.second)

    def fill(self, origin: tuple[float, float]) -> Fill:
        """This garment as a :data:`Fill` anchored at ``origin``, so the pattern moves with the body."""
        return functools.partial(self.patch, (float(origin[0]), float(origin[1])))


@dataclass(frozen=True)
class Identity:
    """One person's appearance; lengths are pixels at scale 1 in a 128x64 image."""

    height: float  # top of the head to the soles
    head_radius: float
    shoulder: float  # half width
    hip: float  # half width
    depth: float  # half depth of the torso (its half width seen from the side)
    leg_fraction: float  # hip height / height
    limb: float  # arm thickness; legs are 1.3x
    skin: np.ndarray
    hair: np.ndarray
    long_hair: bool
    upper: Clothing
    lower: Clothing
    short_sleeves: bool
    shorts: bool
    shoes: np.ndarray
    bag: str  # one of BAGS
    bag_color: np.ndarray
    bag_side: int  # +1: the shoulder bag hangs on the person's left

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Identity:
        shoulder = rng.uniform(8.0, 12.5)
        return cls(
            height=rng.uniform(98, 120),
            head_radius=rng.uniform(6.0, 8.5),
            shoulder=shoulder,
            hip=shoulder * rng.uniform(0.55, 0.8),
            depth=shoulder * rng.uniform(0.4, 0.55),
            leg_fraction=rng.uniform(0.44, 0.52),
            limb=rng.uniform(3.0, 5.0),
            skin=SKIN_TONES[rng.integers(len(SKIN_TONES))] * rng.uniform(0.9, 1.05),
            hair=random_color(rng, value=(20, 160)),
            long_hair=bool(rng.random() < 0.35),
            upper=Clothing.draw(rng),
            lower=Clothing.draw(rng),
            short_sleeves=bool(rng.random() < 0.4),
            shorts=bool(rng.random() < 0.25),
            shoes=random_color(rng, value=(20, 220)),
            bag=str(rng.choice(BAGS, p=[0.5, 0.25, 0.25])),
            bag_color=random_color(rng),
            bag_side=int(rng.choice([-1, 1])),
        )

    def garments(self) -> list[Clothing]:
        """The patterned things this person wears (the background borrows them for clutter)."""
        bag = Clothing(self.bag_color, self.bag_color * 0.7, "solid", 4)
        return [self.upper, self.lower, bag]
