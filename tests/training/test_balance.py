"""loss.branch_balance: the paper's objective by default, bit for bit; grad_ratio drives the
branches' measured gradient ratios to the target; uncertainty's log-variances learn; bad values
stop in one line (issue 19)."""

import copy
import math
import re

import pytest
import torch
from torch.nn import functional as F

from daaf.config import load_config
from daaf.data.device_batch import prepare_batch
from daaf.errors import ConfigError
from daaf.models import build_model
from daaf.training.balance import MAX_STEP, RANGE, GradRatioBalance
from daaf.training.branch_health import BranchHealth
from daaf.training.engine import train_step
from daaf.training.losses import batch_hard_triplet, build_criterion
from daaf.training.trainer import build_optimizers

from ..conftest import REPO
from .test_branch_health import first_batch, tiny

CPU = torch.device("cpu")


def outputs(cfg, root):
    """(model, its float outputs on the first batch, the criterion's batch)."""
    worker_batch = first_batch(cfg, root)
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=8).train()
    batch = prepare_batch(worker_batch, cfg.data, CPU)
    return model, model(batch["images"]), batch


def test_none_is_the_papers_objective_bit_for_bit(tiny_dataset):
    """``none`` (the default) gives exactly L_r + lambda_h L_h + lambda_p L_p, computed here
    from the loss functions; grad_ratio and uncertainty start from the same total."""
    cfg = tiny(tiny_dataset, "loss.hab_weight=0.7", "loss.pab_weight=0.003")
    assert cfg.loss.branch_balance == "none"
    model, output, batch = outputs(cfg, tiny_dataset)
    torch.manual_seed(1)  # the centre loss's centres
    criterion = build_criterion(cfg, 8, model.feat_dim)
    terms = criterion(output, batch)
    loss, pids = cfg.loss, batch["pids"]
    expected = {
        "id": loss.id_weight
        * F.cross_entropy(output.logits, pids, label_smoothing=loss.label_smoothing),
        "triplet": loss.triplet_weight
        * batch_hard_triplet(output.features, pids, loss.triplet_margin),
        "center": loss.center_weight * criterion.center(output.features, pids),
        "hab": 0.7 * criterion.branch_loss("hab", torch.sigmoid(output.mask), batch),
        "pab": 0.003 * criterion.branch_loss("pab", output.parts, batch),
    }
    assert list(terms) == list(expected)
    for name, value in expected.items():
        assert torch.equal(terms[name], value), name
    assert criterion.state_dict().keys() == {"center.centers"}  # checkpoints as before
    total = sum(expected.values())
    for balance in ("grad_ratio", "uncertainty"):
        other = copy.deepcopy(cfg)
        other.loss.branch_balance = balance
        torch.manual_seed(1)
        other_terms = build_criterion(other, 8, model.feat_dim)(output, batch)
        assert torch.equal(sum(other_terms.values()), total), balance


@pytest.mark.slow
def test_grad_ratio_brings_each_branch_to_the_target_ratio(tiny_dataset):
    """Real steps of a tiny DAAF-BoT, measured every step: both branches start near 1e-5 of the
    ReID loss's gradient (lambda = 0.003); each measurement moves the weight at most x10, and
    within six the measured ratios are within a factor 2 of the target 0.1. At BoT's learning
    rate 3.5e-4, which the claim was measured at: at the paper's 1e-3 (its config's since the
    presets moved) the HAB's ratio still swings by 100x between steps 4 and 6."""
    cfg = tiny(
        tiny_dataset,
        "loss.branch_balance=grad_ratio",
        "loss.triplet_margin=null",
        "optim.lr=3.5e-4",
    )
    worker_batch = first_batch(cfg, tiny_dataset)
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=8).train()
    criterion = build_criterion(cfg, 8, model.feat_dim)
    health = BranchHealth(model, criterion, period=1, warmup=10**6)
    optimizers = build_optimizers(cfg, model, criterion)
    ratios, weights = [], [criterion.balance.weights()]
    for step in range(1, 7):
        health.arm(step)
        values = train_step(
            model, worker_batch, optimizers, criterion, data=cfg.data, health=health
        )
        signals = health.finish(step)
        ratios.append({b: signals[f"health/{b}/grad_ratio"] for b in ("hab", "pab")})
        criterion.balance.adapt(signals, CPU)
        weights.append(criterion.balance.weights())
        assert values["pab"] == pytest.approx(
            weights[-2]["weight/pab"] * signals["health/pab/loss"], rel=1e-5
        )  # the term used the weight of the step
    assert weights[0] == {"weight/hab": 0.003, "weight/pab": 0.003}
    for branch in ("hab", "pab"):
        assert ratios[0][branch] < 1e-4
        assert weights[1][f"weight/{branch}"] == pytest.approx(0.003 * MAX_STEP)  # clamped
        assert 0.05 < ratios[-1][branch] < 0.2, [r[branch] for r in ratios]


