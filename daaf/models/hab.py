"""Holistic attention branch (paper section 3.1): predicts the person mask from layer1 features.

Its encoder is a separate copy of the backbone's layer2-4 (same structure, and the same initial
weights when it is built after the backbone's weights are loaded), so the mask task shares only
the low-level features with ReID. The decoder (four stride-2 deconvolutions and a 1x1
convolution) brings the output back to the input image size; at ``stride`` 4
(``model.decoder_stride``) two deconvolutions bring it to 1/4 of the input size.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from daaf.models.backbone import ResNetBackbone
from daaf.models.decoder import PAPER_DECODER, DecoderSpec, init_decoder
from daaf.models.maps import map_size, to_size


class HolisticBranch(nn.Module):
    """layer1 features (B, C1, H/4, W/4) -> mask logits (B, 1, H/stride, W/stride) for an input
    of H x W."""

    def __init__(self, backbone: ResNetBackbone, decoder: DecoderSpec = PAPER_DECODER) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            copy.deepcopy(backbone.layer2),
            copy.deepcopy(backbone.layer3),
            copy.deepcopy(backbone.layer4),
        )
        self.decoder = decoder.stack(backbone.out_channels)
        self.stride = decoder.stride
        self.head = nn.Conv2d(decoder.channels, 1, kernel_size=1)

    def init_decoder(self, scheme: str) -> None:
        """The decoder's first weights per ``model.decoder_init`` (:func:`init_decoder`)."""
        init_decoder([self.decoder], [self.head], scheme)

    def forward(self, low: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``size``: the input's (H, W)."""
        return to_size(self.head(self.decoder(self.encoder(low))), map_size(size, self.stride))
