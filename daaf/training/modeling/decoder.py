"""The deconvolution stack both branches decode with (paper Table 1)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class DeconvStack(nn.Module):
    """Four stride-2 transposed convolutions: (B, C, h, w) -> (B, channels, 16h, 16w).

    kernel 3 (the paper: padding 1, output padding 1) or 2 (the authors' BoT code: padding 0).
    Linear by default, as the authors' BoT code (and ``model.decoder_norm: false``); ``norm``
    adds BN + ReLU after each layer, as their TriNet (TF) code.
    """

    def __init__(
        self, in_channels: int, channels: int = 64, kernel: int = 3, norm: bool = False
    ) -> None:
        super().__init__()
        if kernel not in (2, 3):
            raise ValueError(f"deconvolution kernel must be 2 or 3, got {kernel}")
        padding, output_padding = (1, 1) if kernel == 3 else (0, 0)
        layers: list[nn.Module] = []
        for i in range(4):
            layers.append(
                nn.ConvTranspose2d(
                    in_channels if i == 0 else channels, channels, kernel, stride=2,
                    padding=padding, output_padding=output_padding, bias=not norm,
                )
            )  # fmt: skip
            if norm:
                layers += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def to_size(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to the input image size when the decoder ends smaller (stride-32 nets)."""
    if maps.shape[-2:] == size:
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
