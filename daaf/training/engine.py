"""The training engine: ``train_step`` takes one step; a :class:`Trainer` runs it over the epochs
and calls its hooks around each step and epoch (detectron2's ``TrainerBase``).

``train_step`` does one forward / loss / backward / optimiser step, with AMP, channels-last
images and DDP as arguments (:class:`Precision`, a wrapped model), not subclasses. Checkpoints,
periodic evaluation, the metrics log and branch health are hooks (:mod:`daaf.training.hooks`).
A checkpoint is the trainer's :meth:`Trainer.state_dict`: the model, its config and class
count, then every stateful part, each under one key (:meth:`Trainer.entries`, hooks included),
so that saving and ``--resume`` read the same table.
"""

from __future__ import annotations

import dataclasses
import random
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from daaf.config import Config, DataConfig
from daaf.data.device_batch import prepare_batch
from daaf.data.loader import Loader
from daaf.data.sampler import PKBatchSampler
from daaf.data.train_set import TrainSet
from daaf.errors import DaafError
from daaf.training.branch_health import BranchHealth
from daaf.training.checkpoint import restore_training
from daaf.training.losses import DAAFCriterion
from daaf.utils import distributed


@dataclasses.dataclass
class Optimizers:
    """The network's optimizer and, for BoT's centre loss, the centres' own SGD (BoT's recipe).

    ``center_grad_scale`` (1 / center_weight) undoes the loss weight on the centres' gradient,
    so they move at ``center_lr`` on the unweighted centre loss, as BoT's code does.
    """

    main: torch.optim.Optimizer
    center: torch.optim.Optimizer | None = None
    center_grad_scale: float = 1.0

    def zero_grad(self) -> None:
        for optimizer in (self.main, self.center):
            if optimizer is not None:
                optimizer.zero_grad(set_to_none=True)

    def step(self, scaler: torch.amp.GradScaler) -> None:
        """Step both through ``scaler``, the centres' gradient scaled first; then update it."""
        scaler.step(self.main)
        if self.center is not None:
            for group in self.center.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        param.grad.mul_(self.center_grad_scale)
            scaler.step(self.center)
        scaler.update()


def _disabled_scaler() -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cpu", enabled=False)


@dataclasses.dataclass
class Precision:
    """How a step computes on its device: the autocast ``dtype`` (None: float32), the loss
    ``scaler`` fp16 needs (disabled otherwise), and ``channels_last`` images for a model
    converted to that memory format."""

    dtype: torch.dtype | None = None
    scaler: torch.amp.GradScaler = dataclasses.field(default_factory=_disabled_scaler)
    channels_last: bool = False

    def loss_scale(self) -> float:
        """The factor the backward's gradients carry (1 without fp16 loss scaling)."""
        return self.scaler.get_scale() if self.scaler.is_enabled() else 1.0


def float_outputs(output: Any) -> Any:
    """The model's outputs in float32: under AMP, the branch L2 norms sum many pixels."""
    fields = {f.name: getattr(output, f.name) for f in dataclasses.fields(output)}
    return type(output)(**{k: None if v is None else v.float() for k, v in fields.items()})


def check_finite(losses: dict[str, torch.Tensor], step: int, device: torch.device) -> None:
    """DaafError naming the first non-finite term and the step; under DDP every rank stops."""
    bad = [name for name, value in losses.items() if not torch.isfinite(value)]
    # a rank that raised alone would leave the others waiting
    elsewhere = distributed.any_process(bool(bad), device)
    hint = "training stopped (lower optim.lr, or check the annotations and inputs)"
    if bad:
        raise DaafError(f"loss term {bad[0]!r} is {losses[bad[0]].item()} at step {step}; {hint}")
    if elsewhere:
        raise DaafError(f"a loss term is not finite on another process at step {step}; {hint}")


