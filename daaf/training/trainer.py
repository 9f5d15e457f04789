"""The training loop: ``train(cfg, out_dir)`` trains a base or DAAF network and checkpoints it.

A short explicit loop in the style of torchvision's references: ``train_step`` does one
forward / loss / backward / step; ``train`` builds data, model, criterion and optimizers,
resumes from ``OUT/checkpoints/last.pt`` when asked, and writes checkpoints, TensorBoard
scalars and ``metrics.jsonl``. CUDA brings AMP (bf16 where supported) and channels-last;
``torchrun`` brings DistributedDataParallel (NCCL on GPUs, gloo on CPUs).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from daaf.data.annotations import AnnotationStore, keypoint_score_threshold
from daaf.data.annotations.report import random_weight_shards
from daaf.data.datasets import ReIDDataset, build_dataset
from daaf.data.device_batch import prepare_batch
from daaf.data.images import check_dataset_images
from daaf.data.loader import Loader, build_loader
from daaf.data.sampler import PKBatchSampler
from daaf.data.train_set import TrainSet, open_store_for
from daaf.errors import ConfigError, DaafError
from daaf.models import DAAF, build_model
from daaf.training.branch_health import BranchHealth, warmup_iterations
from daaf.training.checkpoint import load_resume_checkpoint, restore_training
from daaf.training.config import Config, DataConfig, save_config
from daaf.training.losses import DAAFCriterion, build_criterion
from daaf.training.schedule import build_optimizer, build_scheduler
from daaf.utils import distributed as dist_utils
from daaf.utils.device import resolve_device
from daaf.utils.files import MARKER_NAME, atomic_write, claim_dir, made_by_daaf

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"
RUN_FILES = (CHECKPOINT_DIR, "metrics.jsonl", "config.yaml")  # a folder with any holds a run
RUN_KIND = "training run"  # the kind of daaf's marker in the run folders it makes

# Periodic evaluation: (model in eval mode, dataset, device) -> scores such as {"eval/mAP": ...}.
Evaluate = Callable[[torch.nn.Module, ReIDDataset, torch.device], dict[str, float]]


def needs_annotations(cfg: Config) -> bool:
    """HAB needs masks and keypoint-PAB needs keypoints; part-image PAB needs only the image."""
    return cfg.model.hab or (cfg.model.pab and cfg.model.pab_target == "keypoints")


def amp_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    if not (cfg.train.amp and device.type == "cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


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


def network_param_groups(cfg: Config, model: DAAF) -> list[dict[str, Any]]:
    """The network's parameters: the attention branches' in a group of their own with
    ``optim.branch_weight_decay`` (when it is set and the model has branches), the rest with
    ``optim.weight_decay``."""
    branches = model.branch_parameters()
    if cfg.optim.branch_weight_decay is None or not branches:
        return [{"params": list(model.parameters())}]
    own = {id(p) for p in branches}
    rest = [p for p in model.parameters() if id(p) not in own]
    return [{"params": rest}, {"params": branches, "weight_decay": cfg.optim.branch_weight_decay}]


def build_optimizers(cfg: Config, model: DAAF, criterion: DAAFCriterion) -> Optimizers:
    """The network's optimizer (:func:`network_param_groups`), with the learned loss weights of
    ``loss.branch_balance: uncertainty`` as a group of their own, and the centre loss's SGD."""
    params = [*network_param_groups(cfg, model), *criterion.balance.param_groups()]
    centers = criterion.center_parameters()
    return Optimizers(
        main=build_optimizer(params, cfg.optim),
        center=torch.optim.SGD(centers, lr=cfg.loss.center_lr) if centers else None,
        center_grad_scale=1.0 / cfg.loss.center_weight if cfg.loss.center_weight > 0 else 1.0,
    )


def float_outputs(output: Any) -> Any:
    """The model's outputs in float32: under AMP, the branch L2 norms sum many pixels."""
    fields = {f.name: getattr(output, f.name) for f in dataclasses.fields(output)}
    return type(output)(**{k: None if v is None else v.float() for k, v in fields.items()})


