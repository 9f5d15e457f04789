"""Branch-health signals: each branch's loss beside the all-zero map's, the gradient it sends
into the shared backbone beside the ReID loss's, and one warning for a branch that learns
nothing (issue 19)."""

import json
import logging
from pathlib import Path

import pytest
import torch
from torch.utils.data import default_collate

from daaf.config import load_config
from daaf.data.datasets import build_dataset
from daaf.data.device_batch import prepare_batch
from daaf.models import DAAFOutput, build_model
from daaf.training.branch_health import BranchHealth
from daaf.training.engine import Optimizers, train_step
from daaf.training.losses import build_criterion
from daaf.training.schedule import build_optimizer
from daaf.training.trainer import train

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "data.height=32",
    "data.width=16",
    "data.pad=1",
    "data.num_identities=4",
    "data.num_instances=2",
    "data.workers=0",
    "model.depth=18",
    "model.pretrained=none",
    "model.decoder_channels=8",
    "data.heatmap_sigma=1.0",
]
DOCS = "docs/training.md, section 'A branch that does not learn'"
HEALTH_LOGGER = "daaf.training.branch_health"


def tiny(root: Path, *extra: str):
    overrides = [f"data.root={root}", f"data.annotations={root / 'annotations'}", *TINY, *extra]
    # the paper's branch objective (L2 norms, fixed lambdas), which these tests compute by hand
    return load_config(REPO / "configs" / "paper" / "paper_daaf_bot.yaml", overrides)


def first_batch(cfg, root: Path) -> dict[str, torch.Tensor]:
    from daaf.training.trainer import build_train_set

    train_set = build_train_set(cfg, build_dataset("market1501", root))
    return default_collate([train_set[i] for i in range(8)])


@pytest.mark.parametrize("stride", [1, 4])
def test_each_branch_is_measured_against_its_own_gradient(tiny_dataset, stride):
    """The hooks' norms equal autograd's gradients of each term at layer4's and layer1's
    outputs, and the logged losses the criterion's unweighted terms; also for decoders at 1/4
    of the input, whose trivial maps are at that size."""
    cfg = tiny(
        tiny_dataset, "loss.hab_weight=0.5", "loss.pab_weight=2.0", f"model.decoder_stride={stride}"
    )
    worker_batch = first_batch(cfg, tiny_dataset)
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=8).train()
    criterion = build_criterion(cfg, 8, model.feat_dim)
    health = BranchHealth(model, criterion, period=3, warmup=0)

    batch = prepare_batch(worker_batch, cfg.data, torch.device("cpu"), stride)
    low, high = model.backbone(batch["images"])
    features, logits = model.head(high)
    output = DAAFOutput(features, logits, model.hab(low, (32, 16)), model.pab(high, (32, 16)))
    assert output.parts.shape[-2:] == batch["heatmaps"].shape[-2:] == (32 // stride, 16 // stride)
    terms = criterion(output, batch)
    reid = terms["id"] + terms["triplet"] + terms["center"]

    def norm(loss, at):
        return torch.autograd.grad(loss, at, retain_graph=True)[0].norm().item()

    expected = {
        "health/pab/reid_grad_layer4": norm(reid, high),
        "health/pab/pab_grad_layer4": norm(terms["pab"], high),
        "health/hab/hab_grad_layer1": norm(terms["hab"], low),
        "health/hab/reid_grad_layer1": norm(reid + terms["pab"], low),  # through layer2-4
        "health/hab/loss": terms["hab"].item() / 0.5,
        "health/pab/loss": terms["pab"].item() / 2.0,
        "health/pab/zero_map_loss": criterion.branch_loss(
            "pab", torch.zeros_like(output.parts), batch
        ).item(),
        "health/hab/zero_map_loss": criterion.branch_loss(
            "hab", torch.zeros_like(output.mask), batch
        ).item(),
    }
    optimizers = Optimizers(build_optimizer(model.parameters(), cfg.optim))
    assert not health.arm(2) and health.arm(3)
    train_step(model, worker_batch, optimizers, criterion, data=cfg.data, health=health)
    values = health.finish(3)
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, rel=1e-4), key
    ratio = expected["health/pab/pab_grad_layer4"] / expected["health/pab/reid_grad_layer4"]
    assert values["health/pab/grad_ratio"] == pytest.approx(ratio, rel=1e-4)
    assert "health/pab/mean_map_loss" not in values  # no earlier batch yet
    assert not health.armed and health.finish(4) == {}  # disarmed: nothing recorded


