"""Was the attention learned? Measurements the paper does not make, on data with known truth.

- ``branch_accuracy``: the HAB output's IoU with the true person mask and the PAB heatmaps'
  PCK against the true keypoints (paper Fig. 7 and 8, as numbers), in input pixels whatever
  the branches' output stride (``model.decoder_stride``).
- ``background_sensitivity``: how much the embedding moves when the background behind the same
  person is replaced (via the person mask), relative to the distance between different people.
  The paper claims DAAF's features focus on the person; a smaller value measures that.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from daaf.data.annotations import AnnotationStore
from daaf.data.datasets import ReIDDataset, Sample
from daaf.data.images import read_rgb
from daaf.data.keypoints import PIXEL_CENTRE, resize_keypoints
from daaf.data.transforms import eval_transform
from daaf.models.maps import to_size
from daaf.models.meta import ModelMeta
from daaf.utils.device import resolve_device

# A PAB localises keypoints when its PCK is at least this far above a constant map's: the bar of
# its positive control (scripts/pab_control.py), which study v2's starved decoders miss.
LOCALISES_MARGIN = 0.15


def _batch(
    dataset: ReIDDataset, samples: list[Sample], meta: ModelMeta
) -> tuple[torch.Tensor, list[np.ndarray]]:
    images = [read_rgb(dataset.image_dir / s.path) for s in samples]
    tensors = [
        eval_transform(im, meta.height, meta.width, meta.pixel_mean, meta.pixel_std)
        for im in images
    ]
    return torch.stack(tensors), images


def mask_iou(probability: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> float:
    """IoU of two (H, W) masks after thresholding both at ``threshold``."""
    pred, true = probability >= threshold, truth >= threshold
    union = np.logical_or(pred, true).sum()
    return float(np.logical_and(pred, true).sum() / union) if union else 1.0


def pck(
    heatmaps: np.ndarray, keypoints: np.ndarray, tolerance: float, stride: float = 1.0
) -> tuple[int, int]:
    """(correct, visible): heatmap argmaxes within ``tolerance`` pixels of visible true keypoints.

    heatmaps (17, H/stride, W/stride) of an H x W input; keypoints (17, 3) in the store's frame
    of the input, where the argmax map pixel c stands for its centre (c + 0.5) x ``stride``
    (``daaf.data.keypoints``): map pixel c covers input pixels [c stride, (c + 1) stride).
    The argmax is mapped back exactly, not read off an upsampled map, whose maximum would sit
    half an input pixel beside that centre (bilinear interpolation peaks at a map pixel's
    centre, which at an even stride falls between two input pixels).
    """
    correct = visible = 0
    width = heatmaps.shape[2]
    for k, (x, y, score) in enumerate(keypoints):
        if score <= 0 or not np.isfinite(x):
            continue
        visible += 1
        py, px = divmod(int(heatmaps[k].argmax()), width)
        dx, dy = (px + PIXEL_CENTRE) * stride - x, (py + PIXEL_CENTRE) * stride - y
        correct += int(np.hypot(dx, dy) <= tolerance)
    return correct, visible


@dataclass
class BranchAccuracy:
    mask_iou: float  # mean over images
    pck: float  # fraction of visible keypoints
    pck_tolerance: str


@torch.no_grad()
def branch_accuracy(
    model: torch.nn.Module,
    dataset: ReIDDataset,
    store: AnnotationStore,
    meta: ModelMeta,
    samples: list[Sample],
    device: torch.device | str,
    batch_size: int = 32,
    pck_fraction: float = 0.1,
) -> BranchAccuracy:
    """HAB mask IoU and PAB PCK@``pck_fraction`` x image height, in the network's input pixels.

    A branch decoding to 1/s of the input (``model.decoder_stride``) is measured there too: its
    mask probabilities are upsampled bilinearly to the input size (a map pixel's value lands at
    its centre, the store's convention), so IoU counts the same pixels as at stride 1; PCK maps
    each heatmap argmax back to its map pixel's centre in input pixels (:func:`pck`).
    """
    device = resolve_device(device)
    model.eval()
    ious, correct, visible = [], 0, 0
    height, width = meta.height, meta.width
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        images, originals = _batch(dataset, chunk, meta)
        mask, heatmaps = model.branch_outputs(images.to(device))
        if mask is not None:
            mask = to_size(mask, (height, width))
        stride = height / heatmaps.shape[-2] if heatmaps is not None else 1.0
        for i, sample in enumerate(chunk):
            record = store.get(sample.path)
            if mask is not None:
                truth = cv2.resize(record.mask, (width, height)).astype(np.float32) / 255
                ious.append(mask_iou(mask[i, 0].cpu().numpy(), truth))
            if heatmaps is not None:
                kps = resize_keypoints(record.keypoints, originals[i].shape[:2], (height, width))
                c, v = pck(heatmaps[i].cpu().numpy(), kps, pck_fraction * height, stride)
                correct, visible = correct + c, visible + v
    return BranchAccuracy(
        mask_iou=float(np.mean(ious)) if ious else float("nan"),
        pck=correct / visible if visible else float("nan"),
        pck_tolerance=f"{pck_fraction:g} x image height",
    )


def replace_background(
    image: np.ndarray, mask: np.ndarray, other: np.ndarray, other_mask: np.ndarray
) -> np.ndarray:
    """``image``'s person (soft ``mask`` in [0, 1]) over ``other``'s background, whose own
    person is removed by inpainting (OpenCV Telea)."""
    h, w = image.shape[:2]
    other = cv2.resize(other, (w, h))
    hole = (cv2.resize(other_mask, (w, h)) > 0.1).astype(np.uint8)
    hole = cv2.dilate(hole, np.ones((5, 5), np.uint8))
    background = cv2.inpaint(other, hole, 5, cv2.INPAINT_TELEA)
    alpha = mask[..., None]
    return (alpha * image + (1 - alpha) * background).round().astype(np.uint8)


@dataclass
class BackgroundSensitivity:
    swap_distance: float  # mean cosine distance, same image with another background
    other_id_distance: float  # mean cosine distance to another identity's image
    ratio: float  # swap / other: 0 = background ignored, 1 = as much as changing the person


@torch.no_grad()
def background_sensitivity(
    model: torch.nn.Module,
    dataset: ReIDDataset,
    store: AnnotationStore,
    meta: ModelMeta,
    samples: list[Sample],
    device: torch.device | str,
    seed: int = 0,
) -> BackgroundSensitivity:
    """Embedding change under a background swap, relative to the change to another person."""
    device = resolve_device(device)
    model.eval()
    rng = np.random.default_rng(seed)
    partners = [samples[j] for j in rng.permutation(len(samples))]
    pairs = [(s, p) for s, p in zip(samples, partners, strict=True) if s.pid != p.pid]

    def embed(images: list[np.ndarray]) -> torch.Tensor:
        batch = torch.stack(
            [
                eval_transform(im, meta.height, meta.width, meta.pixel_mean, meta.pixel_std)
                for im in images
            ]
        )
        return torch.nn.functional.normalize(model(batch.to(device)).float(), dim=1).cpu()

    swap, other = [], []
    for start in range(0, len(pairs), 32):
        chunk = pairs[start : start + 32]
        originals, swapped, partner_images = [], [], []
        for sample, partner in chunk:
            image = read_rgb(dataset.image_dir / sample.path)
            partner_image = read_rgb(dataset.image_dir / partner.path)
            h, w = image.shape[:2]
            mask = cv2.resize(store.get(sample.path).mask, (w, h)).astype(np.float32) / 255
            partner_mask = store.get(partner.path).mask.astype(np.float32) / 255
            originals.append(image)
            partner_images.append(partner_image)
            swapped.append(replace_background(image, mask, partner_image, partner_mask))
        e, e_swap, e_other = embed(originals), embed(swapped), embed(partner_images)
        swap.append(1 - (e * e_swap).sum(dim=1))
        other.append(1 - (e * e_other).sum(dim=1))
    swap_d, other_d = float(torch.cat(swap).mean()), float(torch.cat(other).mean())
    return BackgroundSensitivity(swap_d, other_d, swap_d / other_d if other_d > 0 else float("nan"))


def attention_scores(
    model: torch.nn.Module,
    dataset: ReIDDataset,
    truth: AnnotationStore,
    meta: ModelMeta,
    device: torch.device,
) -> dict[str, float]:
    """The demo's and the synthetic study's attention columns on the query split, against the
    true masks and keypoints in ``truth``: background sensitivity (swap distance and ratio) and,
    for a model with its branches (a training checkpoint), HAB mask IoU and PAB PCK."""
    sensitivity = background_sensitivity(model, dataset, truth, meta, dataset.query, device)
    scores = {
        "background_swap_distance": sensitivity.swap_distance,
        "background_sensitivity": sensitivity.ratio,
    }
    if getattr(model, "hab", None) is not None or getattr(model, "pab", None) is not None:
        accuracy = branch_accuracy(model, dataset, truth, meta, dataset.query, device)
        scores.update(hab_mask_iou=accuracy.mask_iou, pab_pck=accuracy.pck)
    return scores