def check_finite(losses: dict[str, torch.Tensor], step: int, device: torch.device) -> None:
    """DaafError naming the first non-finite term and the step; under DDP every rank stops."""
    bad = [name for name, value in losses.items() if not torch.isfinite(value)]
    elsewhere = False
    if torch.distributed.is_initialized():  # a rank that raised alone would leave others waiting
        flag = torch.tensor([float(bool(bad))], device=device)
        torch.distributed.all_reduce(flag)
        elsewhere = flag.item() > 0
    hint = "training stopped (lower optim.lr, or check the annotations and inputs)"
    if bad:
        raise DaafError(f"loss term {bad[0]!r} is {losses[bad[0]].item()} at step {step}; {hint}")
    if elsewhere:
        raise DaafError(f"a loss term is not finite on another process at step {step}; {hint}")


def train_step(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    optimizers: Optimizers,
    scaler: torch.amp.GradScaler,
    criterion: torch.nn.Module,
    *,
    data: DataConfig,
    step: int = 0,
    dtype: torch.dtype | None = None,
    channels_last: bool = False,
    health: BranchHealth | None = None,
) -> dict[str, float]:
    """One forward / loss / backward / step; returns every weighted loss term and their ``total``.

    ``batch`` is a worker batch (``TrainSet``), made into the criterion's tensors on the
    model's device per ``data``. ``dtype`` is the autocast dtype (None: full precision);
    ``channels_last`` hands the images over channels-last, for a model converted to that
    memory format. A non-finite term raises a DaafError naming it and ``step``. An armed
    ``health`` sees the outputs and batch (its hooks see the backward).
    """
    device = next(model.parameters()).device
    batch = prepare_batch(batch, data, device, criterion.target_stride)
    if channels_last:
        batch["images"] = batch["images"].contiguous(memory_format=torch.channels_last)
    with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        output = model(batch["images"])
    output = float_outputs(output)
    losses = criterion(output, batch)
    if health is not None:
        health.observe(output, batch)
    check_finite(losses, step, device)
    total = sum(losses.values())
    optimizers.zero_grad()
    scaler.scale(total).backward()
    if torch.distributed.is_initialized():  # the criterion (centres, log-variances) is outside DDP
        for param in criterion.parameters():
            if param.grad is not None:
                torch.distributed.all_reduce(param.grad)
                param.grad.div_(torch.distributed.get_world_size())
    scaler.step(optimizers.main)
    if optimizers.center is not None:
        centers = [p for g in optimizers.center.param_groups for p in g["params"]]
        for param in centers:
            if param.grad is not None:
                param.grad.mul_(optimizers.center_grad_scale)
        scaler.step(optimizers.center)
    scaler.update()
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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def build_train_set(cfg: Config, dataset: ReIDDataset) -> TrainSet:
    """The training split, joined with the annotation store for the targets the branches learn:
    masks for the HAB, keypoints for a keypoint PAB."""
    store = None
    if needs_annotations(cfg):
        if not cfg.data.annotations:
            raise DaafError(
                "model.hab / model.pab need masks and keypoints: set data.annotations to the "
                "annotation store (`daaf label --out DIR`, or DIR/annotations of `daaf synth`)"
            )
        store = open_store_for(dataset.train, cfg.data.annotations, dataset.name)
    # "auto" becomes the labeler's recommended score threshold: config.yaml records the value used
    cfg.data.keypoint_score_threshold = keypoint_score_threshold(
        cfg.data.keypoint_score_threshold, store
    )
    model = cfg.model
    return TrainSet(
        dataset.train,
        dataset.image_dir,
        cfg.data,
        store,
        cfg.train.seed,
        masks=model.hab,
        keypoints=model.pab and model.pab_target == "keypoints",
    )


def build_train_loader(
    cfg: Config, dataset: ReIDDataset, device: torch.device
) -> tuple[Loader, TrainSet, PKBatchSampler]:
    """P x K loader over the training split; its workers persist from epoch to epoch."""
    train_set = build_train_set(cfg, dataset)
    sampler = PKBatchSampler(
        [s.pid for s in dataset.train],
        cfg.data.num_identities,
        cfg.data.num_instances,
        seed=cfg.train.seed,
        rank=dist_utils.rank(),
        world_size=dist_utils.world_size(),
        batches_per_epoch=cfg.train.iters_per_epoch,
    )
    loader = build_loader(
        train_set, device, cfg.data.workers, persistent=True, batch_sampler=sampler
    )
    return loader, train_set, sampler


