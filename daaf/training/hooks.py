"""The trainer's hooks (:class:`~daaf.training.engine.HookBase`): branch health and balancing,
checkpoints, periodic evaluation and the metrics log, called in that order.

- :class:`BranchHealthHook`: measures the branches every ``train.health_period`` steps and
  adapts their loss weights to the measurement (``loss.branch_balance``).
- :class:`Checkpointer`: ``OUT/checkpoints/epoch_XXX.pt`` every ``train.checkpoint_period``
  epochs and after the last, ``last.pt`` beside it.
- :class:`PeriodicEvaluation`: the given evaluation every ``train.eval_period`` epochs.
- :class:`MetricsWriter`: ``metrics.jsonl`` (one JSON object per line), TensorBoard scalars and
  the progress bar; the other hooks' rows, and the losses every ``train.log_period`` steps.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from daaf.data.datasets import ReIDDataset
from daaf.training.engine import HookBase
from daaf.utils import distributed
from daaf.utils.files import atomic_write

LAST_CHECKPOINT = "last.pt"

# Periodic evaluation: (model in eval mode, dataset, device) -> scores such as {"eval/mAP": ...}.
Evaluate = Callable[[torch.nn.Module, ReIDDataset, torch.device], dict[str, float]]


class BranchHealthHook(HookBase):
    """The trainer's :class:`~daaf.training.branch_health.BranchHealth` armed before each
    ``period``-th step and read after it (every process measures its own batch), its signals
    handed to the criterion's branch balance (:mod:`daaf.training.balance`) and to the log.
    The losses' line logs the weights its step was weighted with."""

    def before_step(self) -> None:
        self.trainer.health.arm(self.trainer.step + 1)
        self.weights = self.trainer.criterion.balance.weights()

    def after_step(self) -> None:
        trainer = self.trainer
        trainer.scalars.update(self.weights)
        if trainer.health.armed:
            signals = trainer.health.finish(trainer.step, trainer.precision.loss_scale())
            device = next(trainer.model.parameters()).device
            trainer.criterion.balance.adapt(signals, device)
            trainer.record({"epoch": trainer.epoch + 1, **signals})


def save_checkpoint(state: dict[str, Any], ckpt_dir: Path, epoch: int) -> Path:
    """``epoch_XXX.pt``, written to a temporary name and renamed, and ``last.pt`` as a hard link
    to it (a copy where the file system has no hard links): one checkpoint's bytes on disk, not
    two (a ResNet-50 DAAF checkpoint with its Adam state is about 270 MB)."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = atomic_write(ckpt_dir / f"epoch_{epoch:03d}.pt", lambda tmp: torch.save(state, tmp))
    atomic_write(ckpt_dir / LAST_CHECKPOINT, lambda tmp: _link_or_copy(path, tmp))
    return ckpt_dir / LAST_CHECKPOINT


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class Checkpointer(HookBase):
    """The trainer's state (:meth:`~daaf.training.engine.Trainer.state_dict`) saved to
    ``ckpt_dir`` every ``period`` epochs and after the last (main process only)."""

    def __init__(self, ckpt_dir: Path, period: int) -> None:
        self.ckpt_dir, self.period = ckpt_dir, period

    def after_epoch(self) -> None:
        done = self.trainer.epoch
        if done % self.period == 0 or done == self.trainer.cfg.train.epochs:
            save_checkpoint(self.trainer.state_dict(), self.ckpt_dir, done)


def evaluate_during_training(
    model: torch.nn.Module, dataset: ReIDDataset, device: torch.device, evaluate: Evaluate
) -> dict[str, float]:
    """``evaluate`` on the model's eval path; the model is back in training mode after."""
    model.eval()
    try:
        with torch.no_grad():
            return evaluate(model, dataset, device)
    finally:
        model.train()


class PeriodicEvaluation(HookBase):
    """``evaluate`` of the network on ``dataset`` every ``period`` epochs, its scores logged
    and printed (main process only: the others wait at the trainer's barrier meanwhile)."""

    def __init__(
        self, evaluate: Evaluate, dataset: ReIDDataset, device: torch.device, period: int
    ) -> None:
        self.evaluate, self.dataset, self.device, self.period = evaluate, dataset, device, period

    def after_epoch(self) -> None:
        done = self.trainer.epoch
        if done % self.period == 0:
            model = self.trainer.model
            scores = evaluate_during_training(model, self.dataset, self.device, self.evaluate)
            self.trainer.record({"epoch": done, **scores})
            tqdm.write(f"epoch {done}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))


class MetricsWriter(HookBase):
    """``metrics.jsonl`` and TensorBoard scalars in ``out_dir`` and the epoch's progress bar, on
    the main process (``enabled``): the rows other hooks record, and every ``period`` steps
    (and after the last) the step's losses, loss weights, learning rate and images per second.

    ``fresh``: a run from the beginning, whose logs replace those of an earlier attempt.
    """

    def __init__(self, out_dir: Path, period: int, enabled: bool, fresh: bool) -> None:
        self.out_dir, self.period, self.enabled, self.fresh = out_dir, period, enabled, fresh
        self.bar: tqdm | None = None  # the running epoch's

    def before_train(self) -> None:
        if self.enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.jsonl = (self.out_dir / "metrics.jsonl").open("w" if self.fresh else "a")
            self.tensorboard = SummaryWriter(
                str(self.out_dir / "tensorboard"), purge_step=0 if self.fresh else None
            )

    def before_epoch(self) -> None:
        epochs = self.trainer.cfg.train.epochs
        self.bar = tqdm(
            total=len(self.trainer.data.loader),
            desc=f"epoch {self.trainer.epoch + 1}/{epochs}",
            disable=not self.enabled,
            leave=False,
        )
        self.tic, self.images = time.perf_counter(), 0

    def after_step(self) -> None:
        trainer = self.trainer
        self.write_rows()
        self.images += trainer.batch_size * distributed.world_size()
        self.bar.set_postfix(loss=f"{trainer.scalars['total']:.3f}")
        self.bar.update()
        last = trainer.index + 1 == len(trainer.data.loader)
        final = last and trainer.epoch + 1 == trainer.cfg.train.epochs
        if trainer.step % self.period == 0 or final:  # the last losses always on record
            rate = self.images / (time.perf_counter() - self.tic)
            lr = trainer.optimizers.main.param_groups[0]["lr"]
            values = {"epoch": trainer.epoch + 1, **trainer.scalars}
            self.write(trainer.step, {**values, "lr": lr, "images_per_s": rate})
            self.tic, self.images = time.perf_counter(), 0
        if last:
            self.bar.close()

    def after_epoch(self) -> None:
        self.write_rows()

    def after_train(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.enabled:
            self.jsonl.close()
            self.tensorboard.close()

    def write_rows(self) -> None:
        """The rows the other hooks recorded, in their order."""
        for step, values in self.trainer.rows:
            self.write(step, values)
        self.trainer.rows.clear()

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self.jsonl.flush()
        for name, value in values.items():
            if name != "epoch":
                self.tensorboard.add_scalar(name, value, step)
