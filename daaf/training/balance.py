"""Balancing the attention branches' losses against the ReID loss (``loss.branch_balance``).

At the paper's lambda = 0.003 the ReID loss's gradient on the shared backbone is 40,000-60,000
times the PAB's, and the PAB learns nothing (issue 19). Three ways to combine the terms:

- ``none``: the paper's ``L = L_r + lambda_h L_h + lambda_p L_p``, bit for bit.
- ``grad_ratio``: each branch's weight starts at its lambda and is adapted at every branch-health
  measurement (:mod:`daaf.training.branch_health`, no extra pass) so that the gradient the
  branch sends into the shared backbone is ``loss.balance_ratio`` times the ReID side's:
  ``log w += STEP * log(ratio / measured)``, the step clamped to a factor ``MAX_STEP`` either
  way, the weight to ``[lambda / RANGE, lambda * RANGE]``.
- ``uncertainty`` (Kendall, Gal & Cipolla 2018): learned log-variances s_i of the ReID, HAB
  and PAB terms, ``L = sum_i exp(-s_i) lambda_i L_i + s_i`` (lambda_r = 1; L_r = the id,
  triplet and centre terms as weighted), s_i = 0 at the start; trained by the model's
  optimizer in a group of their own (``loss.uncertainty_lr``, no weight decay).

A branch whose lambda is 0 is left out of the balancing: it stays off.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from daaf.training.branch_health import BRANCHES
from daaf.training.config import Config

REID_TERMS = ("id", "triplet", "center")
STEP = 0.5  # the share of the measured log-correction a weight takes per measurement
MAX_STEP = 10.0  # a weight moves at most x10 or /10 per measurement: one odd batch, one decade
RANGE = 1e6  # and stays within a factor 1e6 of its configured lambda


class BranchBalance(nn.Module):
    """``none``: the configured weights, no state. The base of the balanced combinations.

    The criterion asks ``weight(branch, configured)`` for each branch term's weight and passes
    its weighted terms through ``forward``; the trainer calls ``adapt`` after each branch-health
    measurement and logs ``weights()``.
    """

    def weight(self, branch: str, configured: float) -> float:
        """The weight of ``branch``'s loss (``configured``: its lambda)."""
        return configured

    def forward(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return terms

    def adapt(self, signals: dict[str, float], device: torch.device) -> None:
        """Update the weights from one measurement's ``health/...`` signals (all processes)."""

    def weights(self) -> dict[str, float]:
        """``weight/TERM``: the effective weights, for the metrics log."""
        return {}

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer parameter groups of learned weights."""
        return []


class GradRatioBalance(BranchBalance):
    """Branch weights adapted so that each branch's gradient into the shared backbone is
    ``ratio`` times the ReID side's (see the module docstring); checkpointed as extra state."""

    def __init__(self, configured: dict[str, float], ratio: float) -> None:
        super().__init__()
        self.configured, self.ratio = configured, ratio
        self._weights = dict(configured)

    def weight(self, branch: str, configured: float) -> float:
        return self._weights.get(branch, configured)

    def adapt(self, signals: dict[str, float], device: torch.device) -> None:
        # per branch: (sum of log-corrections, count) over the processes that measured one
        local = torch.zeros(len(self._weights), 2, dtype=torch.float64)
        for row, branch in enumerate(self._weights):
            measured = signals.get(f"health/{branch}/grad_ratio")
            if measured:  # None or 0: the branch's loss sent no gradient (no valid sample)
                local[row] = torch.tensor([math.log(self.ratio / measured), 1.0])
        if torch.distributed.is_initialized():  # the same weights on every process
            local = local.to(device)
            torch.distributed.all_reduce(local)
        limit = math.log(MAX_STEP)
        for (total, count), branch in zip(local.tolist(), list(self._weights), strict=True):
            if count:
                step = min(max(STEP * total / count, -limit), limit)
                low, high = self.configured[branch] / RANGE, self.configured[branch] * RANGE
                self._weights[branch] = min(max(self._weights[branch] * math.exp(step), low), high)

    def weights(self) -> dict[str, float]:
        return {f"weight/{branch}": w for branch, w in self._weights.items()}

    def get_extra_state(self) -> dict[str, float]:
        return dict(self._weights)

    def set_extra_state(self, state: dict[str, float]) -> None:
        if set(state) != set(self._weights):
            raise KeyError(f"weights of {sorted(state)}, this run balances {sorted(self._weights)}")
        self._weights = {branch: float(state[branch]) for branch in self._weights}


class UncertaintyBalance(BranchBalance):
    """Kendall et al.'s homoscedastic-uncertainty weighting: ``exp(-s_g)`` times each term of
    group g (``reid``, ``hab``, ``pab``), plus a ``log_var`` term ``sum_g s_g``."""

    def __init__(self, configured: dict[str, float], lr: float) -> None:
        super().__init__()
        self.groups = ("reid", *configured)
        self.configured, self.lr = {"reid": 1.0, **configured}, lr
        self.log_vars = nn.Parameter(torch.zeros(len(self.groups)))

    def forward(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        scales = dict(zip(self.groups, torch.exp(-self.log_vars), strict=True))
        balanced = {}
        for name, value in terms.items():
            scale = scales.get("reid" if name in REID_TERMS else name)  # None: a lambda of 0
            balanced[name] = value if scale is None else scale * value
        balanced["log_var"] = self.log_vars.sum()
        return balanced

    def weights(self) -> dict[str, float]:
        scales = torch.exp(-self.log_vars.detach()).tolist()
        return {
            f"weight/{group}": self.configured[group] * scale
            for group, scale in zip(self.groups, scales, strict=True)
        }

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [self.log_vars], "lr": self.lr, "weight_decay": 0.0}]


def build_balance(cfg: Config) -> BranchBalance:
    """``cfg.loss.branch_balance``'s combination of the terms of ``cfg``'s network; the branches
    it balances are those the model has, with a weight above 0 (none: the plain combination)."""
    loss, model = cfg.loss, cfg.model
    present = {"hab": model.hab, "pab": model.pab}
    configured = {b: getattr(loss, f"{b}_weight") for b in BRANCHES if present[b]}
    configured = {b: w for b, w in configured.items() if w > 0}
    if loss.branch_balance == "grad_ratio" and configured:
        return GradRatioBalance(configured, loss.balance_ratio)
    if loss.branch_balance == "uncertainty" and configured:
        return UncertaintyBalance(configured, loss.uncertainty_lr)
    return BranchBalance()
