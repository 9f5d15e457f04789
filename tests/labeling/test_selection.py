"""Target-person selection and mask/keypoint pairing, with a fake backend replaying people."""

import numpy as np
import pytest

from daaf.errors import DaafError
from daaf.labeling.backends import build_labeler
from daaf.labeling.base import LABELERS, LabelResult
from daaf.labeling.selection import (
    Detections,
    box_iou,
    choose_target,
    match_by_iou,
    select_person,
    target_scores,
)

H, W = 128, 64


def person(box, score, seed):
    """One synthetic person: its box, a mask filling the box, keypoints tagged by ``seed``."""
    mask = np.zeros((H, W), np.float32)
    x1, y1, x2, y2 = (int(v) for v in box)
    mask[y1:y2, x1:x2] = 0.9
    keypoints = np.full((17, 3), seed, np.float32)
    keypoints[:, 2] = 0.5
    return np.array(box, np.float32), score, mask, keypoints


TARGET = person((8, 6, 56, 124), 0.90, seed=1)
DISTRACTORS = [
    person((0, 0, 16, 48), 0.99, seed=2),  # confident, at the corner
    person((28, 56, 36, 72), 0.99, seed=3),  # confident, centred, tiny
    person((40, 20, 64, 128), 0.95, seed=4),  # cut by the right edge
]


class FakeBackend:
    """Replays ground truth: the segmenter and pose model see the same people in different orders
    (the pose model's boxes a little jittered), as two real detectors would."""

    def __init__(self, people):
        self.people = people

    def segments(self):
        boxes, scores, masks, _ = zip(*self.people, strict=True)
        return Detections(np.stack(boxes), np.array(scores), masks=np.stack(masks))

    def poses(self):
        reordered = self.people[::-1]
        boxes, scores, _, keypoints = zip(*reordered, strict=True)
        return Detections(np.stack(boxes) + 1.5, np.array(scores), keypoints=np.stack(keypoints))


def test_box_iou_hand_worked():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]])
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]])


def test_target_score_prefers_a_centred_filling_person_over_confident_distractors():
    fake = FakeBackend(DISTRACTORS[:1] + [TARGET] + DISTRACTORS[1:])
    segments = fake.segments()
    scores = target_scores(segments.boxes, segments.scores, (H, W))
    assert np.argmax(scores) == 1
    assert choose_target(segments.boxes, segments.scores, (H, W)) == 1


def test_centring_breaks_ties_between_equal_boxes():
    boxes = np.array([[0, 0, 32, 64], [16, 32, 48, 96]], np.float32)
    assert choose_target(boxes, np.array([0.9, 0.9]), (H, W)) == 1


def test_select_person_takes_mask_and_keypoints_from_the_same_person():
    fake = FakeBackend(DISTRACTORS + [TARGET])
    result = select_person(fake.segments(), fake.poses(), (H, W), min_score=0.5)
    assert result.status == 0
    np.testing.assert_array_equal(result.box, TARGET[0])
    assert result.score == pytest.approx(0.90)
    np.testing.assert_array_equal(result.mask, TARGET[2])
    assert np.all(result.keypoints[:, :2] == 1)  # the target's keypoints, not a distractor's
    assert match_by_iou(TARGET[0], fake.poses().boxes) == 0  # reversed order: target first


def test_no_pose_overlapping_the_chosen_person_leaves_nan_keypoints_but_keeps_the_mask():
    segments = FakeBackend([TARGET]).segments()
    poses = FakeBackend(DISTRACTORS[:1]).poses()
    result = select_person(segments, poses, (H, W))
    assert result.status == 0
    assert np.isnan(result.keypoints[:, :2]).all() and (result.keypoints[:, 2] == 0).all()


@pytest.mark.parametrize("scores", [[], [0.2, 0.3]])
def test_no_person_gives_status_1_empty_mask_and_nan_keypoints(scores):
    boxes = np.tile(np.array([[8, 6, 56, 124]], np.float32), (len(scores), 1))
    segments = Detections(boxes, np.array(scores), masks=np.ones((len(scores), H, W), np.float32))
    result = select_person(segments, None, (H, W), min_score=0.5)
    assert result.status == 1
    assert result.mask.shape == (H, W) and result.mask.max() == 0
    assert np.isnan(result.keypoints[:, :2]).all() and (result.keypoints[:, 2] == 0).all()
    assert np.isnan(result.box).all() and result.score == 0


def test_label_result_empty_shapes():
    result = LabelResult.empty(10, 5)
    assert result.mask.shape == (10, 5) and result.keypoints.shape == (17, 3)


def test_unknown_backend_lists_known_ones():
    with pytest.raises(DaafError, match="detectron2, mmpose, torchvision"):
        build_labeler("nope")
    assert {"torchvision", "detectron2", "mmpose"} <= set(LABELERS)


def test_backends_register_without_an_import_cycle():
    """base imports no backend; importing daaf.labeling.backends registers all three."""
    import subprocess
    import sys

    code = (
        "import sys, daaf.labeling.base as base\n"
        "assert not [m for m in sys.modules if m.endswith('_backend')], sys.modules\n"
        "assert base.LABELERS == {}\n"
        "import daaf.labeling.backends\n"
        "print(sorted(base.LABELERS))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['detectron2', 'mmpose', 'torchvision']"


def test_one_copy_of_the_status_codes():
    from daaf.data.annotations import schema
    from daaf.labeling import base, report

    assert (base.STATUS_OK, base.STATUS_NO_PERSON) == (schema.STATUS_OK, schema.STATUS_NO_PERSON)
    assert report.STATUS_NAMES == {0: "ok", 1: "no_person", 2: "unreadable", 3: "labeler_error"}
