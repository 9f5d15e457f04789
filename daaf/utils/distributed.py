"""Process-group set-up for ``torchrun`` (NCCL on CUDA, gloo on CPU), rank helpers and the
collectives daaf uses (sums, gradient averages, gathers, barriers).

Every function works without torchrun: a plain process is rank 0 of a world of size 1, and a
collective returns its own value.
"""

from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Iterable
from typing import Any, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else int(os.environ.get("WORLD_SIZE", 1))


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", 0))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main_process() -> bool:
    return rank() == 0


def in_process_group() -> bool:
    """Whether this process runs in a process group (under torchrun with more than one)."""
    return dist.is_initialized()


def is_local_leader() -> bool:
    """Local rank 0 of a process group, or a plain process: the one that makes a node's files."""
    return not dist.is_initialized() or local_rank() == 0


def init_distributed(device: torch.device, timeout: datetime.timedelta | None = None) -> bool:
    """Join the process group torchrun describes in the environment; False when not under torchrun.

    ``timeout`` bounds every wait at a collective, so it must outlast the longest work one rank
    does alone (rank 0's periodic evaluation); None keeps torch's default (10 minutes for NCCL).
    """
    if dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", 1)) <= 1:
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, timeout=timeout)
    return True


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def cleanup_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def sum_over_processes(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` summed over every process, on ``device`` (NCCL reduces CUDA tensors only);
    ``tensor`` itself without a process group. A collective: every process calls it."""
    if not dist.is_initialized():
        return tensor
    tensor = tensor.to(device)
    dist.all_reduce(tensor)
    return tensor


def any_process(flag: bool, device: torch.device) -> bool:
    """Whether ``flag`` holds on any process (a collective), so that all stop together."""
    return sum_over_processes(torch.tensor([float(flag)], device=device), device).item() > 0


def average_gradients(params: Iterable[torch.nn.Parameter]) -> None:
    """Each gradient of ``params`` averaged over the processes in place (a collective), for
    parameters that DistributedDataParallel does not hold."""
    if not dist.is_initialized():
        return
    for param in params:
        if param.grad is not None:
            dist.all_reduce(param.grad)
            param.grad.div_(dist.get_world_size())


def all_gather_objects(value: Any) -> list[Any]:
    """Every process's ``value`` (picklable), in rank order (a collective); ``[value]`` without
    a process group."""
    if not dist.is_initialized():
        return [value]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def from_local_leader(value: T) -> T:
    """``value`` of local rank 0 of this rank's node, on every rank (a collective: every rank
    calls it); without a process group, ``value`` itself. Nodes are told apart by host name."""
    if not dist.is_initialized():
        return value
    host = socket.gethostname()
    gathered = all_gather_objects((host, local_rank(), value))
    return next(v for node, local, v in gathered if (node, local) == (host, 0))
