"""What a labeler returns for one crop, the ``Labeler`` protocol, and the registry of backends.

A backend is a factory ``build(**options) -> Labeler`` registered under a name. It must fail
before doing any work (missing weights, missing package) with a :class:`~daaf.errors.DaafError`
that says how to fix it, so that ``daaf label`` never half-labels a dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from daaf.data.keypoints import NUM_KEYPOINTS
from daaf.errors import DaafError

STATUS_OK, STATUS_NO_PERSON, STATUS_UNREADABLE = 0, 1, 2


@dataclass
class LabelResult:
    """The chosen person of one crop, in the crop's original pixels.

    ``mask``: float32 (h, w) foreground probability in [0, 1]; ``keypoints``: float32 (17, 3)
    x, y, score in [0, 1] (NaN, NaN, 0 where not found); ``box``: float32 (4,) x1 y1 x2 y2
    (NaN if none); ``score``: detector confidence (0 if none); ``status``: 0 ok, 1 no person.
    """

    mask: np.ndarray
    keypoints: np.ndarray
    box: np.ndarray
    score: float
    status: int = STATUS_OK

    @classmethod
    def empty(cls, height: int, width: int, status: int = STATUS_NO_PERSON) -> LabelResult:
        """No person: empty mask, NaN keypoints and box, score 0."""
        return cls(
            mask=np.zeros((height, width), np.float32),
            keypoints=empty_keypoints(),
            box=np.full(4, np.nan, np.float32),
            score=0.0,
            status=status,
        )


def empty_keypoints() -> np.ndarray:
    """(17, 3) float32 of (NaN, NaN, 0): the schema's "not found"."""
    keypoints = np.zeros((NUM_KEYPOINTS, 3), np.float32)
    keypoints[:, :2] = np.nan
    return keypoints


@runtime_checkable
class Labeler(Protocol):
    """Labels batches of RGB crops.

    ``describe()`` is stored as the shard attribute ``labeler`` (JSON): backend, models, weight
    files and their SHA-256, thresholds, working size, software versions. ``label`` takes a list
    of uint8 (H, W, 3) RGB arrays (sizes may differ) and returns one :class:`LabelResult` each.
    """

    name: str

    def describe(self) -> dict[str, Any]: ...

    def to(self, device: Any) -> Labeler: ...

    def label(self, images: list[np.ndarray]) -> list[LabelResult]: ...


LabelerFactory = Callable[..., Labeler]
LABELERS: dict[str, LabelerFactory] = {}


def register_labeler(name: str) -> Callable[[LabelerFactory], LabelerFactory]:
    """Decorator: register ``build(**options) -> Labeler`` under ``name``."""

    def wrap(factory: LabelerFactory) -> LabelerFactory:
        if name in LABELERS:
            raise ValueError(f"labeler {name!r} is registered twice")
        LABELERS[name] = factory
        return factory

    return wrap


def build_labeler(name: str, **options) -> Labeler:
    """Build backend ``name``; unknown names get an error listing the known ones."""
    from daaf.labeling import detectron2_backend, mmpose_backend, torchvision_backend  # noqa: F401

    if name not in LABELERS:
        raise DaafError(f"unknown labeling backend {name!r}; known: {', '.join(sorted(LABELERS))}")
    return LABELERS[name](**options)
