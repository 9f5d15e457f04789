"""Pixel-exact targets: a mask blob and a keypoint stored at the same place stay together.

The store's frame: pixel c covers [c, c + 1) (docs/annotations.md). A 2x2 blob on pixels 19-20
and 39-40 of a 128x64 image is centred at (20, 40), where its keypoint is stored. After the
training geometry (resize, pad + crop, mirror) and the device side (erasing, heatmaps), the
HAB's mask target, the image and the PAB's heatmap must still agree on that centre. Before the
fix the heatmap peak sat 1 px off at 256x128, to the other side when mirrored (issue 19).
With decoders at 1/4 of the input (``model.decoder_stride: 4``) the targets are rendered on the
coarse grid, whose pixel j is centred at (j + 0.5) x 4 input pixels: they agree there too.
"""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from daaf.data.annotations import (
    AnnotationStore,
    AnnotationWriter,
    ImageAnnotation,
    encode_mask,
)
from daaf.data.config import DataConfig
from daaf.data.datasets import Sample
from daaf.data.device_batch import prepare_batch
from daaf.data.train_set import TrainSet
from daaf.data.transforms import NO_ERASING, Augmentation

HEIGHT, WIDTH = 128, 64  # the stored image
CENTRE = (20.0, 40.0)  # x, y of the blob's centre and of the keypoint, in the store's frame
NOSE = 0  # the keypoint placed there (the nose stays the nose when mirrored)
# In pixels of the targets' grid (the input's at stride 1). At stride 4, 0.1 (0.4 input pixels)
# catches the slip of rendering at (x - 0.5) / 4, 0.125 grid pixels off, which 0.25 would not;
# area-averaging a 3-pixel-wide blob (at 192x96) moves its centroid by 0.07.
TOLERANCE = {1: 0.25, 4: 0.1}


def store_one_image(root: Path) -> tuple[list[Sample], AnnotationWriter]:
    """A grey 128x64 image with a white 2x2 blob at ``CENTRE``, its mask (the blob, stored at
    the store's 256x128) and its nose keypoint at ``CENTRE``."""
    image = np.full((HEIGHT, WIDTH, 3), 60, np.uint8)
    blob = np.zeros((HEIGHT, WIDTH), np.float32)
    x, y = int(CENTRE[0]), int(CENTRE[1])
    blob[y - 1 : y + 1, x - 1 : x + 1] = 1
    image[blob > 0] = 255
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "a.png"), image)
    keypoints = np.full((17, 3), np.nan, np.float32)
    keypoints[:, 2] = 0
    keypoints[NOSE] = (*CENTRE, 1.0)
    record = ImageAnnotation(
        image_path="a.png",
        split="train",
        pid=1,
        camid=0,
        image_size=(HEIGHT, WIDTH),
        mask=encode_mask(blob),
        keypoints=keypoints,
        person_box=np.array([0, 0, WIDTH, HEIGHT], np.float32),
        person_score=1.0,
        status=0,
    )
    writer = AnnotationWriter(root / "annotations", "market1501", {"backend": "test"})
    writer.write_shard("train", 0, [record])
    writer.write_manifest()
    return [Sample("a.png", 1, 0)], writer


def centroid(weights: np.ndarray) -> np.ndarray:
    """x, y of the weighted centroid of (H, W) ``weights``, pixel c standing for c + 0.5."""
    ys, xs = np.mgrid[: weights.shape[0], : weights.shape[1]] + 0.5
    return np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()


AUGMENTATIONS = [
    Augmentation(False, 0, 0, NO_ERASING),
    Augmentation(True, 0, 0, NO_ERASING),
    Augmentation(False, -7, 5, (150, 60, 40, 30)),  # erasing away from the blob
    Augmentation(True, 9, -10, (150, 60, 40, 30)),
    Augmentation(True, -3, 4, (55, 60, 35, 40)),  # erasing over the blob: targets stay
]


def covers(rectangle: tuple[int, int, int, int], point: np.ndarray) -> bool:
    top, left, height, width = rectangle
    return left <= point[0] < left + width and top <= point[1] < top + height


@pytest.mark.parametrize(
    ("size", "stride"), [((256, 128), 1), ((192, 96), 1), ((256, 128), 4), ((192, 96), 4)]
)
def test_the_heatmap_peak_stays_on_the_mask_blob(tmp_path, size, stride):
    samples, writer = store_one_image(tmp_path)
    cfg = DataConfig(height=size[0], width=size[1], pad=10, keypoint_score_threshold=0.3)
    store = AnnotationStore(writer.store_dir)
    train_set = TrainSet(samples, tmp_path / "images", cfg, store, masks=True, keypoints=True)
    scale, erased = np.array([size[1] / WIDTH, size[0] / HEIGHT]), 0
    for augmentation in AUGMENTATIONS:
        worker_batch = default_collate([train_set.item(0, augmentation)])
        batch = prepare_batch(worker_batch, cfg, torch.device("cpu"), stride)
        mask, heatmap = batch["masks"][0, 0].numpy(), batch["heatmaps"][0, NOSE].numpy()
        assert mask.shape == heatmap.shape == (size[0] // stride, size[1] // stride)
        blob, peak = centroid(mask), centroid(heatmap)  # in grid pixels
        tolerance = TOLERANCE[stride]
        np.testing.assert_allclose(peak, blob, rtol=0, atol=tolerance, err_msg=str(augmentation))
        # ... and both where the geometry puts the stored centre, in input pixels
        expected = np.array(CENTRE) * scale - (augmentation.left, augmentation.top)
        if augmentation.flip:
            expected[0] = size[1] - expected[0]
        np.testing.assert_allclose(blob * stride, expected, rtol=0, atol=tolerance * stride)
        image = batch["images"][0, 0].numpy()  # the blob is the image's only bright spot
        if covers(augmentation.erasing, expected):
            erased += 1
            assert image.max() < 0.5
        else:
            image_blob = centroid(image > 1.5)
            np.testing.assert_allclose(image_blob, blob * stride, rtol=0, atol=tolerance * stride)
        if stride > 1:  # the full-size mask, area-averaged: soft, and the same mass per pixel
            full = prepare_batch(worker_batch, cfg, torch.device("cpu"))["masks"][0, 0].numpy()
            assert 0 < mask.max() <= 1 and mask.min() >= 0
            assert mask.sum() * stride**2 == pytest.approx(full.sum(), rel=1e-6)
    assert erased == 1