def train_step(
    model: nn.Module,
    batch: dict[str, torch.Tensor],
    optimizers: Optimizers,
    criterion: DAAFCriterion,
    *,
    data: DataConfig,
    step: int = 0,
    precision: Precision | None = None,
    health: BranchHealth | None = None,
) -> dict[str, float]:
    """One forward / loss / backward / step; returns every weighted loss term and their ``total``.

    ``batch`` is a worker batch (``TrainSet``), made into the criterion's tensors on the
    model's device per ``data``; ``precision`` (default: float32) says how the step computes.
    A non-finite term raises a DaafError naming it and ``step``. An armed ``health`` sees the
    outputs and batch (its hooks see the backward).
    """
    precision = precision or Precision()
    device = next(model.parameters()).device
    batch = prepare_batch(batch, data, device, criterion.target_stride)
    if precision.channels_last:
        batch["images"] = batch["images"].contiguous(memory_format=torch.channels_last)
    dtype = precision.dtype
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        output = model(batch["images"])
    output = float_outputs(output)
    losses = criterion(output, batch)
    if health is not None:
        health.observe(output, batch)
    check_finite(losses, step, device)
    total = sum(losses.values())
    optimizers.zero_grad()
    precision.scaler.scale(total).backward()
    distributed.average_gradients(criterion.parameters())  # centres, log-variances: not in DDP
    optimizers.step(precision.scaler)
    values = {name: value.item() for name, value in losses.items()}
    values["total"] = total.item()
    return values


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch and CUDA generator states as tensors and numbers, so that a
    checkpoint loads with ``torch.load(weights_only=True)``."""
    version, words, gauss_next = random.getstate()
    numpy_state = np.random.get_state(legacy=False)
    return {
        "python": {"version": version, "state": torch.tensor(words), "gauss_next": gauss_next},
        "numpy": {
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": numpy_state["state"]["pos"],
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` recorded."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    numpy = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": numpy["pos"]},
            "has_gauss": numpy["has_gauss"],
            "gauss": numpy["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def wrap_model(model: nn.Module, compile: bool) -> nn.Module:
    """``model`` as it takes its steps: in DistributedDataParallel under torchrun, compiled with
    ``compile`` (checkpoints and evaluation use ``model`` itself)."""
    if distributed.in_process_group():
        device = next(model.parameters()).device
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return torch.compile(model) if compile else model


class Stateful(Protocol):
    """A part of training with a state: torch's modules, optimizers, schedulers, scalers."""

    def state_dict(self) -> Any: ...

    def load_state_dict(self, state: Any) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Entry:
    """A checkpoint entry that is no object with a state of its own: how to read it, and how to
    load it back (None: a record the checkpoint's checks read, see :meth:`Trainer.entries`)."""

    state_dict: Callable[[], Any]
    load_state_dict: Callable[[Any], None] | None = None


class HookBase:
    """What the trainer calls around its loop (detectron2's ``HookBase``); ``trainer`` is set
    by :meth:`Trainer.register_hooks`. A hook with a ``checkpoint_key`` is a stateful part of
    training: its ``state_dict()`` is saved under that key and comes back through
    ``load_state_dict`` on --resume."""

    trainer: Trainer
    checkpoint_key: ClassVar[str | None] = None

    def before_train(self) -> None:
        pass

    def before_epoch(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def state_dict(self) -> Any:
        return None

    def load_state_dict(self, state: Any) -> None:
        pass


@dataclasses.dataclass
class TrainData:
    """The training split as the loop reads it: P x K batches whose order (``sampler``) and
    augmentations (``train_set``) follow the epoch."""

    loader: Loader
    sampler: PKBatchSampler
    train_set: TrainSet
    num_classes: int

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch)


