"""COCO-17 keypoint constants: names, left/right flip order, skeleton and the PAB grouping schemes.

Keypoint coordinates everywhere in daaf are the annotation store's: pixel (c, r) covers
[c, c + 1) x [r, r + 1), as in torchvision and detectron2, so pixel c's centre is at
c + ``PIXEL_CENTRE`` (docs/annotations.md). An argmax index c of a map is the point c + 0.5;
matplotlib's ``imshow`` draws pixel c centred at c, so a keypoint is drawn at x - 0.5.
"""

from __future__ import annotations

import numpy as np

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)
PIXEL_CENTRE = 0.5  # pixel c's centre, in the store's frame

# FLIP_INDEX[k] is the keypoint that k becomes after a horizontal flip (left <-> right).
FLIP_INDEX: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

# COCO skeleton as 0-based index pairs, for drawing.
SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13),
    (13, 11),
    (16, 14),
    (14, 12),
    (11, 12),
    (5, 11),
    (6, 12),
    (5, 6),
    (5, 7),
    (6, 8),
    (7, 9),
    (8, 10),
    (1, 2),
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 6),
)

# Keypoint grouping schemes for the partial attention branch (paper Fig. 4, Table 6).
# "6" is the paper's default (Fig. 4c) in the authors' code order: head, shoulders, elbows,
# wrists + hips, knees, ankles. Fig. 4(b) and 4(d) are not given as index lists in the paper;
# "4" and "7" below are our reading of the figure.
KEYPOINT_GROUPS: dict[str, tuple[tuple[int, ...], ...]] = {
    "all": (tuple(range(17)),),
    "4": ((0, 1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16)),
    "6": ((0, 1, 2, 3, 4), (5, 6), (7, 8), (9, 10, 11, 12), (13, 14), (15, 16)),
    "7": ((0, 1, 2, 3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    "each": tuple((k,) for k in range(17)),
}


def keypoint_groups(scheme: str | list[list[int]]) -> tuple[tuple[int, ...], ...]:
    """Resolve a grouping scheme name (``all``, ``4``, ``6``, ``7``, ``each``) or a custom list."""
    if isinstance(scheme, str):
        if scheme not in KEYPOINT_GROUPS:
            raise ValueError(
                f"unknown keypoint grouping {scheme!r}; known: {', '.join(KEYPOINT_GROUPS)}"
            )
        return KEYPOINT_GROUPS[scheme]
    groups = tuple(tuple(int(k) for k in group) for group in scheme)
    flat = [k for group in groups for k in group]
    if not groups or any(not g for g in groups) or any(not 0 <= k < NUM_KEYPOINTS for k in flat):
        raise ValueError(
            f"a custom keypoint grouping needs non-empty groups of 0..16, got {scheme}"
        )
    if len(set(flat)) != len(flat):
        raise ValueError(f"a keypoint appears in more than one group: {scheme}")
    return groups


def resize_keypoints(
    keypoints: np.ndarray, size: tuple[int, int], new_size: tuple[int, int]
) -> np.ndarray:
    """(K, 3) x, y, score of an image of ``size`` (height, width) -> float32 (K, 3) in the image
    resized to ``new_size``: x and y scale by the size ratio (the store's frame, in which
    ``cv2.resize`` maps pixel centres the same way); scores and NaN stay."""
    (h, w), (new_h, new_w) = size, new_size
    return (keypoints * np.array([new_w / w, new_h / h, 1.0])).astype(np.float32)
