"""train.compile and train.channels_last: the first 5 steps' losses match the plain step's.

Tolerances: channels-last only reorders the convolutions' sums, so 5 SGD steps at a small rate
on the identity and centre losses agree to relative 1e-4 (measured: 6e-8 at the fifth step on a
Sapphire Rapids CPU). The batch-hard triplet is left out of that test: its hinge turns rounding
into a different hardest pair, and 5 steps drifted apart by 2e-4 on one CPU, 7e-2 on another
(as do Adam's, whose per-parameter normalisation amplifies near-zero gradients). torch.compile:
Dynamo's capture run eagerly gives the plain numbers (relative 1e-6), Inductor's fused kernels
agree to relative 1e-4 (measured: 1.5e-6 on a ResNet-18 BoT). Both compile tests are slow
(two tiny trainings plus the capture: 20 s on 2 idle cores; Inductor: minutes).
"""

import json
from pathlib import Path

import pytest
import torch

from daaf.config import load_config
from daaf.models import build_model
from daaf.training.checkpoint import load_checkpoint
from daaf.training.engine import Optimizers, Precision, train_step
from daaf.training.losses import build_criterion
from daaf.training.schedule import build_optimizer
from daaf.training.trainer import train

from .test_trainer import REPO, fake_batch, tiny_overrides

STEPS = 5


def train_five_steps(root: Path, out_dir: Path, *extra: str) -> list[float]:
    """The total loss of each of the first 5 steps of ``daaf train`` (tiny BoT)."""
    overrides = tiny_overrides(root, "train.epochs=1", f"train.iters_per_epoch={STEPS}", *extra)
    train(load_config(REPO / "configs/bot.yaml", overrides), out_dir)
    lines = (out_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["total"] for line in lines]


def channels_last_run(channels_last: bool) -> tuple[list[float], torch.nn.Module]:
    """5 SGD steps of a tiny BoT, identity and centre losses, on different random batches
    (32x16)."""
    cfg = load_config(
        REPO / "configs/bot.yaml",
        [
            "model.depth=18",
            "model.pretrained=none",
            "optim.name=sgd",
            "optim.lr=1e-3",
            "loss.triplet_weight=0",
        ],
    )
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=4)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = build_criterion(cfg, 4, model.feat_dim)
    centers = criterion.center_parameters()
    optimizers = Optimizers(
        build_optimizer(model.parameters(), cfg.optim),
        torch.optim.SGD(centers, lr=cfg.loss.center_lr),
    )
    losses = []
    for step in range(STEPS):
        batch = fake_batch(h=32, w=16)
        del batch["masks"], batch["keypoints"]  # BoT learns no branch
        batch["images"] = batch["images"].roll(7 * step, dims=1)  # another batch each step
        values = train_step(
            model,
            batch,
            optimizers,
            criterion,
            data=cfg.data,
            precision=Precision(channels_last=channels_last),
        )
        losses.append(values["total"])
    return losses, model


def test_channels_last_steps_match_the_plain_steps():
    """What ``daaf train`` does on CUDA with train.channels_last (model and images
    channels-last), run on the CPU: the same losses for 5 steps."""
    plain, _ = channels_last_run(False)
    got, model = channels_last_run(True)
    convs = [p for p in model.parameters() if p.dim() == 4]
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert got[0] == pytest.approx(plain[0], rel=1e-5)  # the same weights: rounding only
    assert got == pytest.approx(plain, rel=1e-4)  # 5 steps (see the module's docstring)
    assert len(set(plain)) == STEPS  # the steps do change the losses


@pytest.mark.slow  # two tiny trainings and Dynamo's capture of the model
def test_compile_wraps_the_step_model_and_keeps_the_losses(tiny_dataset, tmp_path, monkeypatch):
    """train.compile=true runs the step through torch.compile (Dynamo's capture, run eagerly
    here to stay fast): the same losses as the plain run; the checkpoint holds the plain
    model's keys, not the compiled wrapper's ``_orig_mod.`` ones."""
    compiled = []

    def eager_compile(model, real=torch.compile):
        compiled.append(model)
        return real(model, backend="eager")

    plain = train_five_steps(tiny_dataset, tmp_path / "plain")
    monkeypatch.setattr(torch, "compile", eager_compile)
    got = train_five_steps(tiny_dataset, tmp_path / "compiled", "train.compile=true")
    assert len(compiled) == 1 and len(got) == STEPS
    assert got == pytest.approx(plain, rel=1e-6)
    state = load_checkpoint(tmp_path / "compiled" / "checkpoints" / "last.pt")
    assert not any(key.startswith("_orig_mod.") for key in state["model"])


@pytest.mark.slow  # Inductor compiles the step's C++ kernels: minutes on 2 CPU cores
def test_inductor_compiled_steps_match_the_plain_steps(tiny_dataset, tmp_path):
    plain = train_five_steps(tiny_dataset, tmp_path / "plain")
    got = train_five_steps(tiny_dataset, tmp_path / "compiled", "train.compile=true")
    assert got == pytest.approx(plain, rel=1e-4)
