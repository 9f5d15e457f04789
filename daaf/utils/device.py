"""Pick the torch device a command or a library call runs on."""

from __future__ import annotations

import torch

from daaf.errors import DaafError


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """A ``torch.device`` from a device or its name (``cpu``, ``cuda``, ``cuda:1``), so that every
    public function that takes a device also takes its name. ``auto`` is the (local-rank) CUDA
    device when there is one, else the CPU. A name that is no device, or CUDA on a machine
    without it, raises a one-line DaafError."""
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            from daaf.utils.distributed import local_rank

            return torch.device("cuda", local_rank())
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise DaafError(
            f"device {device!r} is not a device: use auto, cpu, cuda or cuda:N"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise DaafError(f"device {device}: CUDA is not available on this machine; use cpu or auto")
    return resolved
