"""Default labeler: torchvision's COCO Mask R-CNN v2 (masks) and Keypoint R-CNN (17 keypoints).

Working size. torchvision detectors resize every image so that its short side is ``min_size``
(800 by default): a 128x64 Market-1501 crop becomes about 1333x666. The default here is
``min_size=256`` with the long side allowed up to ``4 x min_size``: a 128x64 crop becomes
512x256, so the person is about 500 px tall, larger than most COCO training people, and the
ROI heads see it at their fixed 14x14 / 28x28 (mask) and 56x56 (keypoint heatmap) resolution
either way, so a larger working size adds cost, not detail (``benchmarks/label_speed.py
--min-size`` measures the cost per image). Crops rarely hold more than a few people, so 100
region proposals (instead of 1000) are plenty.

Keypoint scores. torchvision's ``keypoints_scores`` are the raw logits of the keypoint heatmap
at its maximum (``roi_heads.heatmaps_to_keypoints``; trained with a spatial softmax), and the
third keypoint column is always 1. The store wants [0, 1], so the score is ``sigmoid(logit)``:
monotone, 0.5 at logit 0 (a map without evidence). The recommended threshold is sigmoid(2) =
0.881: logit 2 is the visibility threshold of Detectron's keypoint visualiser
(``vis_keypoints(kp_thresh=2)``), for which this Keypoint R-CNN head was designed.

Weights come from the torchvision weight enums: a file in ``weights_dir`` or in the torch cache
(``$TORCH_HOME/hub/checkpoints``) is loaded as is; otherwise it is downloaded into the cache as
torchvision does, and if that fails the labeler stops before any work, naming each file.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from daaf.errors import DaafError
from daaf.labeling.base import LabelResult, register_labeler
from daaf.labeling.selection import (
    Detections,
    is_person,
    pairing_iou,
    person_score_floor,
    select_person,
    selection_info,
)
from daaf.utils.safe_load import load_weights_only

PERSON_LABEL = 1  # COCO category "person" in both torchvision label maps
DEFAULT_MIN_SIZE = 256
DEFAULT_RPN_POST_NMS_TOP_N = 100
DEFAULT_DETECTIONS_PER_IMAGE = 10
KEYPOINT_SCORE_THRESHOLD = round(1 / (1 + math.exp(-2.0)), 3)  # sigmoid(logit 2) = 0.881


def weight_file_name(weights) -> str:
    """File name of a torchvision weight enum's checkpoint (``...-fc266e95.pth``)."""
    return os.path.basename(urlparse(weights.url).path)


def torch_cache_dir() -> Path:
    """Where torchvision caches downloaded weights: ``$TORCH_HOME/hub/checkpoints``."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def resolve_weight_files(
    weights: list, weights_dir: str | Path | None = None, labeler: str = "torchvision"
) -> list[Path]:
    """Local paths of the checkpoints of ``weights`` (torchvision enums, or anything with a
    ``url``), downloading missing ones.

    Looks in ``weights_dir`` then in the torch cache; a file in neither is downloaded into the
    cache. Raises DaafError naming every file that could not be found or fetched, before any
    model is built.
    """
    import torch

    cache = torch_cache_dir()
    paths, missing = [], []
    for entry in weights:
        name = weight_file_name(entry)
        candidates = ([Path(weights_dir) / name] if weights_dir else []) + [cache / name]
        found = next((path for path in candidates if path.is_file()), None)
        if found is None:
            try:
                cache.mkdir(parents=True, exist_ok=True)
                torch.hub.download_url_to_file(entry.url, str(cache / name), progress=True)
                found = cache / name
            except Exception as exc:  # noqa: BLE001 - any failure means "not available offline"
                missing.append((name, entry.url, exc))
                continue
        paths.append(found)
    if missing:
        places = (
            f"--weights-dir {weights_dir} or " if weights_dir else "--weights-dir DIR or "
        ) + str(cache)
        files = "; ".join(f"{name} (from {url})" for name, url, _ in missing)
        raise DaafError(
            f"{labeler} labeler: weight files not found and not downloadable "
            f"({type(missing[0][2]).__name__}: {missing[0][2]}). "
            f"Put these files in {places}: {files}; "
            f"or use --weights random for a smoke test"
        )
    return paths


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_checkpoint(model, path: Path) -> None:
    """Load a torchvision detection checkpoint (tensors only, :func:`load_weights_only`); only
    BatchNorm counters may be absent."""
    state = load_weights_only(path)
    if not isinstance(state, dict):
        raise DaafError(f"{path}: not a state_dict (holds a {type(state).__name__})")
    missing, unexpected = model.load_state_dict(state, strict=False)
    wrong = [k for k in missing if not k.endswith("num_batches_tracked")] + list(unexpected)
    if wrong:
        raise DaafError(
            f"{path}: does not match {type(model).__name__}; mismatched keys such as {wrong[:3]}"
        )


def unit_keypoint_scores(logits):
    """torchvision's keypoint logits (tensor) -> the stored score in [0, 1]: ``sigmoid``."""
    import torch

    return torch.sigmoid(logits)