class MetricsLog:
    """``metrics.jsonl`` (one JSON object per line) and TensorBoard scalars, main process only."""

    def __init__(self, out_dir: Path, enabled: bool, fresh: bool = False) -> None:
        """``fresh``: a run from the beginning, whose logs replace those of an earlier attempt."""
        self.enabled = enabled
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.jsonl = (out_dir / "metrics.jsonl").open("w" if fresh else "a")
            self.tensorboard = SummaryWriter(
                str(out_dir / "tensorboard"), purge_step=0 if fresh else None
            )

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        self.jsonl.write(json.dumps({"step": step, **values}) + "\n")
        self.jsonl.flush()
        for name, value in values.items():
            if name != "epoch":
                self.tensorboard.add_scalar(name, value, step)

    def close(self) -> None:
        if self.enabled:
            self.jsonl.close()
            self.tensorboard.close()


def check_new_run(out_dir: Path) -> None:
    """DaafError if ``out_dir`` already holds a run: training into it would overwrite its
    checkpoints and metrics. A run daaf started there (its marker) that stopped before its
    first checkpoint has nothing to continue: it starts again from the beginning."""
    found = [name for name in RUN_FILES if (out_dir / name).exists()]
    if not found:
        return
    if (out_dir / CHECKPOINT_DIR / LAST_CHECKPOINT).is_file():
        raise DaafError(
            f"{out_dir} already holds a run ({', '.join(found)}): continue it with --resume, or "
            "train into another --out"
        )
    if not made_by_daaf(out_dir, RUN_KIND):
        raise DaafError(
            f"{out_dir} holds run files ({', '.join(found)}) without a checkpoint, and no "
            f"{MARKER_NAME} marker says daaf made them: train into another --out"
        )


