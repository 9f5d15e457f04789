"""Branch outputs at inference (Fig. 7, 8) and labels moved to the network input frame."""

import numpy as np
import pytest
import torch

from daaf.data.annotations import empty_annotation
from daaf.evaluation.visualize import branch_outputs, labels_in_input_frame
from daaf.models import build_model
from daaf.models.maps import to_size

from .conftest import tiny_config


@pytest.mark.parametrize("stride", [1, 4])
def test_hab_probabilities_and_pab_heatmaps(daaf_model, images, stride):
    """At the input size; a stride-4 model's maps upsampled bilinearly, to be drawn."""
    if stride > 1:
        torch.manual_seed(0)
        daaf_model = build_model(tiny_config(hab=True, pab=True, decoder_stride=stride), 8)
    mask, heatmaps = branch_outputs(daaf_model, images)
    assert mask.shape == (2, 64, 32) and heatmaps.shape == (2, 17, 64, 32)
    with torch.no_grad():
        low, high = daaf_model.backbone(images)
        logits = daaf_model.hab(low, (64, 32))
        parts = daaf_model.pab(high, (64, 32))
    assert parts.shape[-2:] == logits.shape[-2:] == (64 // stride, 32 // stride)
    probabilities = to_size(torch.sigmoid(logits), (64, 32))
    np.testing.assert_allclose(mask, probabilities[:, 0].numpy(), atol=1e-6)
    np.testing.assert_allclose(heatmaps, to_size(parts, (64, 32)).numpy(), atol=1e-6)
    assert branch_outputs(daaf_model.base_network(), images) == (None, None)


def test_labels_follow_the_resize():
    record = empty_annotation("a.jpg", "query", 1, 0, (128, 64), 0, (8, 4))
    record.mask[:4] = 255  # top half of the person
    record.keypoints[0] = (32.0, 64.0, 0.9)  # the centre of the 128x64 original
    record.keypoints[1] = (0.0, 0.0, 0.8)  # the top-left corner
    record.keypoints[2] = (1.0, 3.0, 0.7)  # the centre of the original's 2x2 pixels at (0, 2)
    mask, kps = labels_in_input_frame(record, 64, 32)
    assert mask.shape == (64, 32) and mask[:28].min() == 1 and mask[36:].max() == 0
    np.testing.assert_allclose(kps[0], (16.0, 32.0, 0.9))
    np.testing.assert_allclose(kps[1], (0.0, 0.0, 0.8))
    np.testing.assert_allclose(kps[2], (0.5, 1.5, 0.7))  # input pixel (0, 1)'s centre
