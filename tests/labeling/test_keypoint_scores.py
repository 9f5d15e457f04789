"""One meaning of keypoint confidence: each backend's score transform, applied to known heatmaps,
passes a clean peak and fails a map without evidence at the threshold the backend records; and
``data.keypoint_score_threshold: auto`` resolves to it."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models.detection.roi_heads import heatmaps_to_keypoints

from daaf.data.annotations import AnnotationStore, keypoint_score_threshold
from daaf.data.annotations.reader import FALLBACK_KEYPOINT_SCORE_THRESHOLD
from daaf.errors import DaafError
from daaf.labeling import detectron2_backend, mmpose_backend, torchvision_backend

ROI = torch.tensor([[0.0, 0.0, 64.0, 128.0]])  # a 128x64 Market-1501 crop as the person box


def gaussian(height: int, width: int, amplitude: float, sigma: float, base: float = 0.0):
    """(H, W) float32: ``base`` plus a Gaussian peak of ``amplitude`` at (0.4 H, 0.6 W)."""
    ys, xs = np.mgrid[:height, :width].astype(np.float32)
    cy, cx = 0.4 * height, 0.6 * width
    return base + amplitude * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))


def noise(height: int, width: int, std: float, base: float = 0.0, seed: int = 0):
    return base + std * np.random.default_rng(seed).standard_normal((height, width))


def torchvision_scores(maps: list[np.ndarray]) -> np.ndarray:
    """The real path: torchvision's heatmaps_to_keypoints (score = logit at the argmax of the
    bicubically resized map), then daaf's transform to [0, 1]."""
    logits = torch.from_numpy(np.stack(maps)).float()[None]  # (1 roi, K, 56, 56)
    _, scores = heatmaps_to_keypoints(logits, ROI)
    return torchvision_backend.unit_keypoint_scores(scores[0]).numpy()


def detectron2_scores(maps: list[np.ndarray]) -> np.ndarray:
    """detectron2.structures.keypoints.heatmaps_to_keypoints, score column 3 (what
    keypoint_rcnn_inference stores in pred_keypoints[..., 2]): the map resized bicubically to
    the box, exp(map - max) normalised by the sum over the 56x56 pooled map, at the argmax;
    then clipped to [0, 1] as the detectron2 backend does."""
    logits = torch.from_numpy(np.stack(maps)).float()
    height, width = int(ROI[0, 3]), int(ROI[0, 2])
    roi_map = F.interpolate(logits[None], (height, width), mode="bicubic", align_corners=False)[0]
    top = roi_map.flatten(1).max(1).values[:, None, None]
    scores = (roi_map - top).exp() / (logits - top).exp().sum((1, 2), keepdim=True)
    return np.clip(scores.flatten(1).max(1).values.numpy(), 0, 1)


def mmpose_scores(maps: list[np.ndarray]) -> np.ndarray:
    """mmpose.codecs.utils.get_heatmap_maximum: the maximum of each (64, 48) heatmap (targets
    are MSRAHeatmap Gaussians of height 1, sigma 2); then clipped to [0, 1] as the mmpose
    backend does."""
    heatmaps = np.stack(maps)
    return np.clip(heatmaps.reshape(len(heatmaps), -1).max(axis=1), 0, 1)


# name: (score function, recorded threshold, maps that must pass, maps that must fail)
BACKENDS = {
    "torchvision": (
        torchvision_scores,
        torchvision_backend.KEYPOINT_SCORE_THRESHOLD,
        [gaussian(56, 56, 10, 1.5, base=-2), gaussian(56, 56, 6, 1.5, base=-2)],  # logit 8, 4
        # no evidence: logits 0 everywhere (sigmoid 0.5: passes the old 0.3), small noise
        [np.zeros((56, 56)), noise(56, 56, 0.25), noise(56, 56, 1.0, base=-3)],
    ),
    "detectron2": (
        detectron2_scores,
        detectron2_backend.KEYPOINT_SCORE_THRESHOLD,
        # softmax probabilities 0.45 and 0.08: the second fails the old threshold 0.3
        [gaussian(56, 56, 10, 1.5), gaussian(56, 56, 6, 1.5)],
        [np.zeros((56, 56)), noise(56, 56, 1.0), gaussian(56, 56, 3, 4.0)],  # flat, noise, blur
    ),
    "mmpose": (
        mmpose_scores,
        mmpose_backend.KEYPOINT_SCORE_THRESHOLD,
        [gaussian(64, 48, 0.9, 2.0), gaussian(64, 48, 0.5, 2.0, base=0.02)],
        [np.zeros((64, 48)), np.abs(noise(64, 48, 0.05)), gaussian(64, 48, 0.15, 6.0)],
    ),
}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_recorded_threshold_passes_clean_peaks_and_fails_maps_without_evidence(backend):
    scores, threshold, clean, empty = BACKENDS[backend]
    clean_scores, empty_scores = scores(clean), scores(empty)
    assert clean_scores.min() >= 0 and clean_scores.max() <= 1
    assert (clean_scores >= threshold).all(), (clean_scores, threshold)
    assert (empty_scores < threshold).all(), (empty_scores, threshold)


