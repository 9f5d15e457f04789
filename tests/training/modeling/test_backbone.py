"""Backbone weights (ImageNet cache, offline error, state_dict files), strides, Grad-CAM maps."""

import urllib.error

import pytest
import torch
import torchvision

from daaf.config import Config
from daaf.errors import DaafError
from daaf.models import build_model
from daaf.models.backbone import build_backbone
from daaf.utils.safe_load import REFUSED

RESNET18_FILE = "resnet18-f37072fd.pth"


@pytest.fixture
def empty_torch_home(tmp_path, monkeypatch):
    """TORCH_HOME in an empty folder and no network: any download fails at once."""

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path


def test_offline_imagenet_error_says_which_file_goes_where(empty_torch_home):
    with pytest.raises(DaafError) as info:
        build_backbone(18, "imagenet")
    message = str(info.value)
    assert RESNET18_FILE in message and "$TORCH_HOME/hub/checkpoints/" in message
    assert str(empty_torch_home / "hub" / "checkpoints") in message
    assert "model.pretrained=none" in message


def test_imagenet_weights_placed_in_the_cache_are_used_offline(empty_torch_home):
    weights = torchvision.models.resnet18(weights=None).state_dict()
    cache = empty_torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(weights, cache / RESNET18_FILE)
    backbone = build_backbone(18, "imagenet")
    torch.testing.assert_close(backbone.layer3[1].conv2.weight, weights["layer3.1.conv2.weight"])


def test_pretrained_path_loads_a_state_dict_without_classifier(tmp_path):
    weights = torchvision.models.resnet18(weights=None).state_dict()
    del weights["fc.weight"], weights["fc.bias"]
    torch.save({"state_dict": weights}, tmp_path / "r18.pth")
    backbone = build_backbone(18, str(tmp_path / "r18.pth"))
    torch.testing.assert_close(backbone.stem[0].weight, weights["conv1.weight"])
    with pytest.raises(DaafError, match="r18.pth is not a ResNet-34 state_dict"):
        build_backbone(34, str(tmp_path / "r18.pth"))
    with pytest.raises(DaafError, match="nothing.pth does not exist"):
        build_backbone(18, str(tmp_path / "nothing.pth"))


@pytest.mark.parametrize("depth, low, high", [(18, 64, 512), (50, 256, 2048)])
@pytest.mark.parametrize("last_stride", [1, 2])
def test_feature_map_strides_and_channels(depth, low, high, last_stride):
    backbone = build_backbone(depth, "none", last_stride)
    f1, f4 = backbone(torch.randn(1, 3, 64, 32))
    assert f1.shape == (1, low, 16, 8)
    assert f4.shape == (1, high, 64 // (16 * last_stride), 32 // (16 * last_stride))
    assert (backbone.low_channels, backbone.out_channels) == (low, high)


def test_eval_runs_no_branch_and_feature_maps_give_the_embedding():
    cfg = Config()
    cfg.model.depth, cfg.model.pretrained = 18, "none"
    cfg.model.hab = cfg.model.pab = True
    model = build_model(cfg, 4).eval()

    def fail(*args):
        raise AssertionError("a branch ran in eval mode")

    model.hab.forward = model.pab.forward = fail
    images = torch.randn(2, 3, 64, 32)
    embedding = model(images)
    low, high, cam_embedding = model.feature_maps(images)
    torch.testing.assert_close(cam_embedding, embedding)
    assert low.shape == (2, 64, 16, 8) and high.shape == (2, 512, 4, 2)
    low.retain_grad()
    cam_embedding[:, 0].sum().backward()
    assert low.grad is not None and low.grad.abs().sum() > 0


def test_a_crafted_file_in_the_imagenet_cache_is_refused_without_running(
    empty_torch_home, malicious_pt
):
    """torch.hub's loader unpickles a cached file with weights_only=False: daaf reads it as
    tensors only and refuses it in one line."""
    write, marker = malicious_pt
    cached = write(empty_torch_home / "hub" / "checkpoints" / RESNET18_FILE)
    with pytest.raises(DaafError) as info:
        build_backbone(18, "imagenet")
    assert str(info.value) == f"{cached}: {REFUSED}"
    assert not marker.exists()


def test_a_cached_file_of_another_network_is_named(empty_torch_home):
    cache = empty_torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), cache / RESNET18_FILE)
    with pytest.raises(
        DaafError,
        match=f"^{RESNET18_FILE} is not a ResNet-18 state_dict "
        r"\(unexpected layer1.2.conv1.weight, ",
    ):
        build_backbone(18, "imagenet")
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), cache / RESNET18_FILE)
    with pytest.raises(DaafError, match=f"^{RESNET18_FILE} is not a ResNet-18 state_dict$"):
        build_backbone(18, "imagenet")
    torch.save([1, 2], cache / RESNET18_FILE)
    with pytest.raises(DaafError, match=f"^{RESNET18_FILE} is not a ResNet-18 state_dict$"):
        build_backbone(18, "imagenet")
