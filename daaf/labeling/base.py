"""What a labeler returns for one crop, the ``Labeler`` protocol, and the registry of backends.

A backend is a factory ``build(**options) -> Labeler`` registered under a name by its module,
which :mod:`daaf.labeling.backends` imports (this module imports no backend). It must fail
before doing any work (missing weights, missing package) with a :class:`~daaf.errors.DaafError`
that says how to fix it, so that ``daaf label`` never half-labels a dataset; an optional
backend's factory is wrapped in :func:`backend_imports` for the missing-package case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from daaf.data.annotations.schema import STATUS_NO_PERSON, STATUS_OK, empty_keypoints
from daaf.data.keypoints import NUM_KEYPOINTS
from daaf.errors import DaafError

INSTALL_COMMAND = "daaf install-backend"  # the one install recipe of each optional backend


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


def result_problem(result: object, height: int, width: int) -> str | None:
    """What breaks the :class:`LabelResult` contract in a backend's ``result`` for a (height,
    width) crop, in a few words, or None: a malformed result is stored as a labeler error
    (status 3), never as a mask or keypoints of garbage, and never stops the run."""
    if not isinstance(result, LabelResult):
        return f"the labeler returned a {type(result).__name__}, not a LabelResult"
    if result.status not in (STATUS_OK, STATUS_NO_PERSON):
        return f"status {result.status!r} is neither {STATUS_OK} (ok) nor {STATUS_NO_PERSON}"
    if result.status == STATUS_NO_PERSON:
        return None  # nothing else is stored
    arrays = {"mask": (height, width), "keypoints": (NUM_KEYPOINTS, 3), "box": (4,)}
    for name, shape in arrays.items():
        value = np.asarray(getattr(result, name))
        if value.shape != shape or value.dtype.kind not in "biuf":
            return f"{name} is a {value.dtype} array of shape {value.shape}, not numbers {shape}"
    mask = np.asarray(result.mask, np.float64)
    if not (np.isfinite(mask).all() and mask.min() >= 0 and mask.max() <= 1):
        return "mask values are not all in [0, 1] (NaN, infinite or out of range)"
    keypoints = np.asarray(result.keypoints, np.float64)
    found = np.isfinite(keypoints[:, :2]).all(axis=1)
    scores = keypoints[found, 2]
    if not (np.isfinite(scores).all() and ((scores >= 0) & (scores <= 1)).all()):
        return "keypoint scores are not all in [0, 1]"
    try:
        score = float(result.score)
    except (TypeError, ValueError):
        return f"score {result.score!r} is not a number"
    if not np.isfinite(score):
        return f"score {score} is not finite"
    return None


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


@contextmanager
def backend_imports(backend: str) -> Iterator[None]:
    """Turn an ImportError raised while importing or building ``backend`` into daaf's one line.

    The backend package itself may be missing, or a module it imports in turn (pkg_resources,
    gone from setuptools >= 81, in detectron2's model zoo and in mmengine): both name the
    missing module and the install command. Usable as a decorator of a backend's factory.
    """
    try:
        yield
    except ImportError as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DaafError(
            f"--backend {backend} cannot import {exc.name or 'a module'} ({detail}); "
            f"install the backend with: {INSTALL_COMMAND} {backend}"
        ) from exc
