"""Grad-CAM of embeddings (paper section 4.2.3, eq. 5-8).

For a vector x computed from feature maps A (K channels), eq. 5-6 give one map per component:
L^n = (1/K) sum_k |dx_n/dA^k ⊙ A^k|. The holistic map (eq. 7) averages L^n over the embedding's
components; the partial map of group i (eq. 8) averages it over the components of the vector
obtained by average-pooling the i-th channel group of the last feature map. In both, A is the
first block's output (torchvision's ``layer1``, the paper's "ResNet conv1" feature map).

Because of the absolute value, sum_n L^n is not the map of sum_n x_n: the exact average needs one
gradient per component. They are computed as batched vector-Jacobian products (``torch.autograd.
grad(..., is_grads_batched=True)``), a chunk of components per backward pass. ``components``
caps how many components enter each average: a fixed random subset drawn with ``seed`` (a ResNet-50
BoT embedding has 2048, each of its six channel groups 341); ``None`` or 0 computes all of them.

The stride-2 layers after A (layer2's strided 3x3 conv and 1x1 shortcut) send the gradient to a
fixed sub-grid of A's cells, so a single map is dominated by a regular dot grid. ``jitter`` > 1
averages the map over perturbed copies of the input, as SmoothGrad (Smilkov et al. 2017) does
with noise; here the perturbations are translations by whole cells of A, which move the content
against that grid (noise would leave the grid where it is): the input is shifted by
0..jitter-1 cells in x and y, each map is computed by eq. 5-8, shifted back, and the maps are
averaged. jitter = 1 is the plain definition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from daaf.errors import DaafError

DEFAULT_COMPONENTS = 256
DEFAULT_JITTER = 2  # what the pictures use: 2 x 2 shifts cancel layer2's stride-2 grid
MEMORY_BUDGET = 2**28  # bytes of batched gradients of A per backward pass
MAX_CHUNK = 64


def select_components(total: int, components: int | None, seed: int = 0) -> np.ndarray:
    """Indices of the components to average: all when ``components`` is None, 0 or >= total,
    else a sorted random subset of ``components`` drawn with ``seed``."""
    if not components or components >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, components, replace=False))


def describe_components(total: int, components: int | None, seed: int = 0) -> str:
    """What :func:`select_components` averaged, for a figure title."""
    if not components or components >= total:
        return f"all {total} components (exact)"
    return f"{components} of {total} components (random, seed {seed})"


def describe_jitter(jitter: int) -> str:
    """What :func:`shift_averaged` did, for a figure title."""
    if jitter <= 1:
        return "single pass (no jitter)"
    return (
        f"averaged over {jitter}x{jitter} input shifts of 0-{jitter - 1} layer1 cells, "
        "against the stride-2 dot grid"
    )


def grad_cam(
    activations: torch.Tensor, vectors: torch.Tensor, sets: Sequence[Sequence[int]]
) -> torch.Tensor:
    """Mean of eq. 5 over each set of components of ``vectors``.

    activations A (B, K, h, w) and vectors x (B, N) on one graph, each sample's x depending on
    its own A only (eval mode). Returns (B, len(sets), h, w).
    """
    b, n = vectors.shape
    union = sorted({int(i) for s in sets for i in s})
    position = {c: p for p, c in enumerate(union)}
    per_component = activations.new_empty(len(union), b, *activations.shape[2:])
    chunk = max(1, min(MAX_CHUNK, MEMORY_BUDGET // (activations.numel() * 4)))
    starts = range(0, len(union), chunk)
    for start in tqdm(starts, desc="Grad-CAM", unit="chunk", leave=False, disable=None):
        ids = union[start : start + chunk]
        seeds = vectors.new_zeros(len(ids), b, n)
        seeds[torch.arange(len(ids)), :, ids] = 1
        (grads,) = torch.autograd.grad(
            vectors, activations, seeds, retain_graph=True, is_grads_batched=True
        )
        per_component[start : start + len(ids)] = (grads * activations.detach()).abs().mean(2)
    maps = [per_component[[position[int(i)] for i in s]].mean(0) for s in sets]
    return torch.stack(maps, dim=1)


def _feature_maps(
    model: nn.Module, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(layer1 output, last feature map, eval embedding) on one graph.

    A DAAF model gives them itself; any other module (the exported base network, a torchvision
    ResNet) through forward hooks on its submodules named ``layer1`` and ``layer4``.
    """
    model.eval()
    if hasattr(model, "feature_maps"):
        return model.feature_maps(images)
    if isinstance(model, torch.jit.ScriptModule):
        raise DaafError(
            "Grad-CAM needs an eager model: pass the export's model_state.pt or a training "
            "checkpoint, not model.ts"
        )
    names = dict(model.named_modules())
    found: dict[str, torch.Tensor] = {}
    handles = []
    for layer in ("layer1", "layer4"):
        matches = [name for name in names if name.split(".")[-1] == layer]
        if not matches:
            raise DaafError(f"Grad-CAM: the model has no submodule named {layer}")
        hook = lambda module, args, out, layer=layer: found.__setitem__(layer, out)  # noqa: E731
        handles.append(names[matches[0]].register_forward_hook(hook))
    try:
        embedding = model(images)
    finally:
        for handle in handles:
            handle.remove()
    return found["layer1"], found["layer4"], embedding


