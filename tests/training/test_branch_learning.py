"""The branches can learn: each fits the masks / keypoints of one fixed batch in a few steps.

Guards the decoder design: with BN + ReLU after every deconvolution the PAB collapsed to flat
maps (PCK at chance) where the default linear stack fits the batch.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import default_collate

from daaf.config import load_config
from daaf.data.datasets import build_dataset
from daaf.data.device_batch import prepare_batch
from daaf.evaluation.attention_metrics import mask_iou, pck
from daaf.models import build_model
from daaf.training.engine import train_step
from daaf.training.losses import build_criterion
from daaf.training.trainer import build_optimizers, build_train_set

REPO = Path(__file__).resolve().parents[2]


def fit_one_batch(root: Path, steps: int, *overrides: str):
    """``steps`` of ``train_step`` on one fixed batch, on the branch losses alone, with the
    optimisers ``daaf train`` builds (the decoders in their own group)."""
    cfg = load_config(
        REPO / "configs" / "demo.yaml",
        [
            f"data.root={root}",
            f"data.annotations={root / 'annotations'}",
            "data.height=64",
            "data.width=32",
            "data.pad=0",
            "data.flip_prob=0",
            "data.erasing_prob=0",
            "loss.id_weight=0",
            "loss.triplet_weight=0",
            "loss.center_weight=0",
            "loss.hab_weight=1",
            "loss.pab_weight=1",
            *overrides,
        ],
    )
    train_set = build_train_set(cfg, build_dataset("market1501", root))
    items = [train_set[i] for i in range(0, len(train_set), 6)]
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=8).train()
    criterion = build_criterion(cfg, 8, model.feat_dim)
    worker_batch = default_collate(items)
    optimizers = build_optimizers(cfg, model, criterion)
    for step in range(steps):
        train_step(model, worker_batch, optimizers, criterion, data=cfg.data, step=step)
    batch = prepare_batch(worker_batch, cfg.data, torch.device("cpu"), criterion.target_stride)
    model.eval()
    with torch.no_grad():
        masks, heatmaps = model.branch_outputs(batch["images"])
    return batch, masks, heatmaps, criterion


def test_default_decoders_fit_one_batch(tiny_dataset):
    batch, masks, heatmaps, _ = fit_one_batch(tiny_dataset, 30)
    ious = [
        mask_iou(m[0].numpy(), t[0].numpy()) for m, t in zip(masks, batch["masks"], strict=True)
    ]
    assert np.mean(ious) > 0.8
    correct = visible = 0
    for maps, targets in zip(heatmaps.numpy(), batch["heatmaps"].numpy(), strict=True):
        peaks = [np.unravel_index(t.argmax(), t.shape) for t in targets]
        keypoints = np.array([(x + 0.5, y + 0.5, 1.0) for y, x in peaks], np.float32)
        c, v = pck(maps, keypoints, tolerance=0.1 * maps.shape[1])
        correct, visible = correct + c, visible + v
    assert correct / visible > 0.8


@pytest.mark.slow
def test_stride_4_decoders_fit_one_batch(tiny_dataset):
    """Decoders at 1/4 of the input learn their coarse targets: the PAB ends well below the
    all-zero map's loss (0.49 of it after 30 steps; 0.71 at stride 1) and its argmaxes, mapped
    back to input pixels, find the keypoints. About 20 s of CPU."""
    batch, masks, heatmaps, criterion = fit_one_batch(tiny_dataset, 30, "model.decoder_stride=4")
    assert heatmaps.shape[-2:] == masks.shape[-2:] == batch["heatmaps"].shape[-2:] == (16, 8)
    loss = criterion.branch_loss("pab", heatmaps, batch)
    zero = criterion.branch_loss("pab", torch.zeros_like(heatmaps), batch)
    assert loss < 0.7 * zero
    correct = visible = 0
    for maps, targets in zip(heatmaps.numpy(), batch["heatmaps"].numpy(), strict=True):
        peaks = [np.unravel_index(t.argmax(), t.shape) for t in targets]
        keypoints = np.array([(4 * (x + 0.5), 4 * (y + 0.5), 1.0) for y, x in peaks], np.float32)
        c, v = pck(maps, keypoints, tolerance=0.1 * 64, stride=4)
        correct, visible = correct + c, visible + v
    assert correct / visible > 0.8