def train(
    cfg: Config, out_dir: str | Path, resume: bool = False, evaluate: Evaluate | None = None
) -> Path:
    """Train per ``cfg``; returns the path of ``OUT/checkpoints/last.pt``.

    Without ``resume``, an ``out_dir`` that holds a run is refused (:func:`check_new_run`).

    ``evaluate`` (e.g. mAP and Rank-1 from :mod:`daaf.evaluation`) runs on the main process
    every ``train.eval_period`` epochs; its scores go to the metrics log.
    """
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / CHECKPOINT_DIR
    last = ckpt_dir / LAST_CHECKPOINT
    if resume and not last.is_file():
        raise DaafError(f"--resume: no checkpoint at {last}; start without --resume")
    if not resume:
        check_new_run(out_dir)
    state = load_resume_checkpoint(last, cfg) if resume else None
    if not cfg.data.root:  # else the current folder would be read as the dataset
        raise ConfigError(
            f"data.root is not set: the folder holding the {cfg.data.dataset} dataset "
            "(data.root=DIR after the config)"
        )
    device = resolve_device(cfg.train.device)
    timeout = datetime.timedelta(minutes=cfg.train.ddp_timeout_minutes)
    distributed = dist_utils.init_distributed(device, timeout)
    main_process = dist_utils.is_main_process()
    if main_process and cfg.train.eval_period and evaluate is None:
        logger.warning("train.eval_period is set but no evaluation was given: none will run")
    seed_everything(cfg.train.seed)

    dataset = build_dataset(cfg.data.dataset, cfg.data.root)
    check_dataset_images(dataset)  # a truncated image stops here, before any folder is written
    loader, train_set, sampler = build_train_loader(cfg, dataset, device)
    if main_process and train_set.store is not None:
        warn_if_random_labels(train_set.store)
    num_classes = dataset.num_train_pids
    model = build_model(cfg, num_classes).to(device)
    channels_last = device.type == "cuda" and cfg.train.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = build_criterion(cfg, num_classes, model.feat_dim).to(device)
    optimizers = build_optimizers(cfg, model, criterion)
    scheduler = build_scheduler(optimizers.main, cfg.optim, len(sampler))
    dtype = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    start_epoch, step = 0, 0
    if state is not None:
        restore_training(
            last,
            state,
            model,
            num_classes,
            {
                "criterion": criterion.load_state_dict,
                "optimizer": optimizers.main.load_state_dict,
                **(
                    {"center_optimizer": optimizers.center.load_state_dict}
                    if optimizers.center
                    else {}
                ),
                "scheduler": scheduler.load_state_dict,
                "scaler": scaler.load_state_dict,
                "sampler": sampler.load_state_dict,
                "rng": set_rng_state,
            },
        )
        start_epoch, step = state["epoch"], state["step"]
    if main_process:
        claim_dir(out_dir, RUN_KIND)
        save_config(cfg, out_dir / "config.yaml")
    ddp_model = model
    if distributed:
        ddp_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    if cfg.train.compile:  # the step's model only: checkpoints and evaluation use `model`
        ddp_model = torch.compile(ddp_model)
    log = MetricsLog(out_dir, main_process, fresh=state is None)
    warmup = warmup_iterations(cfg, len(sampler))
    health = BranchHealth(model, criterion, cfg.train.health_period, warmup, warn=main_process)

    for epoch in range(start_epoch, cfg.train.epochs):
        sampler.set_epoch(epoch)
        train_set.set_epoch(epoch)
        ddp_model.train()
        bar = tqdm(
            loader,
            desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
            disable=not main_process,
            leave=False,
        )
        tic, images = time.perf_counter(), 0
        for index, batch in enumerate(bar):
            health.arm(step + 1)
            weights = criterion.balance.weights()  # this step's loss weights, if balanced
            values = train_step(
                ddp_model,
                batch,
                optimizers,
                scaler,
                criterion,
                data=cfg.data,
                step=step,
                dtype=dtype,
                channels_last=channels_last,
                health=health,
            )
            scheduler.step()
            step += 1
            if health.armed:  # every rank measures its own batch; the main process reports
                signals = health.finish(step, scaler.get_scale() if scaler.is_enabled() else 1.0)
                criterion.balance.adapt(signals, device)  # loss.branch_balance: grad_ratio
                log.write(step, {"epoch": epoch + 1, **signals})
            images += len(batch["pids"]) * dist_utils.world_size()
            bar.set_postfix(loss=f"{values['total']:.3f}")
            final = epoch + 1 == cfg.train.epochs and index + 1 == len(loader)
            if step % cfg.train.log_period == 0 or final:  # the last losses always on record
                rate = images / (time.perf_counter() - tic)
                lr = optimizers.main.param_groups[0]["lr"]
                log.write(
                    step, {"epoch": epoch + 1, **values, **weights, "lr": lr, "images_per_s": rate}
                )
                tic, images = time.perf_counter(), 0
        done = epoch + 1
        if main_process and (done % cfg.train.checkpoint_period == 0 or done == cfg.train.epochs):
            state = {
                "model": model.state_dict(),
                "criterion": criterion.state_dict(),
                "config": cfg.to_dict(),
                "num_classes": num_classes,
                "optimizer": optimizers.main.state_dict(),
                "center_optimizer": optimizers.center.state_dict() if optimizers.center else None,
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "sampler": {**sampler.state_dict(), "epoch": done},
                "rng": rng_state(),
                "epoch": done,
                "step": step,
            }
            last = save_checkpoint(state, ckpt_dir, done)
        periodic = (
            evaluate is not None and cfg.train.eval_period > 0 and done % cfg.train.eval_period == 0
        )
        if main_process and periodic:  # the other processes wait at the barrier meanwhile
            scores = evaluate_during_training(model, dataset, device, evaluate)
            log.write(step, {"epoch": done, **scores})
            tqdm.write(f"epoch {done}: " + ", ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        dist_utils.barrier()
    log.close()
    dist_utils.cleanup_distributed()
    return last


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


def warn_if_random_labels(store: AnnotationStore) -> None:
    """One warning line when the store was labelled with random weights (smoke-test labels)."""
    shards = random_weight_shards(store)
    if shards:
        logger.warning(
            "WARNING: annotation store %s was labeled with random weights (%d of %d shards): its "
            "masks and keypoints are NOT real annotations, the HAB/PAB learn noise",
            store.store_dir,
            len(shards),
            len(store.headers),
        )
