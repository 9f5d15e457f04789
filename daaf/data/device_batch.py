"""The device side of a training batch: what the workers leave undone, done batched where the model is.

Workers hand over uint8 (H, W, 3) images, uint8 masks (HAB only), keypoints (keypoint PAB
only), pids, ``valid`` and each image's erasing rectangle (``daaf.data.train_set.TrainSet``).
``prepare_batch`` turns that into the criterion's tensors: normalised, erased images, masks in
[0, 1] and Gaussian heatmaps, the same for the same seed and augmentation wherever they are
made; with branches decoding to 1/``stride`` of the input (``model.decoder_stride``),
masks area-averaged and heatmaps rendered on that grid.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from daaf.data.config import DataConfig
from daaf.errors import DaafError


def normalize_images(images: torch.Tensor, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8 (..., H, W, 3) RGB -> float32 (..., 3, H, W) standardised with ``mean``/``std`` in
    [0, 1] units, on the images' device (training and evaluation alike). Workers hand images
    over as decoded, channels last: the transpose costs a worker more than the device."""
    mean_t = torch.tensor(mean, device=images.device)
    std_t = torch.tensor(std, device=images.device)
    return ((images.float() / 255.0 - mean_t) / std_t).movedim(-1, -3).contiguous()


def erase(images: torch.Tensor, rectangles: torch.Tensor) -> torch.Tensor:
    """Set each image's rectangle (B, 4: top, left, height, width; height 0 for none) to 0, the
    mean after normalisation (random erasing, Zhong et al.)."""
    top, left, height, width = rectangles.long().unbind(1)
    rows = torch.arange(images.shape[-2], device=images.device)
    cols = torch.arange(images.shape[-1], device=images.device)
    in_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])
    hole = in_rows[:, :, None] & in_cols[:, None, :]
    return images.masked_fill(hole[:, None], 0.0)


def keypoint_visibility(
    keypoints: torch.Tensor, size: tuple[int, int], score_threshold: float
) -> torch.Tensor:
    """(B, K) bool: the keypoints whose heatmap has a peak, those scored at least
    ``score_threshold`` with a centre inside the map [0, W] x [0, H] (map pixels)."""
    height, width = size
    x, y, score = keypoints.float().unbind(-1)
    # Closed on both sides, so that a mirror (x -> W - x) keeps or drops a keypoint alike.
    inside = (x >= 0) & (x <= width) & (y >= 0) & (y <= height)  # False for NaN
    return inside & ~(score < score_threshold)


def render_heatmap_batch(
    keypoints: torch.Tensor, size: tuple[int, int], sigma: float, score_threshold: float
) -> torch.Tensor:
    """Gaussian keypoint heatmaps, the PAB's targets (paper eq. 4, as in CPN): (B, K, 3) x, y,
    score in map pixels -> float32 (B, K, H, W), one Gaussian of height 1 and std ``sigma`` each.

    Coordinates are the store's: pixel c covers [c, c + 1), so the Gaussian is sampled at the
    pixel centres c + 0.5 and a keypoint at x = 20.0 peaks between pixels 19 and 20. A score
    below ``score_threshold``, NaN coordinates or a centre outside the map [0, W] x [0, H] give
    an all-zero map: the PAB loss then pulls that channel toward zero everywhere ("this keypoint
    is not here"); only a sample whose annotation status is not ok is left out (docs/paper.md).
    """
    height, width = size
    x, y, _ = keypoints.float().unbind(-1)
    keep = keypoint_visibility(keypoints, size, score_threshold)
    xs = torch.arange(width, dtype=torch.float32, device=keypoints.device) + 0.5
    ys = torch.arange(height, dtype=torch.float32, device=keypoints.device) + 0.5
    gauss_x = torch.exp(-((xs - x[..., None]) ** 2) / (2 * sigma**2))  # (B, K, W)
    gauss_y = torch.exp(-((ys - y[..., None]) ** 2) / (2 * sigma**2))  # (B, K, H)
    maps = gauss_y[..., :, None] * gauss_x[..., None, :]
    return torch.where(keep[..., None, None], maps, 0.0)


def area_average(maps: torch.Tensor, stride: int) -> torch.Tensor:
    """(..., C, H, W) -> (..., C, H/stride, W/stride): each coarse pixel the mean of the
    ``stride`` x ``stride`` input pixels it covers (a mask stays a soft mask in [0, 1])."""
    return F.avg_pool2d(maps, stride) if stride > 1 else maps


def prepare_batch(
    batch: dict[str, torch.Tensor], cfg: DataConfig, device: torch.device, stride: int = 1
) -> dict[str, torch.Tensor]:
    """A worker batch -> the criterion's ``images``, ``pids``, ``valid`` and, when handed over,
    ``masks`` (B, 1, H/stride, W/stride), ``heatmaps`` (B, 17, H/stride, W/stride) and
    ``keypoint_visible`` (B, 17: the heatmaps with a peak) at the branches' output size (``stride``: ``model.decoder_stride``; 1 = the input size).

    At ``stride`` s, masks are area-averaged (soft values in [0, 1]) and each keypoint's Gaussian
    is rendered on the coarse grid at x / s, y / s with std ``heatmap_sigma`` / s: coarse pixel j
    covers input pixels [j s, (j + 1) s), so its centre (j + 0.5) s keeps the store's convention.
    """
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    images = normalize_images(batch["images"], cfg.pixel_mean, cfg.pixel_std)
    out = {
        "images": erase(images, batch["erasing"]),
        "pids": batch["pids"],
        "valid": batch["valid"],
    }
    if "masks" in batch:
        out["masks"] = area_average(batch["masks"].float() / 255.0, stride)
    if "keypoints" in batch:
        if isinstance(cfg.keypoint_score_threshold, str):
            raise DaafError(
                f"data.keypoint_score_threshold is {cfg.keypoint_score_threshold!r}: resolve it "
                "with daaf.data.annotations.keypoint_score_threshold(setting, store) first "
                "(daaf.training.trainer.build_train_set does)"
            )
        scale = torch.tensor([1 / stride, 1 / stride, 1.0], device=images.device)
        keypoints = batch["keypoints"] * scale
        size = (images.shape[-2] // stride, images.shape[-1] // stride)
        threshold = cfg.keypoint_score_threshold
        out["heatmaps"] = render_heatmap_batch(
            keypoints, size, cfg.heatmap_sigma / stride, threshold
        )
        out["keypoint_visible"] = keypoint_visibility(keypoints, size, threshold)
    return out
