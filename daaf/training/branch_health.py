"""Branch-health signals: does each attention branch learn, or does it sit at a trivial map?

Every ``train.health_period`` iterations, on that iteration's own batch and backward pass:
- each branch's unweighted loss (L_h, L_p) beside the loss of two trivial maps: the all-zero
  map and the mean target of the batches measured before (the best constant map for MSE; for
  the L2 norms of eq. 2 and 4 an upper bound on the best constant's, a geometric median);
- the gradient each branch sends into the backbone it shares with the ReID loss, beside the
  ReID loss's own, at the feature map where they meet: the PAB and the ReID head at layer4's
  output; the HAB at layer1's output beside the rest of the network's (the ReID loss through
  layer2-4, with the PAB's share, which is measured apart at layer4).

- each branch's accuracy on the batch beside a constant map's: the HAB's mask IoU beside the
  mean target mask's (of the batches measured before), the keypoint PAB's PCK (its peaks
  against the targets' peaks) beside every keypoint at the mean place of its earlier peaks.

The gradients are read by hooks on the inputs of the modules that meet there, during the
step's own backward: measuring costs a few norms, no extra pass. After a warm-up, a branch
whose accuracy stays within ``ACCURACY_MARGIN`` of its constant map's (or below it) for
``WINDOW`` measurements in a row gets one warning (docs/training.md says what to try); a
part-image PAB, which has no accuracy, is judged by its loss against the all-zero map's
(``TOLERANCE``). A loss near the all-zero map's is no verdict where an accuracy exists: at a
small sigma a PAB that localises well still sits near it.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from daaf.config import Config
from daaf.data.keypoints import NUM_KEYPOINTS
from daaf.errors import DaafError

logger = logging.getLogger(__name__)

TOLERANCE = 0.05  # within 5% of the all-zero map's loss, or above: learned (almost) nothing
PCK_FRACTION = 0.1  # PCK@0.1 x map height, as the study's PCK@0.1 x image height
# An accuracy at most this far above its constant map's is no evidence of learning: the
# measured batch's PCK and IoU vary by a few hundredths from batch to batch.
ACCURACY_MARGIN = 0.05
WINDOW = 3  # measurements in a row, after the warm-up
WARMUP_FRACTION = 0.1  # at least this much of training before any warning
DOCS = "docs/training.md, section 'A branch that does not learn'"
BRANCHES = ("hab", "pab")
# (module path, branch the hooked input's gradient is credited to, where it enters the backbone)
TAPS = {
    "hab": (("hab", "hab", "layer1"), ("backbone.layer2", "reid", "layer1")),
    "pab": (("pab", "pab", "layer4"), ("head", "reid", "layer4")),
}


def mask_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) IoU of (B, 1, h, w) masks, both thresholded at 0.5; 1 where both are empty."""
    pred, target = (pred >= 0.5).flatten(1), (target >= 0.5).flatten(1)
    union = (pred | target).sum(1)
    return torch.where(union > 0, (pred & target).sum(1) / union.clamp_min(1), 1.0)


