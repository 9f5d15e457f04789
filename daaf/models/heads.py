"""The two base networks' heads on the last feature map: Bag of Tricks and TriNet."""

from __future__ import annotations

import torch
from torch import nn


class BoTHead(nn.Module):
    """GAP -> BNNeck (BN with frozen bias) -> bias-free classifier (Luo et al. 2019).

    Train: (pre-BN feature (B, C) for triplet and centre losses, logits (B, num_classes)).
    Eval: the post-BN feature (B, C), the test embedding.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.feat_dim = in_channels
        self.bnneck = nn.BatchNorm1d(in_channels)
        self.bnneck.bias.requires_grad_(False)
        self.classifier = nn.Linear(in_channels, num_classes, bias=False)
        nn.init.constant_(self.bnneck.weight, 1.0)
        nn.init.constant_(self.bnneck.bias, 0.0)
        nn.init.normal_(self.classifier.weight, std=0.001)

    def forward(self, fmap: torch.Tensor):
        feature = fmap.mean(dim=(2, 3))
        embedding = self.bnneck(feature)
        if not self.training:
            return embedding
        return feature, self.classifier(embedding)


class TriNetHead(nn.Module):
    """GAP -> FC 1024 -> BN -> ReLU -> FC 128 (Hermans et al. 2017); the 128-d output is the embedding."""

    def __init__(self, in_channels: int, dims: tuple[int, int] = (1024, 128)) -> None:
        super().__init__()
        hidden, out = dims
        self.feat_dim = out
        self.fc = nn.Sequential(
            nn.Linear(in_channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, out),
        )

    def forward(self, fmap: torch.Tensor):
        embedding = self.fc(fmap.mean(dim=(2, 3)))
        return embedding if not self.training else (embedding, None)
