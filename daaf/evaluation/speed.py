"""Inference latency of embedding models (median wall time of repeated forward passes).

Models to compare are timed in turns (:func:`interleaved_latency`), not one after the other: a
load that comes or goes on the machine while they run then reaches each of them alike, so it
cannot make one of two identical networks look slower than the other.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping

import torch

from daaf.utils.device import resolve_device


def _timed_call(model: torch.nn.Module, images: torch.Tensor, device: torch.device) -> float:
    """Seconds of one forward pass, waiting for the GPU's queue before and after."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    tic = time.perf_counter()
    model(images)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - tic


@torch.no_grad()
def measure_latency(
    model: torch.nn.Module,
    input_shape: tuple[int, int, int, int],
    device: torch.device | str,
    repeats: int = 10,
    warmup: int = 2,
) -> float:
    """Median seconds per forward pass of a random batch of ``input_shape`` (B, 3, H, W)."""
    return interleaved_latency({"model": model}, input_shape, device, repeats, warmup)["model"]


@torch.no_grad()
def interleaved_latency(
    models: Mapping[str, torch.nn.Module],
    input_shape: tuple[int, int, int, int],
    device: torch.device | str,
    rounds: int = 20,
    warmup: int = 2,
) -> dict[str, float]:
    """Median seconds per forward pass of each model on one random batch of ``input_shape``
    (B, 3, H, W), the models timed in turns: each round runs every model once, in the order of
    ``models`` and reversed every other round (so none always runs first); the first ``warmup``
    rounds are not counted."""
    device = resolve_device(device)
    for model in models.values():
        model.eval()
    images = torch.randn(input_shape, device=device)
    names = list(models)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(warmup + rounds):
        for name in names if i % 2 == 0 else reversed(names):
            seconds = _timed_call(models[name], images, device)
            if i >= warmup:
                times[name].append(seconds)
    return {name: statistics.median(times[name]) for name in names}


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
