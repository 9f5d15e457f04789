"""``ModelConfig``: the network a run trains and exports (base, depth, branches, decoders).

Each field carries its allowed values (see :mod:`daaf.utils.config_fields`); the run's config
(:mod:`daaf.config`) composes it as its ``model`` section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from daaf.data.config import DataConfig
from daaf.data.keypoints import keypoint_groups
from daaf.errors import ConfigError
from daaf.utils.config_fields import set_where, setting

GROUP_SCHEMES = Literal["all", "4", "6", "7", "each"]  # daaf.data.keypoints.KEYPOINT_GROUPS


@dataclass
class ModelConfig:
    base: Literal["bot", "trinet"] = "bot"
    depth: Literal[18, 34, 50, 101] = 50  # ResNet depth
    pretrained: str = setting("imagenet", allowed="imagenet, none or the path of a state_dict")
    last_stride: Literal[1, 2] = 1
    trinet_dims: list[int] = setting(factory=lambda: [1024, 128], length=2, min=1, max=8192)
    hab: bool = False
    pab: bool = False
    pab_target: Literal["keypoints", "part_images"] = "keypoints"  # part_images: 6 stripes
    # A scheme of paper Fig. 4 / Table 6, or custom groups of keypoint indices ([[0, 1], [5, 6]]).
    pab_groups: GROUP_SCHEMES | list[list[int]] = setting("6", check=keypoint_groups)
    pab_grouped: bool = True  # false: all channels predict all 17 maps (Table 5, w/o group)
    pab_shared_decoder: bool = True  # false: one decoder per group (Table 7)
    num_parts: int = setting(6, min=1, max=64)  # stripes for pab_target=part_images
    decoder_channels: int = setting(64, min=1, max=4096)
    deconv_kernel: Literal[3, 2] = 3  # 3 (paper) or 2 (authors' BoT code)
    # The paper names no nonlinearity; linear deconvolutions are the authors' PyTorch code. With
    # BN + ReLU (true, as their TF code) the PAB collapses to flat maps: fitting one batch of 16
    # synthetic images for 100 Adam steps, PCK 0.03 with BN + ReLU vs 0.98 linear.
    decoder_norm: bool = False
    # Branch maps at 1/decoder_stride of the input: 1 (the paper) or 4 (CPN's output stride: two
    # deconvolutions fewer, targets rendered at that size; data.heatmap_sigma stays in input
    # pixels). data.height and data.width must be multiples of it (docs/training.md).
    decoder_stride: Literal[1, 4] = 1
    # The decoders' first weights (deconvolutions and 1x1 heads): pytorch (PyTorch's defaults),
    # small_heads (the 1x1 heads N(0, 0.001), zero bias) or authors (every decoder layer
    # N(0, 0.001), zero bias: the authors' BoT code). Small heads start the maps near the
    # all-zero map instead of at noise 20x its loss (docs/paper.md).
    decoder_init: Literal["pytorch", "small_heads", "authors"] = "pytorch"


class HasModelConfig(Protocol):
    """A config with a ``model`` section (:class:`daaf.config.Config`)."""

    model: ModelConfig


def check_input_grid(data: DataConfig, model: ModelConfig, sources: dict[str, str]) -> None:
    """ConfigError unless the input size divides into the branches' output grid (``sources``:
    where each key was set, named in the error)."""
    height, width, stride = data.height, data.width, model.decoder_stride
    if height % stride or width % stride:
        where = set_where(("data.height", "data.width", "model.decoder_stride"), sources)
        raise ConfigError(
            f"{where}: data.height and data.width must be multiples of model.decoder_stride "
            f"({stride}), got {height}x{width}"
        )
