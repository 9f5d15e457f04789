"""Learning-rate schedules of the two recipes, as per-iteration multipliers of the base lr.

BoT (Luo et al.): linear warm-up from ``warmup_factor`` over ``warmup_epochs``, then x``gamma``
at each milestone epoch. TriNet (Hermans et al.): constant until ``decay_start_iter``, then
exponential decay to ``decay_final_factor`` x lr at ``decay_end_iter``.
"""

from __future__ import annotations

import bisect

import torch

from daaf.config import OptimConfig
from daaf.errors import DaafError


def lr_factor(cfg: OptimConfig, iteration: int, iters_per_epoch: int) -> float:
    """Multiplier of the base learning rate at ``iteration`` (0-based)."""
    if cfg.schedule == "warmup_multistep":
        epoch = iteration // iters_per_epoch
        factor = cfg.gamma ** bisect.bisect_right(sorted(cfg.milestones), epoch)
        if epoch < cfg.warmup_epochs:
            alpha = epoch / cfg.warmup_epochs
            factor *= cfg.warmup_factor * (1 - alpha) + alpha
        return factor
    if cfg.schedule == "exponential":
        if iteration < cfg.decay_start_iter:
            return 1.0
        span = cfg.decay_end_iter - cfg.decay_start_iter
        progress = min(iteration - cfg.decay_start_iter, span) / span
        return cfg.decay_final_factor**progress
    raise DaafError(
        f"optim.schedule: unknown schedule {cfg.schedule!r}; known: warmup_multistep, exponential"
    )


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: OptimConfig, iters_per_epoch: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR stepped once per iteration."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda it: lr_factor(cfg, it, iters_per_epoch)
    )


def build_optimizer(params, cfg: OptimConfig) -> torch.optim.Optimizer:
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    raise DaafError(f"optim.name: unknown optimizer {cfg.name!r}; known: adam, sgd")