@dataclasses.dataclass
class Trainer:
    """Runs ``train_step`` on ``data`` for ``cfg.train.epochs`` epochs, calling its hooks
    (:meth:`register_hooks`, in their order) around each step and epoch. ``model`` is the
    network itself (checkpoints, evaluation), ``step_model`` what steps (:func:`wrap_model`).

    Between hooks: ``epoch`` and ``step`` count the epochs and steps done; ``index`` is the
    step's place in its epoch and ``batch_size`` its batch's on this process; ``scalars`` the
    step's losses and what hooks add for the metrics log's line; ``rows`` the (step, values)
    rows hooks have recorded for it (:meth:`record`), until its writer takes them.
    """

    cfg: Config
    model: nn.Module
    criterion: DAAFCriterion
    optimizers: Optimizers
    scheduler: torch.optim.lr_scheduler.LRScheduler
    precision: Precision
    data: TrainData
    health: BranchHealth
    step_model: nn.Module = dataclasses.field(init=False)
    hooks: list[HookBase] = dataclasses.field(init=False, default_factory=list)
    epoch: int = dataclasses.field(init=False, default=0)
    step: int = dataclasses.field(init=False, default=0)
    index: int = dataclasses.field(init=False, default=0)
    batch_size: int = dataclasses.field(init=False, default=0)
    scalars: dict[str, float] = dataclasses.field(init=False, default_factory=dict)
    rows: list[tuple[int, dict[str, float]]] = dataclasses.field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.step_model = wrap_model(self.model, self.cfg.train.compile)

    def register_hooks(self, hooks: list[HookBase]) -> None:
        """Call ``hooks`` after those registered before, in this order. A hook sees the trainer
        through a weak proxy, as in detectron2: without the cycle, the trainer, and with it the
        train loader's persistent workers, goes as soon as training returns, not at a garbage
        collection that may come only at exit (where the workers' end was printed as an error)."""
        for hook in hooks:
            hook.trainer = weakref.proxy(self)
        self.hooks.extend(hooks)

    def train(self) -> None:
        """Train from epoch ``epoch`` (0, or where a resumed run stopped) to the last."""
        self._call("before_train")
        try:
            while self.epoch < self.cfg.train.epochs:
                self.train_one_epoch()
                self.epoch += 1
                self._call("after_epoch")
                distributed.barrier()  # the others wait while the main process saves and evaluates
        finally:  # also when a step fails: the bar is cleared before the error is printed
            self._call("after_train")

    def train_one_epoch(self) -> None:
        """``train_step`` on each batch of the epoch, a learning-rate step after each."""
        self.data.set_epoch(self.epoch)
        self.step_model.train()
        self._call("before_epoch")
        for index, batch in enumerate(self.data.loader):
            self.index = index
            self._call("before_step")
            self.scalars = train_step(
                self.step_model,
                batch,
                self.optimizers,
                self.criterion,
                data=self.cfg.data,
                step=self.step,
                precision=self.precision,
                health=self.health,
            )
            self.scheduler.step()
            self.step += 1
            self.batch_size = len(batch["pids"])
            self._call("after_step")

    def _call(self, event: str) -> None:
        for hook in self.hooks:
            getattr(hook, event)()

    def record(self, values: dict[str, float]) -> None:
        """A row of ``values`` for the metrics log, at the current step."""
        self.rows.append((self.step, values))

    def entries(self) -> dict[str, Stateful | None]:
        """Every entry of the checkpoint by its key, in the file's order, the hooks' last: a
        stateful part (None: one this run has not, the centres' optimizer without a centre
        loss) or an :class:`Entry`. The entries without a loader (the model's weights, its
        config and class count) :func:`~daaf.training.checkpoint.restore_training` checks
        before the parts, and loads the weights."""
        sampler = self.data.sampler
        entries: dict[str, Stateful | None] = {
            "model": Entry(self.model.state_dict),
            "criterion": self.criterion,
            "config": Entry(self.cfg.to_dict),
            "num_classes": Entry(lambda: self.data.num_classes),
            "optimizer": self.optimizers.main,
            "center_optimizer": self.optimizers.center,
            "scheduler": self.scheduler,
            "scaler": self.precision.scaler,
            # the sampler as the next epoch, where a resumed run starts, uses it
            "sampler": Entry(
                lambda: {**sampler.state_dict(), "epoch": self.epoch}, sampler.load_state_dict
            ),
            "rng": Entry(rng_state, set_rng_state),
            "epoch": Entry(lambda: self.epoch, lambda epoch: setattr(self, "epoch", epoch)),
            "step": Entry(lambda: self.step, lambda step: setattr(self, "step", step)),
        }
        entries.update({hook.checkpoint_key: hook for hook in self.hooks if hook.checkpoint_key})
        return entries

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint: each of :meth:`entries` as its ``state_dict()``."""
        return {
            key: None if part is None else part.state_dict() for key, part in self.entries().items()
        }

    def load_state_dict(self, state: dict[str, Any], path: Path) -> None:
        """Continue from ``state``, the checkpoint at ``path`` that
        :func:`~daaf.training.checkpoint.load_resume_checkpoint` accepted; one DaafError line
        naming the entries it lacks, or the first that does not fit this run."""
        parts = {
            key: part.load_state_dict
            for key, part in self.entries().items()
            if part is not None and part.load_state_dict is not None
        }
        restore_training(path, state, self.model, self.data.num_classes, parts)
