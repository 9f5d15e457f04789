"""What the training-only branches predict at inference (paper section 4.2.4, Fig. 7 and 8)."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from daaf.data.annotations import ImageAnnotation
from daaf.data.keypoints import resize_keypoints
from daaf.models.maps import to_size


@torch.no_grad()
def branch_outputs(
    model: nn.Module, images: torch.Tensor
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """HAB mask probabilities (B, H, W) in [0, 1] and PAB keypoint heatmaps (B, 17, H, W), at the
    size of ``images`` (B, 3, H, W): maps of branches that decode to 1/4 of it
    (``model.decoder_stride: 4``) are upsampled bilinearly, to be drawn over the image.

    The HAB predicts logits (its loss takes their sigmoid); the PAB regresses Gaussian heatmaps
    directly, so its maps are returned as they come. None for a branch the model lacks, and for
    a PAB that predicts part images instead of keypoints. Puts the model in eval mode.
    """
    model.eval()
    if not hasattr(model, "branch_outputs"):
        return None, None
    size = tuple(images.shape[-2:])
    mask, parts = model.branch_outputs(images)
    if parts is not None and model.pab.target != "keypoints":
        parts = None
    return (
        None if mask is None else to_size(mask, size)[:, 0].cpu().numpy(),
        None if parts is None else to_size(parts, size).cpu().numpy(),
    )


def labels_in_input_frame(
    record: ImageAnnotation, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """A stored annotation resized to the network input: mask (H, W) in [0, 1] and keypoints
    (17, 3) with x, y in input pixels, in the store's frame (pixel c covers [c, c + 1))."""
    mask = cv2.resize(record.mask, (width, height), interpolation=cv2.INTER_LINEAR)
    keypoints = resize_keypoints(record.keypoints, record.image_size, (height, width))
    return mask.astype(np.float32) / 255, keypoints
