"""Grad-CAM of embeddings (eq. 5-8): hand-checked linear case, batched vs per-component loop."""

import numpy as np
import pytest
import torch
from torch import nn

from daaf.evaluation.visualize import gradcam
from daaf.evaluation.visualize.gradcam import (
    describe_components,
    grad_cam,
    holistic_attention,
    partial_attention,
    select_components,
)


def loop_reference(activations, vectors, sets):
    """Eq. 5-8 one component at a time: the plain definition."""
    per = {}
    for n in sorted({i for s in sets for i in s}):
        (g,) = torch.autograd.grad(vectors[:, n].sum(), activations, retain_graph=True)
        per[n] = (g * activations).abs().mean(1)
    return torch.stack([torch.stack([per[n] for n in s]).mean(0) for s in sets], 1)


def test_linear_embedding_gives_weights_times_activations():
    # x_n = sum_{k,h,w} W[n,k,h,w] A[k,h,w]: dx_n/dA = W[n], so L^n = mean_k |W[n] * A|.
    torch.manual_seed(0)
    activations = torch.randn(3, 4, 5, 2).requires_grad_()
    weights = torch.randn(6, 4, 5, 2)
    vectors = torch.einsum("bkhw,nkhw->bn", activations, weights)
    sets = [[0, 1, 2, 3, 4, 5], [2], [1, 4]]
    got = grad_cam(activations, vectors, sets)
    per = (weights[None] * activations.detach()[:, None]).abs().mean(2)  # (B, N, h, w)
    expected = torch.stack([per[:, s].mean(1) for s in sets], 1)
    torch.testing.assert_close(got, expected)
    # The absolute value makes it differ from the map of the summed embedding.
    summed = (weights.sum(0)[None] * activations.detach()).abs().mean(1) / 6
    assert not torch.allclose(got[:, 0], summed)


def test_batched_chunks_equal_the_per_component_loop(daaf_model, images, monkeypatch):
    monkeypatch.setattr(gradcam, "MAX_CHUNK", 3)  # 7 components: chunks of 3, 3, 1
    low, _, embedding = daaf_model.feature_maps(images)
    sets = [[5, 17, 100, 200, 301], [17, 44, 511]]
    torch.testing.assert_close(
        grad_cam(low, embedding, sets), loop_reference(low, embedding, sets), rtol=1e-4, atol=1e-7
    )


def test_holistic_maps_shape_range_and_base_network_hooks(daaf_model, images):
    maps = holistic_attention(daaf_model, images, components=4)
    assert maps.shape == (2, 64, 32) and maps.dtype == np.float32
    assert np.allclose(maps.min(axis=(1, 2)), 0) and np.allclose(maps.max(axis=(1, 2)), 1)
    # The exported base network has no feature_maps(): forward hooks find layer1 and layer4.
    raw = holistic_attention(daaf_model, images, components=4, normalize=False)
    hooked = holistic_attention(daaf_model.base_network(), images, components=4, normalize=False)
    np.testing.assert_allclose(hooked, raw, rtol=1e-5, atol=1e-9)


class TinyNet(nn.Module):
    """layer1 -> layer4 (5 channels) -> global average: the embedding is the pooled layer4."""

    def __init__(self):
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.layer4 = nn.Sequential(nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.Tanh())

    def forward(self, x):
        return self.layer4(self.layer1(x)).mean(dim=(2, 3))


def test_partial_groups_are_floor_c_over_g_channels_of_the_last_map():
    torch.manual_seed(0)
    net, images = TinyNet(), torch.randn(2, 3, 8, 6)
    maps = partial_attention(net, images, groups=2, components=None, normalize=False)
    low = net.layer1(images)
    pooled = net.layer4(low).mean(dim=(2, 3))
    # 5 channels in 2 groups: channels 0-1 and 2-3; channel 4 is left out as the PAB does.
    reference = loop_reference(low, pooled, [[0, 1], [2, 3]])
    upsampled = torch.nn.functional.interpolate(reference, size=(8, 6), mode="bilinear")
    np.testing.assert_allclose(maps, upsampled.detach().numpy(), rtol=1e-5, atol=1e-8)
    assert maps.shape == (2, 2, 8, 6)


def test_component_subsets():
    assert select_components(10, None).tolist() == list(range(10))
    assert select_components(10, 0).tolist() == select_components(10, 12).tolist()
    subset = select_components(2048, 256, seed=3)
    assert len(set(subset.tolist())) == 256 and (np.diff(subset) > 0).all()
    assert subset.tolist() == select_components(2048, 256, seed=3).tolist()
    assert subset.tolist() != select_components(2048, 256, seed=4).tolist()
    assert describe_components(2048, 256, 3) == "256 of 2048 components (random, seed 3)"
    assert describe_components(128, 256) == "all 128 components (exact)"


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_models_are_refused(daaf_model, images):
    from daaf.errors import DaafError

    scripted = torch.jit.trace(daaf_model.base_network(), images)
    with pytest.raises(DaafError, match="model_state.pt"):
        holistic_attention(scripted, images, components=2)


class StridedNet(nn.Module):
    """layer1 -> a 1x1 stride-2 conv (as in layer2's shortcut) -> pool: the gradient reaches only
    the even cells of layer1, the dot grid of a single Grad-CAM pass."""

    def __init__(self):
        super().__init__()
        self.layer1 = nn.Conv2d(3, 4, 3, stride=4, padding=1)
        self.layer4 = nn.Sequential(nn.Conv2d(4, 6, 1, stride=2), nn.Tanh())

    def forward(self, x):
        return self.layer4(self.layer1(x)).mean(dim=(2, 3))


def test_jitter_removes_the_stride_grid_and_one_pass_is_the_plain_map():
    torch.manual_seed(0)
    net, images = StridedNet().eval(), torch.rand(1, 3, 32, 16) + 0.5
    low = net.layer1(images)
    plain = gradcam.shift_averaged(
        lambda x: grad_cam(*_low_and_embedding(net, x), [range(6)]), images, jitter=1
    )
    assert plain.shape == low.shape[:1] + (1,) + low.shape[2:]  # jitter 1: the plain (h, w) map
    assert (plain[0, 0, 1::2] == 0).all() and (plain[0, 0, :, 1::2] == 0).all()  # the grid
    smooth = holistic_attention(net, images, components=None, normalize=False, jitter=2)
    assert smooth.shape == (1, 32, 16) and (smooth > 0).all()
    single = holistic_attention(net, images, components=None, normalize=False, jitter=1)
    upsampled = torch.nn.functional.interpolate(plain, size=(32, 16), mode="bilinear")
    np.testing.assert_allclose(single, upsampled[:, 0].detach().numpy(), rtol=1e-6)
    assert gradcam.describe_jitter(2).startswith("averaged over 2x2 input shifts")


def _low_and_embedding(net, x):
    low = net.layer1(x)
    return low, net.layer4(low).mean(dim=(2, 3))
