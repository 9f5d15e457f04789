"""Partial attention branch (paper section 3.2): channel groups of the last feature map each
predict one group of keypoints through ONE shared decoder.

The C channels are split into G groups of floor(C / G) (leftover channels take no part). Each
group goes through the same deconvolution stack and then its own 1x1 convolution with as many
outputs as its group has keypoints; the outputs are put back in COCO order (17 maps).
Ablations (section 4.3): ``grouped=False`` decodes all channels into 17 maps (Table 5, "w/o
group"); ``shared=False`` gives every group its own stack (Table 7); ``target="part_images"``
makes group i predict the i-th horizontal stripe of the input image (3 channels, Fig. 3b).
At ``stride`` 4 (``model.decoder_stride``) the maps are 1/4 of the input size (two
deconvolutions instead of four).
"""

from __future__ import annotations

import torch
from torch import nn

from daaf.data.keypoints import NUM_KEYPOINTS
from daaf.models.decoder import PAPER_DECODER, DecoderSpec, init_decoder
from daaf.models.maps import map_size, to_size


class PartialBranch(nn.Module):
    """Last feature map (B, C, h, w) -> (B, 17, H/stride, W/stride) keypoint maps, or
    (B, 3 * parts, H/stride, W/stride), for an input of H x W."""

    def __init__(
        self,
        in_channels: int,
        groups: tuple[tuple[int, ...], ...],
        target: str = "keypoints",
        grouped: bool = True,
        shared: bool = True,
        decoder: DecoderSpec = PAPER_DECODER,
    ) -> None:
        super().__init__()
        if target == "part_images":
            outputs = [3] * len(groups)
        else:
            outputs = [len(g) for g in groups] if grouped else [NUM_KEYPOINTS]
            groups = groups if grouped else (tuple(range(NUM_KEYPOINTS)),)
        self.groups, self.target, self.stride = groups, target, decoder.stride
        self.group_channels = in_channels // len(outputs)
        num_stacks = 1 if shared else len(outputs)
        self.stacks = nn.ModuleList(decoder.stack(self.group_channels) for _ in range(num_stacks))
        self.heads = nn.ModuleList(nn.Conv2d(decoder.channels, n, kernel_size=1) for n in outputs)
        self.num_outputs = sum(outputs)

    def init_decoder(self, scheme: str) -> None:
        """The decoders' first weights per ``model.decoder_init`` (:func:`init_decoder`)."""
        init_decoder(list(self.stacks), list(self.heads), scheme)

    def group_features(self, fmap: torch.Tensor) -> list[torch.Tensor]:
        """The channel groups fed to the decoder: G tensors of (B, floor(C/G), h, w)."""
        c = self.group_channels
        return [fmap[:, i * c : (i + 1) * c] for i in range(len(self.heads))]

    def decode_group(
        self, features: torch.Tensor, head: int, stack: int | None = None
    ) -> torch.Tensor:
        """One group's channels through a stack and the ``head``-th 1x1 conv (for the shuffle test)."""
        stack = head if stack is None else stack
        return self.heads[head](self.stacks[stack if len(self.stacks) > 1 else 0](features))

    def forward(self, fmap: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``size``: the input's (H, W)."""
        size = map_size(size, self.stride)
        if len(self.stacks) == 1:
            # One shared stack: the groups go through it as one batch of B * G.
            b, _, h, w = fmap.shape
            g, c = len(self.heads), self.group_channels
            grouped = fmap[:, : g * c].reshape(b * g, c, h, w)
            decoded = self.stacks[0](grouped).unflatten(0, (b, g))
            outs = [head(decoded[:, i]) for i, head in enumerate(self.heads)]
        else:
            feats = self.group_features(fmap)
            outs = [
                head(stack(f))
                for f, stack, head in zip(feats, self.stacks, self.heads, strict=True)
            ]
        if self.target == "part_images":
            return to_size(torch.cat(outs, dim=1), size)
        maps = torch.cat(outs, dim=1)
        # Back to COCO order; keypoints in no group (custom groupings) stay zero.
        full = maps.new_zeros(maps.shape[0], NUM_KEYPOINTS, *maps.shape[2:])
        full[:, list(self.keypoints)] = maps
        return to_size(full, size)

    @property
    def keypoints(self) -> tuple[int, ...]:
        """The keypoints this branch predicts, in the order of its concatenated outputs."""
        return tuple(k for group in self.groups for k in group)
