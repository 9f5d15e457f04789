"""Loss terms against hand computations: PAB eq. 4, the official MSE variant, part images, ReID terms."""

import math

import numpy as np
import pytest
import torch

from daaf.config import Config
from daaf.data.device_batch import render_heatmap_batch
from daaf.data.keypoints import KEYPOINT_GROUPS
from daaf.models import DAAFOutput
from daaf.training.losses import build_criterion, part_image_targets


def config(**model) -> Config:
    cfg = Config()
    cfg.model.depth, cfg.model.pretrained = 18, "none"
    for key, value in model.items():
        setattr(cfg.model, key, value)
    cfg.loss.triplet_weight = cfg.loss.center_weight = cfg.loss.id_weight = 0
    return cfg


def batch(n: int = 2, size=(2, 2), valid=(True, False)) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        "images": torch.randn(n, 3, *size),
        "pids": torch.arange(n),
        "masks": torch.rand(n, 1, *size),
        "heatmaps": torch.rand(n, 17, *size),
        "valid": torch.tensor(valid),
    }


def test_pab_l2_is_equation_4_over_valid_samples():
    b = batch()
    parts = torch.rand(2, 17, 2, 2)
    loss = build_criterion(config(pab=True), 2, 4)(DAAFOutput(torch.zeros(2, 4), parts=parts), b)
    # sample 0 only: (1 / K) sum_k ||p_k - g_k||_2 with K = 17
    by_hand = (
        sum(
            math.sqrt(
                sum(
                    (parts[0, k].flatten()[i] - b["heatmaps"][0, k].flatten()[i]).item() ** 2
                    for i in range(4)
                )
            )
            for k in range(17)
        )
        / 17
    )
    assert loss["pab"].item() == pytest.approx(0.003 * by_hand, rel=1e-5)


def test_official_mse_weights_each_group_by_its_size():
    cfg = config(hab=True, pab=True)
    cfg.loss.branch_loss, cfg.loss.hab_weight, cfg.loss.pab_weight = "mse", 20.0, 65.0
    b = batch(valid=(True, True))
    out = DAAFOutput(torch.zeros(2, 4), mask=torch.zeros(2, 1, 2, 2), parts=torch.rand(2, 17, 2, 2))
    loss = build_criterion(cfg, 2, 4)(out, b)
    assert loss["hab"].item() == pytest.approx(
        20 * ((0.5 - b["masks"]) ** 2).mean().item(), rel=1e-5
    )
    groups = KEYPOINT_GROUPS["6"]
    by_hand = sum(
        len(g) / 17 * ((out.parts[:, g] - b["heatmaps"][:, g]) ** 2).mean().item() for g in groups
    )
    assert loss["pab"].item() == pytest.approx(65 * by_hand, rel=1e-5)


def test_part_image_targets_are_the_image_inside_each_stripe():
    images = torch.randn(2, 3, 12, 4)
    targets = part_image_targets(images, 6)
    assert targets.shape == (2, 18, 12, 4)
    stripes = targets.view(2, 6, 3, 12, 4)
    torch.testing.assert_close(stripes.sum(dim=1), images)
    assert torch.equal(stripes[:, 2, :, 4:6], images[:, :, 4:6])
    assert stripes[:, 2, :, :4].abs().sum() == 0 and stripes[:, 2, :, 6:].abs().sum() == 0


def test_part_image_loss_is_l2_per_stripe_averaged():
    b = batch(size=(6, 2))
    parts = torch.zeros(2, 18, 6, 2)
    loss = build_criterion(config(pab=True, pab_target="part_images"), 2, 4)(
        DAAFOutput(torch.zeros(2, 4), parts=parts), b
    )
    norms = [b["images"][n, :, i : i + 1].norm().item() for n in range(2) for i in range(6)]
    assert loss["pab"].item() == pytest.approx(0.003 * sum(norms) / 12, rel=1e-5)


def test_reid_terms_per_base():
    cfg = config()
    cfg.loss.id_weight, cfg.loss.center_weight = 1.0, 0.0005
    criterion = build_criterion(cfg, 5, 4)
    with torch.no_grad():
        criterion.center.centers.zero_()
    features = torch.tensor([[1.0, 0, 0, 0], [0, 2.0, 0, 0]])
    loss = criterion(DAAFOutput(features, logits=torch.zeros(2, 5)), batch())
    assert set(loss) == {"id", "center"}
    assert loss["id"].item() == pytest.approx(
        math.log(5)
    )  # uniform logits: smoothing changes nothing
    assert loss["center"].item() == pytest.approx(0.0005 * (1 + 4) / 2)
    assert len(criterion.center_parameters()) == 1

    trinet = config(base="trinet")
    trinet.loss.triplet_weight, trinet.loss.triplet_margin = 1.0, None
    criterion = build_criterion(trinet, 5, 4)
    assert set(criterion(DAAFOutput(features), batch())) == {"triplet"}
    assert criterion.center_parameters() == []


@pytest.mark.parametrize("branch_loss", ["l2", "mse"])
def test_a_missing_keypoint_pulls_its_channel_toward_zero(branch_loss):
    """A keypoint without a peak (not found, below the score threshold, outside the crop) has an
    all-zero target map: its channel still gets a gradient, and a descent step lowers it
    everywhere. Only a sample whose annotation is not valid gets no gradient at all."""
    keypoints = np.array([[8.5, 8.5, 1.0]] * 17, np.float32)  # pixel (8, 8)'s centre
    keypoints[3] = (np.nan, np.nan, 0.0)  # not found
    keypoints[4, 2] = 0.1  # below the threshold
    heatmaps = render_heatmap_batch(torch.from_numpy(keypoints)[None], (16, 16), 2.0, 0.3)[0]
    assert heatmaps[3].max() == heatmaps[4].max() == 0 and heatmaps[0].max() == 1
    cfg = config(pab=True)
    cfg.loss.branch_loss = branch_loss
    parts = torch.full((2, 17, 16, 16), 0.5, requires_grad=True)
    b = batch(size=(16, 16), valid=(True, False))
    b["heatmaps"] = heatmaps.expand(2, -1, -1, -1)
    build_criterion(cfg, 2, 4)(DAAFOutput(torch.zeros(2, 4), parts=parts), b)["pab"].backward()
    for k in (3, 4):
        assert (parts.grad[0, k] > 0).all()  # descent lowers the 0.5 prediction toward 0
    assert (parts.grad[1] == 0).all()  # the invalid sample is left out
