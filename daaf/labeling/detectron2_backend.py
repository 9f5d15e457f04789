"""Optional labeler: detectron2 model-zoo Mask R-CNN and Keypoint R-CNN (R50-FPN 3x, COCO).

detectron2 is not on PyPI and is imported only when this backend is built. ``weights_dir`` may
hold the model-zoo checkpoints under their own file names (``MODEL.WEIGHTS`` then is a local
path); otherwise detectron2 fetches them from its model zoo. detectron2's third keypoint column
is already a spatial-softmax probability (``structures.keypoints.heatmaps_to_keypoints``: the
softmax over the 56x56 heatmap, at its maximum), so it is only clipped to [0, 1]. It is small: a
map without evidence gives 1/3136, a confident peak a few tenths. The recommended threshold,
0.05, is detectron2's own (``utils.visualizer._KEYPOINT_THRESHOLD``). Its masks come
thresholded (binary), stored as probabilities 0 or 1.

``weights="random"`` keeps detections of any class at any score and pairs keypoints with the
chosen person at any box IoU (as the torchvision backend), so that a smoke test runs the mask
and keypoint paths of real weights. Its random keypoint head still rarely gives keypoints: its
person scores are mostly exactly 0 (detectron2 keeps ``score > threshold``), and where not, the
logits are so large that ``heatmaps_to_keypoints`` fails an assertion (the image gets status 3).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from daaf.errors import DaafError
from daaf.labeling.base import LabelResult, backend_imports, register_labeler
from daaf.labeling.selection import (
    Detections,
    is_person,
    pairing_iou,
    person_score_floor,
    select_person,
    selection_info,
)
from daaf.utils.safe_load import check_weights_file

MASK_CONFIG = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
KEYPOINT_CONFIG = "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml"
PERSON_CLASS = 0  # detectron2's contiguous COCO ids
KEYPOINT_SCORE_THRESHOLD = 0.05  # detectron2.utils.visualizer._KEYPOINT_THRESHOLD
BOX_SCORE_THRESHOLD = 0.05  # detectron2's ROI_HEADS.SCORE_THRESH_TEST


def _safe_checkpointer():
    """detectron2's checkpointer, whose every file (local, or downloaded from the model zoo)
    is checked to hold only arrays and tensors before detectron2 unpickles it."""
    from detectron2.checkpoint import DetectionCheckpointer

    class SafeCheckpointer(DetectionCheckpointer):
        def _load_file(self, filename: str):
            check_weights_file(Path(filename))
            return super()._load_file(filename)

    return SafeCheckpointer


def _build_model(
    config: str, weights: str, weights_dir: str | Path | None, min_size: int, box_score: float
):
    from detectron2 import model_zoo
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(config))
    cfg.MODEL.DEVICE = "cpu"
    cfg.INPUT.MIN_SIZE_TEST = min_size
    cfg.INPUT.MAX_SIZE_TEST = 4 * min_size
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 100
    cfg.TEST.DETECTIONS_PER_IMAGE = 10
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = box_score
    url = model_zoo.get_checkpoint_url(config)
    local = Path(weights_dir) / os.path.basename(urlparse(url).path) if weights_dir else None
    cfg.MODEL.WEIGHTS = str(local) if local is not None and local.is_file() else url
    model = build_model(cfg).eval()
    if weights == "pretrained":
        try:
            _safe_checkpointer()(model).load(cfg.MODEL.WEIGHTS)
        except DaafError:
            raise  # a weight file refused by check_weights_file: its own line
        except ImportError:
            raise  # a missing package: backend_imports names it
        except Exception as exc:  # noqa: BLE001 - offline or a bad file: say which file and where
            raise DaafError(
                f"detectron2 labeler: cannot load {cfg.MODEL.WEIGHTS} ({exc}); put "
                f"{os.path.basename(urlparse(url).path)} (from {url}) in --weights-dir"
            ) from exc
    return model, cfg


class Detectron2Labeler:
    name = "detectron2"

    def __init__(
        self,
        mask_model,
        keypoint_model,
        resize,
        info: dict[str, Any],
        min_score: float,
        any_class: bool = False,
    ):
        self.mask_model, self.keypoint_model = mask_model, keypoint_model
        self.resize = resize
        self.info = info
        self.min_score = min_score
        self.any_class = any_class
        self.min_iou = pairing_iou(any_class)

    def describe(self) -> dict[str, Any]:
        return dict(self.info)

    def to(self, device) -> Detectron2Labeler:
        self.mask_model.to(device)
        self.keypoint_model.to(device)
        return self

    def _run(self, model, images: list[np.ndarray]) -> list:
        import torch

        inputs = []
        for image in images:
            bgr = np.ascontiguousarray(image[:, :, ::-1])
            resized = self.resize.get_transform(bgr).apply_image(bgr)
            tensor = torch.as_tensor(resized.transpose(2, 0, 1).copy())
            inputs.append({"image": tensor, "height": image.shape[0], "width": image.shape[1]})
        with torch.inference_mode():
            return [out["instances"].to("cpu") for out in model(inputs)]

    def label(self, images: list[np.ndarray]) -> list[LabelResult]:
        results = []
        for image, seg, pose in zip(
            images,
            self._run(self.mask_model, images),
            self._run(self.keypoint_model, images),
            strict=True,
        ):
            seg = seg[is_person(seg.pred_classes, PERSON_CLASS, self.any_class)]
            pose = pose[is_person(pose.pred_classes, PERSON_CLASS, self.any_class)]
            keypoints = pose.pred_keypoints.numpy().astype(np.float32)
            keypoints[..., 2] = np.clip(keypoints[..., 2], 0, 1)
            segments = Detections(
                seg.pred_boxes.tensor.numpy(), seg.scores.numpy(), masks=seg.pred_masks.numpy()
            )
            poses = Detections(
                pose.pred_boxes.tensor.numpy(), pose.scores.numpy(), keypoints=keypoints
            )
            results.append(
                select_person(segments, poses, image.shape[:2], self.min_score, self.min_iou)
            )
        return results


@register_labeler("detectron2")
@backend_imports("detectron2")
def build_detectron2_labeler(
    weights: str = "pretrained",
    weights_dir: str | Path | None = None,
    min_size: int = 256,
    seed: int = 0,
    min_score: float | None = None,
) -> Detectron2Labeler:
    """Model-zoo Mask R-CNN + Keypoint R-CNN at working size ``min_size`` (as torchvision's).

    ``min_score`` (person score floor) defaults to 0.5, and to 0 with random weights.
    """
    import detectron2
    import torch
    from detectron2.data.transforms import ResizeShortestEdge

    random = weights == "random"
    box_score = 0.0 if random else BOX_SCORE_THRESHOLD
    min_score = person_score_floor(min_score, random)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mask_model, mask_cfg = _build_model(MASK_CONFIG, weights, weights_dir, min_size, box_score)
        keypoint_model, keypoint_cfg = _build_model(
            KEYPOINT_CONFIG, weights, weights_dir, min_size, box_score
        )
    info = {
        "backend": "detectron2",
        "models": [MASK_CONFIG, KEYPOINT_CONFIG],
        "weights": weights,
        "weight_files": [
            os.path.basename(urlparse(c.MODEL.WEIGHTS).path) for c in (mask_cfg, keypoint_cfg)
        ],
        "seed": seed,
        "min_size": min_size,
        "max_size": 4 * min_size,
        "box_score_threshold": box_score,
        **selection_info(random, PERSON_CLASS, min_score),
        "keypoint_score": "detectron2 spatial-softmax probability",
        "keypoint_score_threshold": KEYPOINT_SCORE_THRESHOLD,
        "detectron2": detectron2.__version__,
        "torch": torch.__version__,
    }
    resize = ResizeShortestEdge([min_size, min_size], 4 * min_size)
    return Detectron2Labeler(mask_model, keypoint_model, resize, info, min_score, any_class=random)
