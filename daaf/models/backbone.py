"""ResNet backbones from torchvision, split where DAAF's branches attach.

``forward`` returns the first block's output (``layer1``, where the holistic attention branch
starts) and the last feature map (``layer4``, which the head pools and the partial attention
branch decodes). ``last_stride=1`` keeps layer4 at 1/16 of the input, as Bag of Tricks does.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

from daaf.errors import DaafError
from daaf.utils.safe_load import load_weights_only

RESNETS = {
    18: (torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
    34: (torchvision.models.resnet34, torchvision.models.ResNet34_Weights.IMAGENET1K_V1),
    50: (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
    101: (torchvision.models.resnet101, torchvision.models.ResNet101_Weights.IMAGENET1K_V1),
}


class ResNetBackbone(nn.Module):
    """ResNet without pooling and classifier.

    forward: images (B, 3, H, W) -> (layer1 (B, C1, H/4, W/4), layer4 (B, C4, H/s, W/s)),
    s = 16 with last stride 1, 32 with last stride 2.
    """

    def __init__(self, resnet: torchvision.models.ResNet, last_stride: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1, self.layer2 = resnet.layer1, resnet.layer2
        self.layer3, self.layer4 = resnet.layer3, resnet.layer4
        if last_stride == 1:
            block = self.layer4[0]
            # Bottleneck strides in conv2 (torchvision's ResNet v1.5), BasicBlock in conv1.
            strided = block.conv2 if hasattr(block, "conv3") else block.conv1
            strided.stride = (1, 1)
            block.downsample[0].stride = (1, 1)
        self.low_channels = _out_channels(self.layer1)
        self.out_channels = _out_channels(self.layer4)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low = self.layer1(self.stem(images))
        return low, self.layer4(self.layer3(self.layer2(low)))


def _out_channels(layer: nn.Sequential) -> int:
    block = layer[-1]
    return (block.bn3 if hasattr(block, "bn3") else block.bn2).num_features


def _imagenet_state_dict(weights: torchvision.models.WeightsEnum) -> dict:
    """torchvision's ImageNet weights from the torch cache, downloading them when online; a
    cached file is read as tensors only (torch.hub's own loader would unpickle anything)."""
    file_name = Path(weights.url).name
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    if (cache / file_name).is_file():
        return load_weights_only(cache / file_name)
    try:
        return weights.get_state_dict(progress=False, check_hash=True, weights_only=True)
    except Exception as exc:  # offline: URLError, socket errors, a truncated file, ...
        raise DaafError(
            f"ImageNet weights {file_name} are not in {cache}/ and could not be downloaded "
            f"({exc.__class__.__name__}: {exc}). Place the file (from {weights.url}) in "
            "$TORCH_HOME/hub/checkpoints/ (default ~/.cache/torch/hub/checkpoints/), pass a "
            "ResNet state_dict file with model.pretrained=PATH, or train from scratch with "
            "model.pretrained=none"
        ) from exc


def _file_state_dict(path: Path) -> dict:
    """A ResNet state_dict saved with torch.save (bare, or under a ``state_dict`` key)."""
    if not path.is_file():
        raise DaafError(f"model.pretrained: {path} does not exist (use imagenet, none or a file)")
    try:
        state = load_weights_only(path)
    except DaafError as exc:
        raise DaafError(f"model.pretrained: {exc}") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise DaafError(f"model.pretrained: {path} does not hold a state_dict")
    return state


def build_backbone(
    depth: int, pretrained: str = "imagenet", last_stride: int = 1
) -> ResNetBackbone:
    """ResNet-``depth``; ``pretrained`` is ``imagenet``, ``none`` or a path to a state_dict."""
    factory, weights = RESNETS[depth]
    resnet = factory(weights=None)
    if pretrained == "imagenet":
        _load_resnet(resnet, depth, _imagenet_state_dict(weights), Path(weights.url).name)
    elif pretrained != "none":
        path = Path(pretrained)
        _load_resnet(resnet, depth, _file_state_dict(path), f"model.pretrained: {path}")
    return ResNetBackbone(resnet, last_stride)


def _load_resnet(resnet: nn.Module, depth: int, state: dict, source: str) -> None:
    """``state`` into ``resnet``; DaafError naming ``source`` unless it is a ResNet-``depth``
    state_dict (with or without its classifier, which is unused)."""
    try:
        missing, unexpected = resnet.load_state_dict(state, strict=False)
    except (RuntimeError, TypeError, AttributeError) as exc:  # shapes of another depth
        raise DaafError(f"{source} is not a ResNet-{depth} state_dict") from exc
    for problem, keys in (("missing", missing), ("unexpected", unexpected)):
        keys = [k for k in keys if not k.startswith("fc.")]
        if keys:
            raise DaafError(
                f"{source} is not a ResNet-{depth} state_dict ({problem} {', '.join(keys[:3])} ...)"
            )
