"""Losses: the base networks' ReID losses and the attention branches' (paper eq. 1, 2 and 4).

``L = L_r + lambda_h * L_h + lambda_p * L_p``. The paper's branch losses are L2 norms (not
squared) of the difference between prediction and target, averaged over the batch (HAB) or over
batch and keypoints (PAB); the authors' BoT code uses MSE instead (``branch_loss: mse``). HAB
predicts logits; its loss compares ``sigmoid(logits)`` with the mask. Samples whose annotation
is not usable (``batch["valid"]`` False) are left out of the branch means; with
``loss.keypoint_weighting: visible`` so are the keypoints without a peak in their target. Other weightings of
the terms than the paper's fixed lambdas: ``loss.branch_balance`` (:mod:`daaf.training.balance`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from daaf.config import Config
from daaf.data.device_batch import area_average
from daaf.data.keypoints import NUM_KEYPOINTS, keypoint_groups
from daaf.models import DAAFOutput
from daaf.training.balance import build_balance


def batch_hard_triplet(
    features: torch.Tensor, pids: torch.Tensor, margin: float | None
) -> torch.Tensor:
    """Hermans et al.: hardest positive and hardest negative per anchor on Euclidean distance;
    hinge with ``margin``, or soft margin (softplus) when ``margin`` is None."""
    dist = torch.cdist(features, features).clamp_min(1e-12)
    same = pids[:, None] == pids[None, :]
    hardest_pos = (dist * same).max(dim=1).values
    hardest_neg = dist.masked_fill(same, float("inf")).min(dim=1).values
    if margin is None:
        return F.softplus(hardest_pos - hardest_neg).mean()
    return F.relu(hardest_pos - hardest_neg + margin).mean()


class CenterLoss(nn.Module):
    """Wen et al.: mean squared distance of each feature to its identity's learned centre."""

    def __init__(self, num_classes: int, feat_dim: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, features: torch.Tensor, pids: torch.Tensor) -> torch.Tensor:
        return (features - self.centers[pids]).pow(2).sum(dim=1).mean()


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of per-sample ``values`` over valid samples; a zero with a gradient path if none."""
    if valid.any():
        return values[valid].mean()
    return values.sum() * 0.0


def l2_per_sample(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||pred - target||_2 over everything but the batch axis: (B,)."""
    return (pred - target).flatten(1).norm(dim=1)


def part_image_targets(images: torch.Tensor, num_parts: int) -> torch.Tensor:
    """(B, 3 * parts, H, W): stripe i is the image inside horizontal band i and zero elsewhere."""
    height = images.shape[-2]
    bounds = torch.linspace(0, height, num_parts + 1).round().long().tolist()
    stripes = []
    for top, bottom in zip(bounds[:-1], bounds[1:], strict=True):
        stripe = torch.zeros_like(images)
        stripe[..., top:bottom, :] = images[..., top:bottom, :]
        stripes.append(stripe)
    return torch.cat(stripes, dim=1)


