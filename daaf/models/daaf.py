"""DAAF: a base ReID network (backbone + head) trained with two extra branches.

The holistic attention branch (HAB) decodes the person mask from the first block's features;
the partial attention branch (PAB) decodes keypoint heatmaps from channel groups of the last
feature map. Both exist only for training: in eval mode the model computes the base path alone,
and :meth:`DAAF.base_network` returns that path as a module of its own for export.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from daaf.data.keypoints import keypoint_groups
from daaf.errors import DaafError
from daaf.models.backbone import ResNetBackbone, build_backbone
from daaf.models.config import HasModelConfig, ModelConfig
from daaf.models.decoder import DecoderSpec
from daaf.models.hab import HolisticBranch
from daaf.models.heads import BoTHead, TriNetHead
from daaf.models.pab import PartialBranch


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


def inference_network(model: DAAF) -> BaseNetwork:
    """What is exported: a copy of the base network (backbone + head) in eval mode, without
    BoT's classifier (training-only logits over the training identities)."""
    base = copy.deepcopy(model.base_network()).eval()
    if getattr(base.head, "classifier", None) is not None:
        base.head.classifier = None
    return base


def build_head(model: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    """BoT's BNNeck head or TriNet's FC head (``model.base``) on ``in_channels`` features."""
    if model.base == "bot":
        return BoTHead(in_channels, num_classes)
    return TriNetHead(in_channels, tuple(model.trinet_dims))


def build_pab(model: ModelConfig, in_channels: int) -> PartialBranch:
    """The partial attention branch ``model.pab_*`` describe, on ``in_channels`` features."""
    try:
        groups = (
            keypoint_groups(model.pab_groups)
            if model.pab_target == "keypoints"
            else tuple((i,) for i in range(model.num_parts))
        )
    except ValueError as exc:
        raise DaafError(f"model.pab_groups: {exc}") from exc
    return PartialBranch(
        in_channels,
        groups,
        model.pab_target,
        model.pab_grouped,
        model.pab_shared_decoder,
        DecoderSpec.from_config(model),
    )


def build_model(cfg: HasModelConfig, num_classes: int) -> DAAF:
    """The network ``cfg.model`` describes; branches are built after the backbone's weights load."""
    m = cfg.model
    backbone = build_backbone(m.depth, m.pretrained, m.last_stride)
    head = build_head(m, backbone.out_channels, num_classes)
    hab = HolisticBranch(backbone, DecoderSpec.from_config(m)) if m.hab else None
    pab = build_pab(m, backbone.out_channels) if m.pab else None
    for branch in (hab, pab):
        if branch is not None:
            branch.init_decoder(m.decoder_init)
    return DAAF(backbone=backbone, head=head, hab=hab, pab=pab)