def feed(health, criterion, batch, steps, pab, hab):
    """``steps`` measurements of outputs made by ``pab`` and ``hab`` from the targets."""
    for step in steps:
        assert health.arm(step)
        heatmaps, masks = batch["heatmaps"], batch["masks"]
        health.observe(DAAFOutput(None, None, hab(masks), pab(heatmaps)), batch)
        health.finish(step)


@pytest.mark.parametrize("learned", [False, True])
def test_one_warning_for_a_branch_at_the_all_zero_map(tiny_dataset, caplog, learned):
    """A PAB outputting zeros (what the starved PAB of the study converged to) gets one warning
    after the warm-up, naming it, its numbers and the docs; one fitting its targets, and a
    learned HAB, get none."""
    cfg = tiny(tiny_dataset)
    batch = prepare_batch(first_batch(cfg, tiny_dataset), cfg.data, torch.device("cpu"))
    model = build_model(cfg, num_classes=8)
    criterion = build_criterion(cfg, 8, model.feat_dim)
    health = BranchHealth(model, criterion, period=1, warmup=3)

    def pab(heatmaps):
        return 0.9 * heatmaps if learned else 0.01 * torch.randn_like(heatmaps)

    def hab(masks):
        return 20 * (masks - 0.5)  # logits of the true mask

    with caplog.at_level(logging.WARNING, logger=HEALTH_LOGGER):
        feed(health, criterion, batch, range(1, 5), pab, hab)  # warm-up, then 2 measurements
        assert not [r for r in caplog.records if r.name == HEALTH_LOGGER]
        feed(health, criterion, batch, range(5, 10), pab, hab)
    health.arm(10)  # from the second measurement on: the mean target of the batches before
    health.observe(DAAFOutput(None, None, hab(batch["masks"]), pab(batch["heatmaps"])), batch)
    valid = batch["valid"].bool()
    mean = batch["heatmaps"][valid].mean(0, keepdim=True).expand(8, -1, -1, -1).contiguous()
    assert health.finish(10)["health/pab/mean_map_loss"] == pytest.approx(
        criterion.branch_loss("pab", mean, batch).item(), rel=1e-5
    )
    warnings = [r.getMessage() for r in caplog.records if r.name == HEALTH_LOGGER]
    assert health.warned == ([] if learned else ["pab"])
    if not learned:
        assert len(warnings) == 1
        assert warnings[0].startswith(
            "WARNING: the PAB (keypoint branch) is not learning: at step 5"
        )
        assert "its PCK on the batch is 0." in warnings[0] and DOCS in warnings[0]
        assert "not 0.05 above a constant map's" in warnings[0]
        assert "(docs" not in (REPO / "docs" / "training.md").read_text()
        assert "## A branch that does not learn" in (REPO / "docs" / "training.md").read_text()


@pytest.mark.slow
def test_a_starved_branch_warns_in_training_and_a_learning_one_does_not(
    tiny_dataset, tmp_path, caplog
):
    """A DAAF-BoT run with lambda_p = 1e-12 (the PAB starved: its gradients fall below Adam's
    epsilon) and lambda_h = 1 (the HAB learns): ``daaf train`` warns about the PAB once and not
    about the HAB; metrics.jsonl has both branches' signals every ``train.health_period``
    iterations. The crops shift by up to 10 pixels (``data.pad``): on the tiny dataset's
    rigid blocks a constant mask otherwise scores the HAB's IoU, and the HAB would be judged
    not learning."""
    cfg = tiny(
        tiny_dataset,
        "data.pad=10",
        "loss.pab_weight=1e-12",
        "loss.hab_weight=1",
        "train.epochs=2",
        "train.iters_per_epoch=8",
        "optim.warmup_epochs=1",
        "optim.warmup_factor=1.0",
        "optim.lr=1e-2",
        "train.health_period=2",
    )
    with caplog.at_level(logging.WARNING, logger=HEALTH_LOGGER):
        train(cfg, tmp_path / "run")
    warnings = [r.getMessage() for r in caplog.records if r.name == HEALTH_LOGGER]
    assert len(warnings) == 1 and "the PAB (keypoint branch) is not learning" in warnings[0]
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    health = [line for line in lines if "health/pab/loss" in line]
    assert [line["step"] for line in health] == list(range(2, 17, 2))
    for line in health:
        assert line["health/pab/pab_grad_layer4"] < 1e-9 * line["health/pab/reid_grad_layer4"]
    assert all(line["health/pab/reid_grad_layer4"] > 0 for line in health)
    last = health[-1]
    assert last["health/hab/iou"] > last["health/hab/constant_iou"] + 0.05  # as the warning judges
    assert last["health/hab/loss"] < last["health/hab/zero_map_loss"]
    assert last["health/pab/loss"] >= 0.95 * last["health/pab/zero_map_loss"]