def test_one_threshold_for_all_backends_would_be_wrong():
    """Why one fixed threshold cannot serve: 0.3 passes torchvision's flat map (sigmoid 0.5)
    and fails detectron2's clean but modest peak (probability 0.08)."""
    assert torchvision_scores([np.zeros((56, 56))])[0] == pytest.approx(0.5)
    logit_2 = torchvision_backend.KEYPOINT_SCORE_THRESHOLD
    assert logit_2 == round(1 / (1 + np.exp(-2)), 3)  # Detectron's kp_thresh=2 on the logit
    assert 0.05 < detectron2_scores([gaussian(56, 56, 6, 1.5)])[0] < 0.3


def test_torchvision_labeler_records_its_threshold():
    labeler = torchvision_backend.build_torchvision_labeler(weights="random", min_size=64)
    assert labeler.describe()["keypoint_score_threshold"] == 0.881


class Store:
    def __init__(self, labeler):
        self.labeler = labeler


@pytest.mark.parametrize(
    "setting,store,expected",
    [
        ("auto", Store({"backend": "torchvision", "keypoint_score_threshold": 0.881}), 0.881),
        ("auto", Store({"backend": "detectron2", "keypoint_score_threshold": 0.05}), 0.05),
        ("auto", Store({"backend": "torchvision"}), FALLBACK_KEYPOINT_SCORE_THRESHOLD),  # older
        ("auto", None, FALLBACK_KEYPOINT_SCORE_THRESHOLD),
        (0.5, Store({"keypoint_score_threshold": 0.05}), 0.5),  # a number is itself
        ("0.2", None, 0.2),
    ],
)
def test_keypoint_score_threshold_resolves_auto_and_numbers(setting, store, expected):
    assert keypoint_score_threshold(setting, store) == expected
    assert FALLBACK_KEYPOINT_SCORE_THRESHOLD == 0.3


def test_keypoint_score_threshold_names_a_bad_setting():
    with pytest.raises(DaafError, match=r"data.keypoint_score_threshold: 'high' is neither"):
        keypoint_score_threshold("high", None)


def test_training_targets_use_the_store_recommendation_by_default(tiny_dataset, monkeypatch):
    """build_train_set resolves "auto" from the store (tiny store: no recommendation -> 0.3,
    scores 1), and the device-rendered heatmaps follow the resolved value."""
    from pathlib import Path

    from torch.utils.data import default_collate

    from daaf.config import load_config
    from daaf.data.datasets import build_dataset
    from daaf.data.device_batch import prepare_batch
    from daaf.training import trainer

    config = Path(__file__).parents[2] / "configs/demo.yaml"
    dataset = build_dataset("market1501", tiny_dataset)

    def heatmaps(setting: str, recommended: float | None) -> tuple[float, torch.Tensor]:
        cfg = load_config(
            config,
            [
                f"data.root={tiny_dataset}",
                f"data.annotations={tiny_dataset / 'annotations'}",
                "data.height=64",
                "data.width=32",
                "data.pad=0",
                "data.erasing_prob=0",
                "data.flip_prob=0",
                f"data.keypoint_score_threshold={setting}",
            ],
        )
        store = AnnotationStore(tiny_dataset / "annotations")
        if recommended is not None:
            store.labeler = store.labeler | {"keypoint_score_threshold": recommended}
        monkeypatch.setattr(trainer, "open_store_for", lambda *args: store)
        train_set = trainer.build_train_set(cfg, dataset)
        batch = prepare_batch(default_collate([train_set[0]]), cfg.data, torch.device("cpu"))
        return cfg.data.keypoint_score_threshold, batch["heatmaps"]

    threshold, maps = heatmaps("auto", None)
    assert threshold == FALLBACK_KEYPOINT_SCORE_THRESHOLD
    assert maps.amax(dim=(2, 3)).min() > 0.9  # fallback 0.3 < score 1
    threshold, maps = heatmaps("auto", 1.5)  # above every score
    assert threshold == 1.5 and maps.max() == 0
    threshold, maps = heatmaps("0.5", 1.5)  # a number wins over the recommendation
    assert threshold == 0.5 and maps.amax(dim=(2, 3)).min() > 0.9
