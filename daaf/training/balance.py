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

A branch whose lambda is 0 is left out of the balancing: it stays off. The criterion hands
the unweighted branch losses to its balance, which owns their weights, adapts them, logs them
and keeps them in the criterion's state dict.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from daaf.config import Config
from daaf.training.branch_health import BRANCHES
from daaf.utils import distributed

REID_TERMS = ("id", "triplet", "center")
STEP = 0.5  # the share of the measured log-correction a weight takes per measurement
MAX_STEP = 10.0  # a weight moves at most x10 or /10 per measurement: one odd batch, one decade
RANGE = 1e6  # and stays within a factor 1e6 of its configured lambda


class BranchBalance(nn.Module):
    """``none``: the configured weights, no state. The base of the balanced combinations.

    ``forward`` takes the criterion's terms, the branches' unweighted (``hab``: L_h, ``pab``:
    L_p), and weighs each branch's by ``weight(branch)``; the branch-health hook calls
    ``adapt`` after each measurement and logs ``weights()``.
    """

    def __init__(self, configured: dict[str, float]) -> None:
        """``configured``: each branch's lambda."""
        super().__init__()
        self.configured = configured

    def weight(self, branch: str) -> float:
        """The weight of ``branch``'s loss."""
        return self.configured[branch]

    def forward(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {
            name: self.weight(name) * value if name in BRANCHES else value
            for name, value in terms.items()
        }

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

    def __init__(self, configured: dict[str, float], balanced: list[str], ratio: float) -> None:
        """``balanced``: the branches whose weights adapt (those with a lambda above 0)."""
        super().__init__(configured)
        self.ratio = ratio
        self._weights = {branch: configured[branch] for branch in balanced}

    def weight(self, branch: str) -> float:
        return self._weights.get(branch, self.configured[branch])

    def adapt(self, signals: dict[str, float], device: torch.device) -> None:
        # per branch: (sum of log-corrections, count) over the processes that measured one
        local = torch.zeros(len(self._weights), 2, dtype=torch.float64)
        for row, branch in enumerate(self._weights):
            measured = signals.get(f"health/{branch}/grad_ratio")
            if measured:  # None or 0: the branch's loss sent no gradient (no valid sample)
                local[row] = torch.tensor([math.log(self.ratio / measured), 1.0])
        summed = distributed.sum_over_processes(local, device)  # the same weights on every process
        limit = math.log(MAX_STEP)
        for (total, count), branch in zip(summed.tolist(), list(self._weights), strict=True):
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

    def __init__(self, configured: dict[str, float], balanced: list[str], lr: float) -> None:
        """``balanced``: the branches weighed by a learned variance (a lambda above 0)."""
        super().__init__(configured)
        self.groups, self.lr = ("reid", *balanced), lr
        self.log_vars = nn.Parameter(torch.zeros(len(self.groups)))

    def forward(self, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        scales = dict(zip(self.groups, torch.exp(-self.log_vars), strict=True))
        balanced = {}
        for name, value in super().forward(terms).items():
            scale = scales.get("reid" if name in REID_TERMS else name)  # None: a lambda of 0
            balanced[name] = value if scale is None else scale * value
        balanced["log_var"] = self.log_vars.sum()
        return balanced

    def weights(self) -> dict[str, float]:
        scales = torch.exp(-self.log_vars.detach()).tolist()
        lambdas = {"reid": 1.0, **self.configured}
        return {
            f"weight/{group}": lambdas[group] * scale
            for group, scale in zip(self.groups, scales, strict=True)
        }

    def param_groups(self) -> list[dict[str, Any]]:
        return [{"params": [self.log_vars], "lr": self.lr, "weight_decay": 0.0}]


def build_balance(cfg: Config) -> BranchBalance:
    """``cfg.loss.branch_balance``'s combination of the terms of ``cfg``'s network; the branches
    it balances are those the model has, with a weight above 0 (none: the plain combination)."""
    loss, model = cfg.loss, cfg.model
    configured = {b: getattr(loss, f"{b}_weight") for b in BRANCHES}
    present = {"hab": model.hab, "pab": model.pab}
    balanced = [b for b in BRANCHES if present[b] and configured[b] > 0]
    if loss.branch_balance == "grad_ratio" and balanced:
        return GradRatioBalance(configured, balanced, loss.balance_ratio)
    if loss.branch_balance == "uncertainty" and balanced:
        return UncertaintyBalance(configured, balanced, loss.uncertainty_lr)
    return BranchBalance(configured)