def test_the_accuracies_beside_their_constant_maps(tiny_dataset):
    """PCK of the PAB's peaks against the targets' peaks and IoU of the HAB's mask, each beside a
    constant map made of the batches measured before: every keypoint at the mean place of its
    earlier peaks, the mean earlier mask."""
    cfg = tiny(tiny_dataset)
    batch = prepare_batch(first_batch(cfg, tiny_dataset), cfg.data, torch.device("cpu"))
    model = build_model(cfg, num_classes=8)
    health = BranchHealth(model, build_criterion(cfg, 8, model.feat_dim), period=1, warmup=0)
    exact = DAAFOutput(None, None, 20 * (batch["masks"] - 0.5), batch["heatmaps"])
    health.arm(1)
    health.observe(exact, batch)
    first = health.finish(1)
    assert first["health/pab/pck"] == 1.0 and first["health/hab/iou"] == 1.0
    assert "health/pab/constant_pck" not in first and "health/hab/constant_iou" not in first
    health.arm(2)
    health.observe(exact, batch)
    second = health.finish(2)
    valid, visible = batch["valid"].bool(), batch["keypoint_visible"]
    maps = batch["heatmaps"][valid]
    flat = maps.flatten(2).argmax(2)
    peaks = torch.stack([flat % maps.shape[-1], flat // maps.shape[-1]], -1).float()
    seen = visible[valid]
    place = (peaks * seen[..., None]).sum(0) / seen.sum(0).clamp_min(1)[:, None]
    hits = (place - peaks).norm(dim=-1) <= 0.1 * maps.shape[-2]
    assert second["health/pab/constant_pck"] == pytest.approx(hits[seen].float().mean().item())
    mean_mask = batch["masks"][valid].mean(0, keepdim=True) >= 0.5
    truth = batch["masks"][valid] >= 0.5
    iou = ((truth & mean_mask).flatten(1).sum(1) / (truth | mean_mask).flatten(1).sum(1)).mean()
    assert second["health/hab/constant_iou"] == pytest.approx(iou.item(), rel=1e-6)


@pytest.mark.parametrize(
    "values, verdict",
    [
        ({"health/pab/pck": 0.30, "health/pab/constant_pck": 0.25}, True),  # within the margin
        (
            {
                "health/pab/pck": 0.31,
                "health/pab/constant_pck": 0.25,
                "health/pab/loss": 9.0,
                "health/pab/zero_map_loss": 1.0,
            },
            False,
        ),  # the accuracy decides, not the loss
        ({"health/pab/loss": 0.96, "health/pab/zero_map_loss": 1.0}, True),  # no accuracy: loss
        ({"health/pab/loss": 0.94, "health/pab/zero_map_loss": 1.0}, False),
        ({"health/pab/pck": 0.9}, None),  # no constant map yet, no loss: nothing to judge
    ],
)
def test_a_branch_is_judged_by_its_accuracy_where_it_has_one(values, verdict):
    from daaf.training.branch_health import not_learning

    assert not_learning("pab", values) is verdict


def test_a_branch_with_weight_0_is_measured_not_judged(tiny_dataset, caplog):
    """Nothing trains a branch whose loss weight is 0 (the PAB's positive control turns the HAB
    off so): its numbers are logged, and no warning says what its weight already says."""
    cfg = tiny(tiny_dataset, "loss.hab_weight=0")
    batch = prepare_batch(first_batch(cfg, tiny_dataset), cfg.data, torch.device("cpu"))
    model = build_model(cfg, num_classes=8)
    health = BranchHealth(model, build_criterion(cfg, 8, model.feat_dim), period=1, warmup=0)
    assert health.judged == {"pab"}
    with caplog.at_level(logging.WARNING, logger=HEALTH_LOGGER):
        for step in range(1, 6):
            health.arm(step)
            health.observe(
                DAAFOutput(None, None, -10 + 0 * batch["masks"], batch["heatmaps"]), batch
            )
            values = health.finish(step)
    assert values["health/hab/iou"] < values["health/hab/constant_iou"]  # an empty mask
    assert health.warned == [] and not [r for r in caplog.records if r.name == HEALTH_LOGGER]
