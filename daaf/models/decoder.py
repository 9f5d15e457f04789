"""The deconvolution stack both branches decode with (paper Table 1), its settings and first weights."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from daaf.models.config import ModelConfig

# model.decoder_stride -> the stride-2 deconvolutions after a stride-16 feature map: four bring it
# back to the input size (the paper), two stop at 1/4 of it (CPN's output stride).
DECONV_LAYERS = {1: 4, 4: 2}


def deconv_layers(stride: int) -> int:
    """The number of stride-2 deconvolutions of a branch whose output is 1/``stride`` of the input."""
    if stride not in DECONV_LAYERS:
        raise ValueError(f"decoder stride must be one of {sorted(DECONV_LAYERS)}, got {stride}")
    return DECONV_LAYERS[stride]


@dataclass(frozen=True)
class DecoderSpec:
    """A branch decoder's settings: ``channels`` per deconvolution, ``kernel`` 3 or 2, ``norm``
    (BN + ReLU after each deconvolution) and output ``stride`` 1 or 4 (:class:`DeconvStack`)."""

    channels: int = 64
    kernel: int = 3
    norm: bool = False
    stride: int = 1

    @classmethod
    def from_config(cls, model: ModelConfig) -> DecoderSpec:
        """The decoder ``model.decoder_*`` and ``model.deconv_kernel`` describe."""
        return cls(
            model.decoder_channels, model.deconv_kernel, model.decoder_norm, model.decoder_stride
        )

    def stack(self, in_channels: int) -> DeconvStack:
        """A :class:`DeconvStack` of these settings on ``in_channels`` input channels."""
        return DeconvStack(
            in_channels, self.channels, self.kernel, self.norm, deconv_layers(self.stride)
        )


PAPER_DECODER = DecoderSpec()  # Table 1: 64 channels, 3x3, linear, back to the input size


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
