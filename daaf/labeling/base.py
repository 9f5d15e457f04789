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
