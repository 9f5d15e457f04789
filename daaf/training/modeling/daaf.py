"""DAAF: a base ReID network (backbone + head) trained with two extra branches.

The holistic attention branch (HAB) decodes the person mask from the first block's features;
the partial attention branch (PAB) decodes keypoint heatmaps from channel groups of the last
feature map. Both exist only for training: in eval mode the model computes the base path alone,
and :meth:`DAAF.base_network` returns that path as a module of its own for export.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from daaf.data.keypoints import keypoint_groups
from daaf.errors import DaafError
from daaf.training.config import Config
from daaf.training.modeling.backbone import ResNetBackbone, build_backbone
from daaf.training.modeling.hab import HolisticBranch
from daaf.training.modeling.heads import BoTHead, TriNetHead
from daaf.training.modeling.pab import PartialBranch


@dataclass
class DAAFOutput:
    """Training outputs. features (B, D): triplet/centre input; logits (B, classes) or None
    (TriNet); mask (B, 1, H/s, W/s) HAB logits or None; parts (B, 17 | 3 * parts, H/s, W/s) or
    None; s = ``model.decoder_stride`` (1: the input size)."""

    features: torch.Tensor
    logits: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    parts: torch.Tensor | None = None


class BaseNetwork(nn.Module):
    """Backbone + head: the whole inference model. forward: (B, 3, H, W) -> embedding (B, D) in eval."""

    def __init__(self, backbone: ResNetBackbone, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, images: torch.Tensor):
        return self.head(self.backbone(images)[1])


class DAAF(nn.Module):
    """Train: images (B, 3, H, W) -> DAAFOutput. Eval: images -> embedding (B, D), base path only."""

    def __init__(
        self,
        *,
        backbone: ResNetBackbone,
        head: nn.Module,
        hab: HolisticBranch | None = None,
        pab: PartialBranch | None = None,
    ) -> None:
        super().__init__()
        self.backbone, self.head, self.hab, self.pab = backbone, head, hab, pab
        self.feat_dim = head.feat_dim

    def forward(self, images: torch.Tensor):
        low, high = self.backbone(images)
        if not self.training:
            return self.head(high)
        features, logits = self.head(high)
        size = tuple(images.shape[-2:])
        return DAAFOutput(
            features=features,
            logits=logits,
            mask=self.hab(low, size) if self.hab is not None else None,
            parts=self.pab(high, size) if self.pab is not None else None,
        )

    def feature_maps(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(layer1 output, last feature map, embedding), all on one graph, for Grad-CAM (eq. 5).

        In eval mode the embedding is the test embedding; in train mode it is ``features``.
        """
        low, high = self.backbone(images)
        out = self.head(high)
        return low, high, out[0] if self.training else out

    def branch_outputs(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """HAB mask probabilities (B, 1, H/s, W/s) and PAB maps at the branches' output size
        (``DAAFOutput``), in the current mode (for pictures and attention metrics)."""
        low, high = self.backbone(images)
        size = tuple(images.shape[-2:])
        mask = torch.sigmoid(self.hab(low, size)) if self.hab is not None else None
        return mask, self.pab(high, size) if self.pab is not None else None

    def branch_parameters(self) -> list[nn.Parameter]:
        """Every parameter the HAB and PAB own (the HAB's encoder copy of layer2-4 too): the
        group of ``optim.branch_weight_decay``. Only their own losses train them, whose
        gradient Adam's coupled decay of 5e-4 matches or outweighs (docs/paper.md)."""
        return [p for b in (self.hab, self.pab) if b is not None for p in b.parameters()]

    def base_network(self) -> BaseNetwork:
        """The inference model: this model's backbone and head (shared, not copied)."""
        return BaseNetwork(self.backbone, self.head)


def build_head(cfg: Config, in_channels: int, num_classes: int) -> nn.Module:
    if cfg.model.base == "bot":
        return BoTHead(in_channels, num_classes)
    if cfg.model.base == "trinet":
        return TriNetHead(in_channels, tuple(cfg.model.trinet_dims))
    raise DaafError(f"model.base must be bot or trinet, got {cfg.model.base!r}")


def build_model(cfg: Config, num_classes: int) -> DAAF:
    """The network ``cfg.model`` describes; branches are built after the backbone's weights load."""
    m = cfg.model
    backbone = build_backbone(m.depth, m.pretrained, m.last_stride)
    head = build_head(cfg, backbone.out_channels, num_classes)
    hab = (
        HolisticBranch(
            backbone, m.decoder_channels, m.deconv_kernel, m.decoder_norm, m.decoder_stride
        )
        if m.hab
        else None
    )
    pab = None
    if m.pab:
        if m.pab_target not in ("keypoints", "part_images"):
            raise DaafError(
                f"model.pab_target must be keypoints or part_images, got {m.pab_target!r}"
            )
        try:
            groups = (
                keypoint_groups(m.pab_groups)
                if m.pab_target == "keypoints"
                else tuple((i,) for i in range(m.num_parts))
            )
        except ValueError as exc:
            raise DaafError(f"model.pab_groups: {exc}") from exc
        pab = PartialBranch(
            backbone.out_channels,
            groups,
            m.pab_target,
            m.pab_grouped,
            m.pab_shared_decoder,
            m.decoder_channels,
            m.deconv_kernel,
            m.decoder_norm,
            m.decoder_stride,
        )
    for branch in (hab, pab):
        if branch is not None:
            branch.init_decoder(m.decoder_init)
    return DAAF(backbone=backbone, head=head, hab=hab, pab=pab)
