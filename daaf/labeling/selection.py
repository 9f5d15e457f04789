"""Choose the target person of a ReID crop among a detector's people, and pair mask with keypoints.

A crop often holds more than one person: the target is the one its bounding box was drawn
around, so it fills the crop and sits near its centre. Each person detection gets

    target = score x IoU(box, crop frame) x centring,   centring = 1 - |offset| / sqrt(2)

where ``offset`` is the box centre's distance from the crop centre in half-widths and
half-heights (0 at the centre, 1 at a corner). The keypoints are taken from the keypoint
detection whose box overlaps the chosen mask detection's box most (box IoU), so that mask and
keypoints describe the same person. Pure functions on arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from daaf.data.annotations.schema import STATUS_NO_PERSON, empty_keypoints
from daaf.labeling.base import LabelResult

ANY_CLASS = "any (random weights)"  # ``person_classes`` in ``describe()`` when is_person is relaxed
# Box IoU that pairs a keypoint detection with the chosen person; 0 for random weights.
MIN_IOU = 0.3
DEFAULT_MIN_SCORE = 0.5  # person score floor of real weights; 0 for random weights


def pairing_iou(any_class: bool) -> float:
    """``MIN_IOU``, or 0 for random weights (``any_class``): random boxes of two models rarely
    overlap, and the smoke test must still pair masks with keypoints."""
    return 0.0 if any_class else MIN_IOU


def person_score_floor(min_score: float | None, any_class: bool) -> float:
    """``min_score`` if given, else ``DEFAULT_MIN_SCORE``, or 0 for random weights."""
    if min_score is not None:
        return min_score
    return 0.0 if any_class else DEFAULT_MIN_SCORE


def selection_info(any_class: bool, person_class: int, min_score: float) -> dict[str, Any]:
    """A labeler's ``describe()`` entries for choosing the person, with the values it uses."""
    return {
        "min_person_score": min_score,
        "person_classes": ANY_CLASS if any_class else [person_class],
        "selection": "score x IoU(box, crop) x centring; keypoints matched by box IoU >= "
        f"{pairing_iou(any_class)}",
    }


@dataclass
class Detections:
    """Person detections of one crop from one model, in original pixels.

    ``boxes`` (N, 4) x1 y1 x2 y2, ``scores`` (N,); ``masks`` (N, h, w) probabilities for a
    segmenter, ``keypoints`` (N, 17, 3) with scores in [0, 1] for a pose model.
    """

    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray | None = None
    keypoints: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)


def is_person(labels, person_class: int, any_class: bool = False):
    """Which detections count as people (array or tensor of class ids -> booleans).

    ``any_class``: every detection, for random weights, whose class scores mean nothing; with
    a score floor of 0 and a pairing IoU of 0 (random boxes of two models rarely overlap) it
    makes a smoke test run the same mask and keypoint code as real weights.
    """
    return labels >= 0 if any_class else labels == person_class


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """(N, 4) and (M, 4) x1 y1 x2 y2 boxes -> (N, M) intersection over union (0 if no union)."""
    boxes1 = np.asarray(boxes1, np.float64).reshape(-1, 4)
    boxes2 = np.asarray(boxes2, np.float64).reshape(-1, 4)
    area1 = np.clip(boxes1[:, 2] - boxes1[:, 0], 0, None) * np.clip(
        boxes1[:, 3] - boxes1[:, 1], 0, None
    )
    area2 = np.clip(boxes2[:, 2] - boxes2[:, 0], 0, None) * np.clip(
        boxes2[:, 3] - boxes2[:, 1], 0, None
    )
    top_left = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    union = area1[:, None] + area2[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def target_scores(boxes: np.ndarray, scores: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(N,) how likely each detection is the crop's target person: score x fill x centring."""
    height, width = image_size
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    fill = box_iou(boxes, np.array([[0.0, 0.0, width, height]]))[:, 0]
    dx = ((boxes[:, 0] + boxes[:, 2]) / 2 - width / 2) / (width / 2)
    dy = ((boxes[:, 1] + boxes[:, 3]) / 2 - height / 2) / (height / 2)
    centring = np.clip(1 - np.sqrt((dx**2 + dy**2) / 2), 0, 1)
    return np.asarray(scores, np.float64) * fill * centring


def choose_target(
    boxes: np.ndarray, scores: np.ndarray, image_size: tuple[int, int], min_score: float = 0.0
) -> int | None:
    """Index of the target person among detections scoring at least ``min_score``; None if none."""
    scores = np.asarray(scores, np.float64)
    if scores.size == 0:
        return None
    target = np.where(scores >= min_score, target_scores(boxes, scores, image_size), -np.inf)
    best = int(np.argmax(target))
    return best if np.isfinite(target[best]) else None


def match_by_iou(box: np.ndarray, candidates: np.ndarray, min_iou: float = 0.3) -> int | None:
    """Index of the candidate box overlapping ``box`` most, if that IoU reaches ``min_iou``."""
    if len(candidates) == 0:
        return None
    iou = box_iou(box, candidates)[0]
    best = int(np.argmax(iou))
    return best if iou[best] >= min_iou else None


def select_person(
    segments: Detections,
    poses: Detections | None,
    image_size: tuple[int, int],
    min_score: float = 0.0,
    min_iou: float = MIN_IOU,
) -> LabelResult:
    """The target person's mask (from ``segments``) and keypoints (from the matching ``poses``).

    No segment scoring ``min_score`` -> status 1 (empty mask, NaN keypoints). A chosen person
    with no pose detection overlapping it by ``min_iou`` keeps its mask with NaN keypoints.
    """
    chosen = choose_target(segments.boxes, segments.scores, image_size, min_score)
    if chosen is None:
        return LabelResult.empty(*image_size, status=STATUS_NO_PERSON)
    box = np.asarray(segments.boxes[chosen], np.float32)
    keypoints = empty_keypoints()
    if poses is not None:
        matched = match_by_iou(box, poses.boxes, min_iou)
        if matched is not None:
            keypoints = np.asarray(poses.keypoints[matched], np.float32).copy()
    return LabelResult(
        mask=np.asarray(segments.masks[chosen], np.float32),
        keypoints=keypoints,
        box=box,
        score=float(segments.scores[chosen]),
    )
