"""The deconvolution stack both branches decode with (paper Table 1), and their output size."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# model.decoder_stride -> the stride-2 deconvolutions after a stride-16 feature map: four bring it
# back to the input size (the paper), two stop at 1/4 of it (CPN's output stride).
DECONV_LAYERS = {1: 4, 4: 2}


def deconv_layers(stride: int) -> int:
    """The number of stride-2 deconvolutions of a branch whose output is 1/``stride`` of the input."""
    if stride not in DECONV_LAYERS:
        raise ValueError(f"decoder stride must be one of {sorted(DECONV_LAYERS)}, got {stride}")
    return DECONV_LAYERS[stride]


def map_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """The (height, width) of a branch's maps for an input of ``size`` at output ``stride``: map
    pixel (c, r) covers input pixels [c * stride, (c + 1) * stride) x [r * stride, (r + 1) *
    stride) (``model.decoder_stride`` divides the input size)."""
    return size[0] // stride, size[1] // stride


class DeconvStack(nn.Module):
    """``layers`` stride-2 transposed convolutions: (B, C, h, w) -> (B, channels, 2^layers h,
    2^layers w); four (the paper) or two (``model.decoder_stride: 4``).

    kernel 3 (the paper: padding 1, output padding 1) or 2 (the authors' BoT code: padding 0).
    Linear by default, as the authors' BoT code (and ``model.decoder_norm: false``); ``norm``
    adds BN + ReLU after each layer, as their TriNet (TF) code.
    """

    def __init__(
        self,
        in_channels: int,
        channels: int = 64,
        kernel: int = 3,
        norm: bool = False,
        layers: int = 4,
    ) -> None:
        super().__init__()
        if kernel not in (2, 3):
            raise ValueError(f"deconvolution kernel must be 2 or 3, got {kernel}")
        padding, output_padding = (1, 1) if kernel == 3 else (0, 0)
        stack: list[nn.Module] = []
        for i in range(layers):
            stack.append(
                nn.ConvTranspose2d(
                    in_channels if i == 0 else channels,
                    channels,
                    kernel,
                    stride=2,
                    padding=padding,
                    output_padding=output_padding,
                    bias=not norm,
                )
            )
            if norm:
                stack += [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*stack)
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# model.decoder_init -> which of a branch's decoder layers start at N(0, AUTHORS_STD), zero bias
DECODER_INITS = ("pytorch", "small_heads", "authors")
AUTHORS_STD = 0.001


def init_decoder(stacks: list[nn.Module], heads: list[nn.Module], scheme: str) -> None:
    """Set a branch's first decoder weights per ``scheme`` (``model.decoder_init``): ``pytorch``
    keeps PyTorch's defaults; ``small_heads`` draws the 1x1 ``heads`` from N(0, 0.001) with zero
    bias; ``authors`` does so for every convolution of ``stacks`` and ``heads`` too."""
    if scheme not in DECODER_INITS:
        raise ValueError(f"decoder init must be one of {', '.join(DECODER_INITS)}, got {scheme!r}")
    chosen = {"pytorch": [], "small_heads": heads, "authors": [*stacks, *heads]}[scheme]
    for module in chosen:
        for layer in module.modules():
            if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.normal_(layer.weight, std=AUTHORS_STD)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)


def to_size(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to the branch's output ``size`` when the decoder ends smaller (stride-32
    nets), or to the input size for pictures. With ``align_corners=False`` a map pixel's value
    lands at its centre in the store's pixel convention (pixel c covers [c, c + 1))."""
    if maps.shape[-2:] == size:
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