class TorchvisionLabeler:
    """Mask R-CNN v2 chooses the target person and gives its mask; Keypoint R-CNN its keypoints.

    ``any_class`` counts every detection as a person (random weights, whose class scores are
    meaningless, so that the whole pipeline still runs). ``keypoint_model=None`` makes a
    segmenter only (NaN keypoints), which the mmpose backend pairs with its own pose model.
    """

    name = "torchvision"

    def __init__(
        self,
        mask_model,
        keypoint_model,
        info: dict[str, Any],
        min_score: float,
        any_class: bool = False,
    ):
        self.any_class = any_class
        self.mask_model = mask_model.eval()
        self.keypoint_model = keypoint_model.eval() if keypoint_model is not None else None
        self.info = info
        self.min_score = min_score
        self.min_iou = pairing_iou(any_class)
        self.device = "cpu"

    def describe(self) -> dict[str, Any]:
        return dict(self.info)

    def to(self, device) -> TorchvisionLabeler:
        self.device = device
        self.mask_model.to(device)
        if self.keypoint_model is not None:
            self.keypoint_model.to(device)
        return self

    def _tensors(self, images: list[np.ndarray]) -> list:
        import torch

        return [
            torch.from_numpy(np.ascontiguousarray(image))
            .to(self.device)
            .permute(2, 0, 1)
            .float()
            .div_(255)
            for image in images
        ]

    def _persons(self, labels):
        return is_person(labels, PERSON_LABEL, self.any_class)

    def segment(self, images: list[np.ndarray]) -> list[Detections]:
        """Person detections with mask probabilities at each image's original size."""
        import torch

        with torch.inference_mode():
            outputs = self.mask_model(self._tensors(images))
        detections = []
        for out in outputs:
            keep = self._persons(out["labels"])
            detections.append(
                Detections(
                    boxes=out["boxes"][keep].cpu().numpy(),
                    scores=out["scores"][keep].cpu().numpy(),
                    masks=out["masks"][keep][:, 0].float().cpu().numpy(),
                )
            )
        return detections

    def pose(self, images: list[np.ndarray]) -> list[Detections]:
        """Person detections with (17, 3) keypoints, scores mapped to [0, 1] by a sigmoid."""
        import torch

        with torch.inference_mode():
            outputs = self.keypoint_model(self._tensors(images))
        detections = []
        for out in outputs:
            keep = self._persons(out["labels"])
            keypoints = out["keypoints"][keep].clone()
            keypoints[..., 2] = unit_keypoint_scores(out["keypoints_scores"][keep])
            detections.append(
                Detections(
                    boxes=out["boxes"][keep].cpu().numpy(),
                    scores=out["scores"][keep].cpu().numpy(),
                    keypoints=keypoints.float().cpu().numpy(),
                )
            )
        return detections

    def label(self, images: list[np.ndarray]) -> list[LabelResult]:
        if not images:
            return []
        segments = self.segment(images)
        poses = self.pose(images) if self.keypoint_model is not None else [None] * len(images)
        return [
            select_person(seg, pose, image.shape[:2], self.min_score, self.min_iou)
            for image, seg, pose in zip(images, segments, poses, strict=True)
        ]