def shift_averaged(
    maps_of: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, jitter: int = 1
) -> torch.Tensor:
    """Maps (B, G, h, w) of ``maps_of(images)``, or, when ``jitter`` > 1, their average at image
    size (B, G, H, W) over the input moved by 0..jitter-1 cells of the maps' grid down and right
    (replicate padding on the top and left, so every pass sees the whole image), each map moved
    back before averaging."""
    first = maps_of(images)
    if jitter <= 1:
        return first
    size = images.shape[-2:]
    cell = size[0] // first.shape[-2]
    total = 0
    for dy in range(jitter):
        for dx in range(jitter):
            top, left = dy * cell, dx * cell
            shifted = F.pad(images, (left, 0, top, 0), mode="replicate")
            maps = first if dy == dx == 0 else maps_of(shifted)
            up = F.interpolate(maps, size=shifted.shape[-2:], mode="bilinear", align_corners=False)
            total = total + up[..., top : top + size[0], left : left + size[1]]
    return total / jitter**2


def to_display(maps: torch.Tensor, size: tuple[int, int], normalize: bool = True) -> np.ndarray:
    """(B, G, h, w) maps bilinearly resized to ``size``, each scaled to [0, 1] (min-max)."""
    maps = F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    if normalize:
        low = maps.amin(dim=(2, 3), keepdim=True)
        span = maps.amax(dim=(2, 3), keepdim=True) - low
        maps = (maps - low) / span.clamp_min(1e-12)
    return maps.detach().cpu().numpy()


def holistic_attention(
    model: nn.Module,
    images: torch.Tensor,
    components: int | None = DEFAULT_COMPONENTS,
    seed: int = 0,
    normalize: bool = True,
    jitter: int = 1,
) -> np.ndarray:
    """Holistic attention map (eq. 7) of each image: (B, H, W), in [0, 1] when ``normalize``.

    Puts the model in eval mode; ``components``/``seed`` as :func:`select_components`,
    ``jitter`` as :func:`shift_averaged`.
    """

    def maps_of(inputs: torch.Tensor) -> torch.Tensor:
        low, _, embedding = _feature_maps(model, inputs)
        chosen = select_components(embedding.shape[1], components, seed)
        return grad_cam(low, embedding, [chosen])

    maps = shift_averaged(maps_of, images, jitter)
    return to_display(maps, tuple(images.shape[-2:]), normalize)[:, 0]


def partial_attention(
    model: nn.Module,
    images: torch.Tensor,
    groups: int = 6,
    components: int | None = DEFAULT_COMPONENTS,
    seed: int = 0,
    normalize: bool = True,
    jitter: int = 1,
) -> np.ndarray:
    """Partial attention maps (eq. 8), one per channel group: (B, groups, H, W).

    Group i is channels [i*c, (i+1)*c) of the last feature map, c = floor(C / groups) as the
    PAB splits them (leftover channels take no part); its vector is their average pooling.
    ``components`` caps the components per group (same subset positions in every group);
    ``jitter`` as :func:`shift_averaged`.
    """

    def maps_of(inputs: torch.Tensor) -> torch.Tensor:
        low, high, _ = _feature_maps(model, inputs)
        width = high.shape[1] // groups
        if width == 0:
            raise DaafError(f"{groups} groups need at least {groups} channels, got {high.shape[1]}")
        pooled = high[:, : groups * width].mean(dim=(2, 3))
        chosen = select_components(width, components, seed)
        return grad_cam(low, pooled, [i * width + chosen for i in range(groups)])

    maps = shift_averaged(maps_of, images, jitter)
    return to_display(maps, tuple(images.shape[-2:]), normalize)
