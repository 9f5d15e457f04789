"""Atomic file writes: a reader never sees a half-written shard, manifest, checkpoint or model."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """``write(tmp)`` to ``<name>.tmp-<pid>`` beside ``path``, then rename it to ``path``; the
    temporary file is removed when ``write`` fails (an interrupted run leaves no partial file)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
