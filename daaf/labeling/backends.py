"""Every labeling backend, registered by importing its module, and ``build_labeler(name)``.

The backends import :mod:`daaf.labeling.base` (the protocol and the registry); this module
imports the backends, so registration needs no import cycle. Each backend imports its heavy
packages only when built.
"""

from __future__ import annotations

from daaf.errors import DaafError
from daaf.labeling import detectron2_backend, mmpose_backend, torchvision_backend  # noqa: F401
from daaf.labeling.base import LABELERS, Labeler


def build_labeler(name: str, **options) -> Labeler:
    """Build backend ``name``; unknown names get an error listing the known ones."""
    if name not in LABELERS:
        raise DaafError(f"unknown labeling backend {name!r}; known: {', '.join(sorted(LABELERS))}")
    return LABELERS[name](**options)
