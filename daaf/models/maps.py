"""The branches' maps and the image: their size at a decoder stride, and their resize to a size.

The branches decode to 1/``model.decoder_stride`` of the input; pictures and measurements
resize their maps back to the input with :func:`to_size`, as the stride-32 networks' decoders do
to reach their output size.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def map_size(size: tuple[int, int], stride: int) -> tuple[int, int]:
    """The (height, width) of a branch's maps for an input of ``size`` at output ``stride``: map
    pixel (c, r) covers input pixels [c * stride, (c + 1) * stride) x [r * stride, (r + 1) *
    stride) (``model.decoder_stride`` divides the input size)."""
    return size[0] // stride, size[1] // stride


def to_size(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize to the branch's output ``size`` when the decoder ends smaller (stride-32
    nets), or to the input size for pictures. With ``align_corners=False`` a map pixel's value
    lands at its centre in the store's pixel convention (pixel c covers [c, c + 1))."""
    if maps.shape[-2:] == size:
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
