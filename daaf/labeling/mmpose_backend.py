"""Optional labeler: an mmpose COCO top-down pose model (HRNet-W32 256x192) on the whole crop.

A ReID crop is already a person box, so the pose model runs with the whole crop as its box
(``inference_topdown(model, image, bboxes=None)``), one crop at a time. Masks and the person
box come from the torchvision Mask R-CNN segmenter. mmpose is imported only when this backend
is built; its heatmap maxima (``codecs.utils.get_heatmap_maximum``; training targets are
Gaussians of height 1) are clipped to [0, 1] as keypoint scores. The recommended threshold,
0.3, is mmpose's own default (``PoseLocalVisualizer(kpt_thr=0.3)``, ``MMPoseInferencer``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from daaf.data.annotations.schema import STATUS_OK
from daaf.errors import DaafError
from daaf.labeling.base import LabelResult, backend_imports, register_labeler
from daaf.utils.safe_load import check_weights_file

KEYPOINT_SCORE_THRESHOLD = 0.3  # mmpose's default kpt_thr
CONFIG = "body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py"
CHECKPOINT_URL = (
    "https://download.openmmlab.com/mmpose/v1/body_2d_keypoint/topdown_heatmap/coco/"
    "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth"
)
HRNET = SimpleNamespace(url=CHECKPOINT_URL)  # a weight file, as resolve_weight_files takes one


class MMPoseLabeler:
    name = "mmpose"

    def __init__(self, segmenter, pose_model, info: dict[str, Any]):
        self.segmenter = segmenter
        self.pose_model = pose_model
        self.info = info

    def describe(self) -> dict[str, Any]:
        return dict(self.info)

    def to(self, device) -> MMPoseLabeler:
        self.segmenter.to(device)
        self.pose_model.to(device)
        return self

    def label(self, images: list[np.ndarray]) -> list[LabelResult]:
        from mmpose.apis import inference_topdown

        results = self.segmenter.label(images)
        for image, result in zip(images, results, strict=True):
            if result.status != STATUS_OK:
                continue
            pose = inference_topdown(
                self.pose_model, np.ascontiguousarray(image[:, :, ::-1]), bboxes=None
            )[0]
            keypoints = np.zeros((17, 3), np.float32)
            keypoints[:, :2] = pose.pred_instances.keypoints[0]
            keypoints[:, 2] = np.clip(pose.pred_instances.keypoint_scores[0], 0, 1)
            result.keypoints = keypoints
        return results


@register_labeler("mmpose")
@backend_imports("mmpose")
def build_mmpose_labeler(
    weights: str = "pretrained",
    weights_dir: str | Path | None = None,
    min_size: int = 256,
    seed: int = 0,
) -> MMPoseLabeler:
    """HRNet-W32 COCO top-down pose on the whole crop, masks from the torchvision segmenter."""
    import mmcv._ext  # noqa: F401 - top-down models need the compiled ops, not mmcv-lite
    import mmpose
    import torch
    from mmpose.apis import init_model
    from torchvision.models.detection import MaskRCNN_ResNet50_FPN_V2_Weights

    from daaf.labeling.torchvision_backend import (
        build_torchvision_labeler,
        resolve_weight_files,
        sha256_file,
        weight_file_name,
    )

    checkpoint = None
    if weights != "random":  # every missing file named at once, before any model is built
        segmenter_weights = MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1
        checkpoint = str(resolve_weight_files([segmenter_weights, HRNET], weights_dir, "mmpose")[1])
        check_weights_file(Path(checkpoint))  # before mmengine unpickles it
    segmenter = build_torchvision_labeler(
        weights=weights, weights_dir=weights_dir, min_size=min_size, seed=seed, with_keypoints=False
    )
    config = Path(mmpose.__file__).parent / ".mim" / "configs" / CONFIG
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            pose_model = init_model(str(config), checkpoint, device="cpu")
    except ImportError:
        raise  # a missing package: backend_imports names it
    except Exception as exc:  # noqa: BLE001 - offline or a bad file: say which file and where
        raise DaafError(
            f"mmpose labeler: cannot load {checkpoint} ({exc}); "
            f"put {weight_file_name(HRNET)} (from {CHECKPOINT_URL}) in --weights-dir"
        ) from exc
    pose_file = {"name": weight_file_name(HRNET)}  # recorded as the segmenter records its files
    pose_file |= {"seed": seed} if checkpoint is None else {"sha256": sha256_file(Path(checkpoint))}
    segmenter_info = segmenter.describe()
    info = segmenter_info | {
        "backend": "mmpose",
        "models": segmenter_info["models"] + [Path(CONFIG).stem],
        "weight_files": segmenter_info["weight_files"] + [pose_file],
        "keypoint_score": "mmpose heatmap maximum, clipped to [0, 1]",
        "keypoint_score_threshold": KEYPOINT_SCORE_THRESHOLD,
        "mmpose": mmpose.__version__,
    }
    return MMPoseLabeler(segmenter, pose_model, info)
