"""Inference latency of an embedding model (median wall time of repeated forward passes)."""

from __future__ import annotations

import statistics
import time

import torch

from daaf.utils.device import resolve_device


@torch.no_grad()
def measure_latency(
    model: torch.nn.Module,
    input_shape: tuple[int, int, int, int],
    device: torch.device | str,
    repeats: int = 10,
    warmup: int = 2,
) -> float:
    """Median seconds per forward pass of a random batch of ``input_shape`` (B, 3, H, W)."""
    device = resolve_device(device)
    model.eval()
    images = torch.randn(input_shape, device=device)
    times = []
    for i in range(warmup + repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        tic = time.perf_counter()
        model(images)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - tic)
    return statistics.median(times)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