def test_grad_ratio_steps_are_smoothed_and_clamped():
    """Half the log-correction per measurement, at most x MAX_STEP, within RANGE of lambda; a
    measurement without a gradient changes nothing."""
    balance = GradRatioBalance({"hab": 0.5, "pab": 0.003}, ["hab", "pab"], ratio=0.1)
    balance.adapt({"health/hab/grad_ratio": 0.4, "health/pab/grad_ratio": 1e-30}, CPU)
    assert balance.weight("hab") == pytest.approx(0.5 * math.sqrt(0.1 / 0.4))
    assert balance.weight("pab") == pytest.approx(0.003 * MAX_STEP)
    balance.adapt({"health/hab/grad_ratio": 0.0}, CPU)  # no sample with a mask: no information
    assert balance.weight("hab") == pytest.approx(0.25)
    for _ in range(10):
        balance.adapt({"health/pab/grad_ratio": 1e-30}, CPU)
    assert balance.weights()["weight/pab"] == pytest.approx(0.003 * RANGE)


def test_uncertainty_log_variances_get_gradients_and_learn(tiny_dataset):
    """s_reid, s_hab, s_pab start at 0, get d/ds_i = 1 - lambda_i L_i, are stepped by the
    model's Adam in a group of their own after the network's two (uncertainty_lr, no weight
    decay), and the weights
    the log reports follow: lambda_i exp(-s_i)."""
    cfg = tiny(tiny_dataset, "loss.branch_balance=uncertainty", "loss.uncertainty_lr=0.02")
    worker_batch = first_batch(cfg, tiny_dataset)
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=8).train()
    criterion = build_criterion(cfg, 8, model.feat_dim)
    log_vars = criterion.balance.log_vars
    optimizers = build_optimizers(cfg, model, criterion)
    network, branches, group = optimizers.main.param_groups  # optim.branch_weight_decay: 0
    assert group["params"] == [log_vars] and group["lr"] == 0.02 and group["weight_decay"] == 0
    assert network["weight_decay"] == cfg.optim.weight_decay and branches["weight_decay"] == 0
    values = train_step(model, worker_batch, optimizers, criterion, data=cfg.data)
    reid = values["id"] + values["triplet"] + values["center"]
    expected = torch.tensor([1 - reid, 1 - values["hab"], 1 - values["pab"]])
    assert torch.allclose(log_vars.grad, expected, rtol=1e-5)
    assert values["log_var"] == 0.0
    # Adam's first step: lr times the gradient's sign
    assert torch.allclose(log_vars.detach(), -0.02 * expected.sign(), rtol=1e-4)
    scales = torch.exp(-log_vars.detach()).tolist()
    assert criterion.balance.weights() == pytest.approx(
        {"weight/reid": scales[0], "weight/hab": 0.003 * scales[1], "weight/pab": 0.003 * scales[2]}
    )
    train_step(model, worker_batch, optimizers, criterion, data=cfg.data)
    assert (log_vars.detach().abs() > 0.03).all()  # a second step of 0.02 each


def test_a_branch_without_weight_stays_off(tiny_dataset):
    """lambda_h = 0 leaves the HAB out of the balancing: its term stays 0 x L_h."""
    for balance in ("grad_ratio", "uncertainty"):
        cfg = tiny(tiny_dataset, f"loss.branch_balance={balance}", "loss.hab_weight=0")
        model, output, batch = outputs(cfg, tiny_dataset)
        criterion = build_criterion(cfg, 8, model.feat_dim)
        assert set(criterion.balance.weights()) <= {"weight/reid", "weight/pab"}
        assert criterion(output, batch)["hab"].item() == 0


def test_balanced_weights_survive_a_state_dict_round_trip(tiny_dataset):
    """The checkpointed criterion state restores the adapted weights; a checkpoint of another
    balance does not load."""
    cfg = tiny(tiny_dataset, "loss.branch_balance=grad_ratio")
    criterion = build_criterion(cfg, 8, 512)
    criterion.balance.adapt({"health/pab/grad_ratio": 1e-3}, CPU)
    fresh = build_criterion(cfg, 8, 512)
    fresh.load_state_dict(criterion.state_dict())
    assert (
        fresh.balance.weights()
        == criterion.balance.weights()
        != {"weight/hab": 0.003, "weight/pab": 0.003}
    )
    other = build_criterion(tiny(tiny_dataset, "loss.branch_balance=uncertainty"), 8, 512)
    with pytest.raises(RuntimeError, match="balance"):
        other.load_state_dict(criterion.state_dict())


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["loss.branch_balance=gradnorm"],
            "loss.branch_balance must be one of none, grad_ratio, uncertainty, got 'gradnorm'",
        ),
        (["loss.balance_ratio=0"], r"loss.balance_ratio must be a number in \(0, 10\], got 0"),
        (["loss.balance_ratio=-0.1"], r"loss.balance_ratio must be a number in \(0, 10\]"),
        (["loss.balance_ratio=100"], r"loss.balance_ratio must be a number in \(0, 10\]"),
        (["loss.uncertainty_lr=0"], r"loss.uncertainty_lr must be a number in \(0, 1\]"),
        (
            ["loss.branch_balance=grad_ratio", "train.health_period=0"],
            "override 'loss.branch_balance=grad_ratio', override 'train.health_period=0': "
            "loss.branch_balance=grad_ratio adapts the branch weights at each branch-health "
            "measurement: train.health_period must be >= 1, got 0$",
        ),
    ],
)
def test_bad_balance_settings_stop_in_one_line(overrides, message, cli):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)
    out = ["--out", "/nonexistent/run"]
    result = cli("train", "--config", REPO / "configs/demo.yaml", *out, *overrides, ok=False)
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert re.search(message.rstrip("$"), result.output)