def peak_places(maps: torch.Tensor) -> torch.Tensor:
    """(B, K, h, w) maps -> (B, K, 2) float (x, y) of each map's argmax, in map pixels."""
    width = maps.shape[-1]
    index = maps.flatten(2).argmax(dim=2)
    return torch.stack([index % width, index // width], dim=-1).float()


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
    engine's ``train_step`` does), ``finish(step, grad_scale)`` after its backward.
    """

    def __init__(
        self, model: nn.Module, criterion: nn.Module, period: int, warmup: int, warn: bool = True
    ) -> None:
        self.criterion, self.period, self.warmup, self.warn = criterion, period, warmup, warn
        self.branches = [b for b in BRANCHES if getattr(model, b, None) is not None]
        # a branch whose loss weight is 0 is measured, not warned about: nothing trains it
        self.judged = {b for b in self.branches if getattr(criterion.cfg, f"{b}_weight") > 0}
        self.armed = False
        self._grads: dict[str, torch.Tensor] = {}
        self._losses: dict[str, torch.Tensor] = {}
        self._targets: dict[str, tuple[int, torch.Tensor | None]] = {}  # (count, sum) per branch
        # (count, sum of (x, y)) of the visible target peaks per keypoint, for the constant map
        self._peaks: tuple[torch.Tensor, torch.Tensor] | None = None
        self._verdicts = {b: deque(maxlen=WINDOW) for b in self.branches}
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
        """The armed step's branch losses and accuracies beside their trivial maps' (float
        outputs, the criterion's batch)."""
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
            mean = None
            if count:  # the mean of earlier measured batches' targets: out of this batch's sample
                mean = (total / count).expand_as(pred).contiguous()
                self._losses[f"health/{branch}/mean_map_loss"] = loss(branch, mean, batch)
            if branch == "hab":
                self._mask_accuracy(
                    pred[valid], target[valid], None if mean is None else mean[valid]
                )
            elif "keypoint_visible" in batch and self.criterion.pab_target == "keypoints":
                self._keypoint_accuracy(
                    pred[valid], target[valid], batch["keypoint_visible"][valid]
                )
            batch_sum = target[valid].float().sum(dim=0, keepdim=True)
            self._targets[branch] = (
                count + int(valid.sum()),
                batch_sum + (0 if total is None else total),
            )

    def _mask_accuracy(
        self, pred: torch.Tensor, target: torch.Tensor, mean: torch.Tensor | None
    ) -> None:
        """The HAB's mask IoU on the batch, and a constant mask's (the mean target of the
        batches measured before), both thresholded at 0.5."""
        self._losses["health/hab/iou"] = mask_iou(pred, target).mean()
        if mean is not None:
            self._losses["health/hab/constant_iou"] = mask_iou(mean, target).mean()

    def _keypoint_accuracy(
        self, pred: torch.Tensor, target: torch.Tensor, visible: torch.Tensor
    ) -> None:
        """The PAB's PCK on the batch (its peaks against the targets' peaks, within
        ``PCK_FRACTION`` of the map height, over the visible keypoints), and a constant map's:
        every keypoint at the mean place of its target peaks in the batches measured before."""
        if not visible.any():
            return
        truth, tolerance = peak_places(target), PCK_FRACTION * target.shape[-2]
        hits = (peak_places(pred) - truth).norm(dim=-1) <= tolerance  # (B, 17)
        self._losses["health/pab/pck"] = hits[visible].float().mean()
        if self._peaks is None:
            self._peaks = (truth.new_zeros(NUM_KEYPOINTS), truth.new_zeros(NUM_KEYPOINTS, 2))
        count, total = self._peaks
        seen = count > 0
        if (visible & seen).any():
            place = total / count.clamp_min(1)[:, None]
            constant = (place - truth).norm(dim=-1) <= tolerance
            self._losses["health/pab/constant_pck"] = constant[visible & seen].float().mean()
        weights = visible.float()
        self._peaks = (count + weights.sum(0), total + (truth * weights[..., None]).sum(0))

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
        """Warn once when, after the warm-up, the branch has not learned in ``WINDOW``
        measurements in a row (:func:`not_learning`)."""
        verdict = not_learning(branch, values)
        if verdict is None or step < self.warmup or branch not in self.judged:
            return
        window = self._verdicts[branch]
        window.append(verdict)
        dead = len(window) == WINDOW and all(window)
        if dead and self.warn and branch not in self.warned:
            self.warned.append(branch)
            with tqdm.external_write_mode():  # not in the middle of a progress bar's line
                logger.warning(warning_text(branch, step, self.period, values))


def accuracy_keys(branch: str) -> tuple[str, str]:
    """The branch's accuracy on the measured batch and its constant map's."""
    if branch == "hab":
        return "health/hab/iou", "health/hab/constant_iou"
    return "health/pab/pck", "health/pab/constant_pck"


def not_learning(branch: str, values: dict[str, float]) -> bool | None:
    """Has ``branch`` learned nothing by one measurement's ``values``? By its accuracy where it
    has one (HAB IoU, keypoint PAB PCK): not ``ACCURACY_MARGIN`` above its constant map's; by
    its loss otherwise (a part-image PAB): not ``TOLERANCE`` below the all-zero map's. None:
    nothing to judge by."""
    accuracy, constant = (values.get(key) for key in accuracy_keys(branch))
    if accuracy is not None and constant is not None:
        return accuracy <= constant + ACCURACY_MARGIN
    loss, zero = values.get(f"health/{branch}/loss"), values.get(f"health/{branch}/zero_map_loss")
    if loss is None or not zero:
        return None
    return loss / zero >= 1 - TOLERANCE


def warning_text(branch: str, step: int, period: int, values: dict[str, float]) -> str:
    """The one warning line for a branch that is not learning, with the numbers it was judged by."""
    name = {"hab": "HAB (mask branch)", "pab": "PAB (keypoint branch)"}[branch]
    accuracy, constant = (values.get(key) for key in accuracy_keys(branch))
    nan = float("nan")
    loss, zero, mean, ratio = (
        values.get(f"health/{branch}/{key}", nan)
        for key in ("loss", "zero_map_loss", "mean_map_loss", "grad_ratio")
    )
    if accuracy is not None and constant is not None:
        metric = "IoU" if branch == "hab" else "PCK"
        judged = (
            f"its {metric} on the batch is {accuracy:.3f}, not {ACCURACY_MARGIN:g} above "
            f"a constant map's {constant:.3f}"
        )
    else:
        judged = f"its loss is {loss:.4g}, not {round(100 * TOLERANCE)}% below the all-zero map's"
    return (
        f"WARNING: the {name} is not learning: at step {step} {judged} in the last {WINDOW} "
        f"measurements, {period} iterations apart (loss {loss:.4g}; the all-zero map's "
        f"{zero:.4g}, the mean target map's {mean:.4g}); the gradient it sends into the "
        f"shared backbone is {ratio:.3g} times the ReID loss's. See {DOCS} for what to try."
    )


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
