"""Pick the torch device a command runs on."""

from __future__ import annotations

import torch

from daaf.errors import DaafError


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` is the (local-rank) CUDA device when there is one, else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            from daaf.utils.distributed import local_rank

            return torch.device("cuda", local_rank())
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DaafError(f"--device {name}: CUDA is not available on this machine; use cpu or auto")
    return device
