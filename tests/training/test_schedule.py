"""Learning-rate schedules of the BoT and TriNet recipes."""

from pathlib import Path

import pytest
import torch

from daaf.config import OptimConfig, load_config
from daaf.errors import DaafError
from daaf.training.schedule import build_optimizer, build_scheduler, lr_factor

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_bot_warmup_then_steps_per_epoch():
    cfg = load_config(CONFIGS / "bot.yaml").optim
    factors = [lr_factor(cfg, epoch * 10, 10) for epoch in (0, 5, 9, 10, 39, 40, 69, 70, 119)]
    assert factors == pytest.approx([0.01, 0.505, 0.901, 1.0, 1.0, 0.1, 0.1, 0.01, 0.01])
    # constant within an epoch, as BoT steps its scheduler per epoch
    assert lr_factor(cfg, 50, 10) == lr_factor(cfg, 59, 10)


def test_trinet_exponential_decay_per_iteration():
    cfg = load_config(CONFIGS / "trinet.yaml").optim
    assert lr_factor(cfg, 14999, 100) == 1.0
    assert lr_factor(cfg, 20000, 100) == pytest.approx(0.001**0.5)
    assert lr_factor(cfg, 25000, 100) == pytest.approx(0.001)
    assert lr_factor(cfg, 40000, 100) == pytest.approx(0.001)
    assert lr_factor(cfg, 20001, 100) < lr_factor(cfg, 20000, 100)


def test_scheduler_drives_the_optimizer_and_bad_names_fail():
    cfg = OptimConfig(lr=0.1, warmup_epochs=2, warmup_factor=0.5, milestones=[3])
    optimizer = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg)
    scheduler = build_scheduler(optimizer, cfg, iters_per_epoch=2)
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([0.05, 0.05, 0.075, 0.075, 0.1, 0.1, 0.01, 0.01])
    with pytest.raises(DaafError, match="unknown optimizer 'rmsprop'"):
        build_optimizer([torch.nn.Parameter(torch.zeros(1))], OptimConfig(name="rmsprop"))
    with pytest.raises(DaafError, match="unknown schedule 'cosine'"):
        lr_factor(OptimConfig(schedule="cosine"), 0, 1)