class DAAFCriterion(nn.Module):
    """forward(output, batch) -> {term: weighted loss}; terms: id, triplet, center, hab, pab, and
    log_var under ``loss.branch_balance: uncertainty``. The branch terms are weighed by
    ``balance`` (:mod:`daaf.training.balance`)."""

    def __init__(
        self, cfg: Config, num_classes: int, feat_dim: int, groups: tuple[tuple[int, ...], ...]
    ) -> None:
        super().__init__()
        loss, model = cfg.loss, cfg.model
        self.cfg = loss
        self.pab_target, self.num_parts = model.pab_target, model.num_parts
        self.target_stride = model.decoder_stride  # prepare_batch renders targets at this stride
        self.groups = [list(g) for g in groups]  # the PAB's keypoint groups
        self.pab_keypoints = [k for g in self.groups for k in g]
        self.use_center = model.base == "bot" and loss.center_weight > 0
        self.center = CenterLoss(num_classes, feat_dim) if self.use_center else None
        self.balance = build_balance(cfg)

    def center_parameters(self) -> list[nn.Parameter]:
        return list(self.center.parameters()) if self.center is not None else []

    def forward(
        self, output: DAAFOutput, batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        cfg, pids = self.cfg, batch["pids"]
        terms: dict[str, torch.Tensor] = {}
        if output.logits is not None and cfg.id_weight > 0:
            ce = F.cross_entropy(output.logits, pids, label_smoothing=cfg.label_smoothing)
            terms["id"] = cfg.id_weight * ce
        if cfg.triplet_weight > 0:
            terms["triplet"] = cfg.triplet_weight * batch_hard_triplet(
                output.features, pids, cfg.triplet_margin
            )
        if self.center is not None:
            terms["center"] = cfg.center_weight * self.center(output.features, pids)
        if output.mask is not None:
            terms["hab"] = self.branch_loss("hab", torch.sigmoid(output.mask), batch)
        if output.parts is not None:
            terms["pab"] = self.branch_loss("pab", output.parts, batch)
        return self.balance(terms)  # weighs the branch terms

    def branch_target(self, branch: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """What ``hab`` (mask probabilities) or ``pab`` (heatmaps or part images) should output."""
        if branch == "hab":
            return batch["masks"]
        if self.pab_target == "part_images":
            images = part_image_targets(batch["images"], self.num_parts)
            return area_average(images, self.target_stride)
        return batch["heatmaps"]

    def branch_valid(self, branch: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) bool: the samples the branch's loss averages over. A part-image PAB needs only
        the image itself: every sample is valid."""
        if branch == "pab" and self.pab_target == "part_images":
            return torch.ones_like(batch["valid"], dtype=torch.bool)
        return batch["valid"].bool()

    def branch_loss(
        self, branch: str, pred: torch.Tensor, batch: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The unweighted L_h (``pred``: mask probabilities) or L_p of ``pred`` on ``batch``."""
        target, valid = self.branch_target(branch, batch), self.branch_valid(branch, batch)
        if branch == "hab":
            return self._mask_loss(pred, target, valid)
        weighting = self.pab_target == "keypoints" and self.cfg.keypoint_weighting == "visible"
        return self._part_loss(
            pred, target, valid, batch["keypoint_visible"] if weighting else None
        )

    def _mask_loss(
        self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        if self.cfg.branch_loss == "l2":
            return masked_mean(l2_per_sample(pred, target), valid)  # eq. 2
        return masked_mean((pred - target).pow(2).flatten(1).mean(dim=1), valid)

    def _part_loss(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        valid: torch.Tensor,
        visible: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """L_p; ``visible`` (B, 17): count only those keypoints, each sample's mean over them
        (samples with none are left out)."""
        if self.pab_target == "part_images":
            b, parts = pred.shape[0], self.num_parts
            pred, target = pred.reshape(b * parts, -1), target.reshape(b * parts, -1)
            if self.cfg.branch_loss == "l2":
                return l2_per_sample(pred, target).mean()
            return (pred - target).pow(2).mean()
        if visible is not None:  # loss.keypoint_weighting: visible
            k = self.pab_keypoints
            diff = (pred[:, k] - target[:, k]).flatten(2)
            per_kp = diff.norm(dim=2) if self.cfg.branch_loss == "l2" else diff.pow(2).mean(dim=2)
            weight = visible[:, k].float()  # (B, K)
            counted = weight.sum(dim=1)
            per_sample = (per_kp * weight).sum(dim=1) / counted.clamp_min(1)
            return masked_mean(per_sample, valid & (counted > 0))
        if self.cfg.branch_loss == "l2":  # eq. 4: mean over samples and keypoints of ||p - g||_2
            k = self.pab_keypoints
            per_kp = (pred[:, k] - target[:, k]).flatten(2).norm(dim=2)  # (B, K)
            return masked_mean(per_kp.mean(dim=1), valid)
        # Authors' code: per-group MSE weighted by group size / 17.
        per_sample = sum(
            len(g) / NUM_KEYPOINTS * (pred[:, g] - target[:, g]).pow(2).flatten(1).mean(dim=1)
            for g in self.groups
        )
        return masked_mean(per_sample, valid)


def build_criterion(cfg: Config, num_classes: int, feat_dim: int) -> DAAFCriterion:
    """The loss of ``cfg``'s network (its PAB terms follow the keypoint grouping scheme;
    without grouping, one group of all 17 keypoints)."""
    groups: tuple[tuple[int, ...], ...] = (tuple(range(NUM_KEYPOINTS)),)
    if cfg.model.pab and cfg.model.pab_target == "keypoints" and cfg.model.pab_grouped:
        groups = keypoint_groups(cfg.model.pab_groups)  # checked where the config loaded
    return DAAFCriterion(cfg, num_classes, feat_dim, groups)
