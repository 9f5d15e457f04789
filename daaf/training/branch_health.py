"""Branch-health signals: does each attention branch learn, or does it sit at a trivial map?

Every ``train.health_period`` iterations, on that iteration's own batch and backward pass:
- each branch's unweighted loss (L_h, L_p) beside the loss of two trivial maps: the all-zero
  map and the mean target of the batches measured before (the best constant map for MSE; for
  the L2 norms of eq. 2 and 4 an upper bound on the best constant's, a geometric median);
- the gradient each branch sends into the backbone it shares with the ReID loss, beside the
  ReID loss's own, at the feature map where they meet: the PAB and the ReID head at layer4's
  output; the HAB at layer1's output beside the rest of the network's (the ReID loss through
  layer2-4, with the PAB's share, which is measured apart at layer4).

The gradients are read by hooks on the inputs of the modules that meet there, during the
step's own backward: measuring costs a few norms, no extra pass. After a warm-up, a branch
whose loss stays within ``TOLERANCE`` of the all-zero map's (or above it) for ``WINDOW``
measurements in a row gets one warning (docs/training.md says what to try). The mean map is
logged, not warned on: estimated from a few batches, it is too noisy to judge a run by.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from daaf.errors import DaafError
from daaf.training.config import Config

logger = logging.getLogger(__name__)

TOLERANCE = 0.05  # within 5% of the all-zero map's loss, or above: learned (almost) nothing
WINDOW = 3  # measurements in a row, after the warm-up
WARMUP_FRACTION = 0.1  # at least this much of training before any warning
DOCS = "docs/training.md, section 'A branch that does not learn'"
BRANCHES = ("hab", "pab")
# (module path, branch the hooked input's gradient is credited to, where it enters the backbone)
TAPS = {
    "hab": (("hab", "hab", "layer1"), ("backbone.layer2", "reid", "layer1")),
    "pab": (("pab", "pab", "layer4"), ("head", "reid", "layer4")),
}


def warmup_iterations(cfg: Config, iters_per_epoch: int) -> int:
    """The iterations before any warning: the learning-rate warm-up, and at least
    ``WARMUP_FRACTION`` of training."""
    lr_warmup = cfg.optim.warmup_epochs if cfg.optim.schedule == "warmup_multistep" else 0
    total = cfg.train.epochs * iters_per_epoch
    return max(lr_warmup * iters_per_epoch, int(WARMUP_FRACTION * total))


class BranchHealth:
    """Arms hooks on ``model``'s branches every ``period`` iterations and turns one step's
    losses and gradients into ``health/...`` metrics; with ``warn`` (the main process), warns
    once per branch that learns nothing.

    Use: ``arm(step)`` before the step, ``observe(output, batch)`` after its forward (the
    trainer's ``train_step`` does), ``finish(step, grad_scale)`` after its backward.
    """

    def __init__(
        self, model: nn.Module, criterion: nn.Module, period: int, warmup: int, warn: bool = True
    ) -> None:
        self.criterion, self.period, self.warmup, self.warn = criterion, period, warmup, warn
        self.branches = [b for b in BRANCHES if getattr(model, b, None) is not None]
        self.armed = False
        self._grads: dict[str, torch.Tensor] = {}
        self._losses: dict[str, torch.Tensor] = {}
        self._targets: dict[str, tuple[int, torch.Tensor | None]] = {}  # (count, sum) per branch
        self._ratios = {b: deque(maxlen=WINDOW) for b in self.branches}
        self.warned: list[str] = []
        if period > 0:
            for branch in self.branches:
                for path, source, layer in TAPS[branch]:
                    key = f"health/{branch}/{source}_grad_{layer}"
                    model.get_submodule(path).register_forward_pre_hook(self._tap(key))

    def _tap(self, key: str):
        """A forward pre-hook: when armed, the module's first input becomes an alias whose
        gradient (this module's share alone) is recorded as ``key``'s norm."""

        def hook(module: nn.Module, args: tuple):
            if not (self.armed and torch.is_grad_enabled()):
                return None
            alias = args[0].view_as(args[0])
            alias.register_hook(lambda grad: self._grads.__setitem__(key, grad.float().norm()))
            return (alias, *args[1:])

        return hook

    def arm(self, step: int) -> bool:
        """Measure iteration ``step`` (1-based, the one about to run) if it is a ``period``-th."""
        self.armed = bool(self.branches) and self.period > 0 and step % self.period == 0
        return self.armed

    @torch.no_grad()
    def observe(self, output, batch: dict[str, torch.Tensor]) -> None:
        """The armed step's branch losses and their trivial maps' (float outputs, the
        criterion's batch)."""
        if not self.armed:
            return
        for branch in self.branches:
            pred = torch.sigmoid(output.mask) if branch == "hab" else output.parts
            target = self.criterion.branch_target(branch, batch)
            valid = self.criterion.branch_valid(branch, batch)
            if not valid.any():
                continue
            loss = self.criterion.branch_loss
            self._losses[f"health/{branch}/loss"] = loss(branch, pred, batch)
            zero = torch.zeros_like(pred)
            self._losses[f"health/{branch}/zero_map_loss"] = loss(branch, zero, batch)
            count, total = self._targets.get(branch, (0, None))
            if count:  # the mean of earlier measured batches' targets: out of this batch's sample
                mean = (total / count).expand_as(pred).contiguous()
                self._losses[f"health/{branch}/mean_map_loss"] = loss(branch, mean, batch)
            batch_sum = target[valid].float().sum(dim=0, keepdim=True)
            self._targets[branch] = (
                count + int(valid.sum()),
                batch_sum + (0 if total is None else total),
            )

    def finish(self, step: int, grad_scale: float = 1.0) -> dict[str, float]:
        """The armed step's metrics (gradients divided by the loss scale of fp16 AMP), and the
        warning for a branch whose loss has stayed at the all-zero map's; disarms."""
        values = {k: v.item() for k, v in self._losses.items()}
        values.update({k: v.item() / grad_scale for k, v in self._grads.items()})
        self._losses, self._grads, self.armed = {}, {}, False
        for branch in self.branches:
            layer = TAPS[branch][0][2]
            own = values.get(f"health/{branch}/{branch}_grad_{layer}")
            reid = values.get(f"health/{branch}/reid_grad_{layer}")
            if own is not None and reid:
                values[f"health/{branch}/grad_ratio"] = own / reid
            self._check(branch, step, values)
        return values

    def _check(self, branch: str, step: int, values: dict[str, float]) -> None:
        """Warn once when, after the warm-up, the loss has not been ``TOLERANCE`` below the
        all-zero map's for ``WINDOW`` measurements in a row."""
        loss, zero = (
            values.get(f"health/{branch}/loss"),
            values.get(f"health/{branch}/zero_map_loss"),
        )
        if loss is None or not zero or step < self.warmup:
            return
        ratios = self._ratios[branch]
        ratios.append(loss / zero)
        dead = len(ratios) == WINDOW and min(ratios) >= 1 - TOLERANCE
        if dead and self.warn and branch not in self.warned:
            self.warned.append(branch)
            name = {"hab": "HAB (mask branch)", "pab": "PAB (keypoint branch)"}[branch]
            mean = values.get(f"health/{branch}/mean_map_loss", float("nan"))
            with tqdm.external_write_mode():  # not in the middle of a progress bar's line
                logger.warning(
                    "WARNING: the %s is not learning: at step %d its loss is %.4g, not %d%% below "
                    "the all-zero map's %.4g in the last %d measurements, %d iterations apart "
                    "(the mean target map's: %.4g); the gradient it sends into the shared "
                    "backbone is %.3g times the ReID loss's. See %s for what to try.",
                    name, step, loss, round(100 * TOLERANCE), zero, WINDOW, self.period, mean,
                    values.get(f"health/{branch}/grad_ratio", float("nan")), DOCS,
                )  # fmt: skip


def last_measurement(metrics: Path) -> dict[str, float]:
    """The last branch-health measurement in a run's ``metrics.jsonl``: its line (``step`` and
    the ``health/...`` keys) with the loss weights in use then (``weight/...``, which
    ``loss.branch_balance`` logs on the losses lines before it), or {} if none was logged;
    DaafError naming the line that is no JSON object."""
    last: dict[str, float] = {}
    weights: dict[str, float] = {}
    if metrics.is_file():
        for number, line in enumerate(metrics.read_text().splitlines(), 1):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                raise DaafError(f"{metrics}, line {number}: not a JSON object: {line[:60]!r}")
            if any(key.startswith("health/") for key in row):
                last = {**row, **weights}
            else:
                weights = {k: v for k, v in row.items() if k.startswith("weight/")} or weights
    return last