@register_labeler("torchvision")
def build_torchvision_labeler(
    weights: str = "pretrained",
    weights_dir: str | Path | None = None,
    min_size: int = DEFAULT_MIN_SIZE,
    rpn_post_nms_top_n_test: int = DEFAULT_RPN_POST_NMS_TOP_N,
    detections_per_image: int = DEFAULT_DETECTIONS_PER_IMAGE,
    min_score: float | None = None,
    seed: int = 0,
    with_keypoints: bool = True,
) -> TorchvisionLabeler:
    """Build the two COCO models at working size ``min_size`` (short side; long side <= 4x).

    ``weights="random"`` builds the same architectures with weights drawn from ``seed`` (the same
    in every process), keeps every detection of any class (score threshold 0) and pairs
    keypoints with the chosen person at any box IoU, so that the whole pipeline runs;
    ``"pretrained"`` loads the COCO checkpoints (see :func:`resolve_weight_files`).
    """
    from torchvision.models.detection import (
        KeypointRCNN_ResNet50_FPN_Weights,
        MaskRCNN_ResNet50_FPN_V2_Weights,
    )

    if weights not in ("pretrained", "random"):
        raise DaafError(f"--weights {weights!r}: expected 'pretrained' or 'random'")
    if min_size < 32:
        raise DaafError(f"--min-size {min_size}: expected at least 32 pixels")
    random = weights == "random"
    enums = [MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1]
    if with_keypoints:
        enums.append(KeypointRCNN_ResNet50_FPN_Weights.COCO_V1)
    paths = [] if random else resolve_weight_files(enums, weights_dir)
    min_score = person_score_floor(min_score, random)
    options = dict(
        weights=None,
        weights_backbone=None,
        min_size=min_size,
        max_size=4 * min_size,
        rpn_post_nms_top_n_test=rpn_post_nms_top_n_test,
        box_detections_per_img=detections_per_image,
        box_score_thresh=0.0 if random else 0.05,
    )
    mask_model, keypoint_model = _build_models(options, seed, with_keypoints)
    if not random:
        models = [m for m in (mask_model, keypoint_model) if m is not None]
        for model, path in zip(models, paths, strict=True):
            _load_checkpoint(model, path)
    info = _labeler_info(
        options,
        enums,
        paths,
        random=random,
        seed=seed,
        min_score=min_score,
        keypoints=with_keypoints,
    )
    return TorchvisionLabeler(mask_model, keypoint_model, info, min_score, any_class=random)


def _build_models(options: dict[str, Any], seed: int, with_keypoints: bool) -> tuple[Any, Any]:
    """Mask R-CNN v2 and Keypoint R-CNN (None without keypoints) with ``options``, their initial
    weights drawn from ``seed`` without touching the global random state."""
    import torch
    from torchvision.models.detection import keypointrcnn_resnet50_fpn, maskrcnn_resnet50_fpn_v2

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mask_model = maskrcnn_resnet50_fpn_v2(num_classes=91, **options)
        keypoint_model = (
            keypointrcnn_resnet50_fpn(num_classes=2, num_keypoints=17, **options)
            if with_keypoints
            else None
        )
    return mask_model, keypoint_model


def _labeler_info(
    options: dict[str, Any],
    enums: list,
    paths: list[Path],
    *,
    random: bool,
    seed: int,
    min_score: float,
    keypoints: bool,
) -> dict[str, Any]:
    """What the labeler is made of, as recorded in the store: models, weight files (or the seed
    of random weights), detector ``options`` and person selection."""
    import torch
    import torchvision

    return {
        "backend": "torchvision",
        "models": ["maskrcnn_resnet50_fpn_v2"]
        + (["keypointrcnn_resnet50_fpn"] if keypoints else []),
        "weights": "random" if random else "pretrained",
        "weight_files": (
            [{"name": weight_file_name(e), "seed": seed} for e in enums]
            if random
            else [{"name": p.name, "sha256": sha256_file(p)} for p in paths]
        ),
        "min_size": options["min_size"],
        "max_size": options["max_size"],
        "rpn_post_nms_top_n_test": options["rpn_post_nms_top_n_test"],
        "detections_per_image": options["box_detections_per_img"],
        "box_score_threshold": options["box_score_thresh"],
        **selection_info(random, PERSON_LABEL, min_score),
        "keypoint_score": "sigmoid(heatmap logit)",
        "keypoint_score_threshold": KEYPOINT_SCORE_THRESHOLD,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }
