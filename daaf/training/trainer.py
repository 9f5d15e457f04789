"""``train(cfg, out_dir)``: what ``daaf train`` builds and runs to train a base or DAAF network.

``train`` checks the run folder (a new run, or ``--resume`` from ``OUT/checkpoints/last.pt``),
joins the process group under ``torchrun`` (NCCL on GPUs, gloo on CPUs), builds data, model,
criterion, optimizers and schedule (:func:`build_trainer`) and the hooks that checkpoint,
evaluate and log (:func:`build_hooks`), restores the checkpoint and runs the
:class:`~daaf.training.engine.Trainer`. CUDA brings AMP (bf16 where supported) and
channels-last (:func:`build_precision`).
"""

from __future__ import annotations

import datetime
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from daaf.config import Config, save_config
from daaf.data.annotations import AnnotationStore, keypoint_score_threshold
from daaf.data.annotations.report import random_weight_shards
from daaf.data.datasets import ReIDDataset, build_dataset
from daaf.data.images import check_dataset_images
from daaf.data.loader import Loader, build_loader
from daaf.data.sampler import PKBatchSampler
from daaf.data.train_set import TrainSet, open_store_for
from daaf.errors import ConfigError, DaafError
from daaf.models import DAAF, build_model
from daaf.training.branch_health import BranchHealth, warmup_iterations
from daaf.training.checkpoint import load_resume_checkpoint
from daaf.training.engine import HookBase, Optimizers, Precision, TrainData, Trainer
from daaf.training.hooks import (
    LAST_CHECKPOINT,
    BranchHealthHook,
    Checkpointer,
    Evaluate,
    MetricsWriter,
    PeriodicEvaluation,
)
from daaf.training.losses import DAAFCriterion, build_criterion
from daaf.training.schedule import build_optimizer, build_scheduler
from daaf.utils import distributed as dist_utils
from daaf.utils.device import resolve_device
from daaf.utils.files import MARKER_NAME, claim_dir, made_by_daaf

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
RUN_FILES = (CHECKPOINT_DIR, "metrics.jsonl", "config.yaml")  # a folder with any holds a run
RUN_KIND = "training run"  # the kind of daaf's marker in the run folders it makes


def needs_annotations(cfg: Config) -> bool:
    """HAB needs masks and keypoint-PAB needs keypoints; part-image PAB needs only the image."""
    return cfg.model.hab or (cfg.model.pab and cfg.model.pab_target == "keypoints")


def amp_dtype(cfg: Config, device: torch.device) -> torch.dtype | None:
    if not (cfg.train.amp and device.type == "cuda"):
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def build_precision(cfg: Config, device: torch.device) -> Precision:
    """CUDA's AMP (bf16 where supported, else fp16 with a loss scaler) and channels-last
    images, as ``train.amp`` and ``train.channels_last`` ask; float32 elsewhere."""
    dtype = amp_dtype(cfg, device)
    return Precision(
        dtype=dtype,
        scaler=torch.amp.GradScaler(device.type, enabled=dtype == torch.float16),
        channels_last=device.type == "cuda" and cfg.train.channels_last,
    )


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


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


def build_trainer(cfg: Config, dataset: ReIDDataset, device: torch.device) -> Trainer:
    """The network of ``cfg`` on ``device``, its criterion, optimizers and schedule, the P x K
    loader of ``dataset``'s training split and the branch-health measurement, as a trainer."""
    main_process = dist_utils.is_main_process()
    loader, train_set, sampler = build_train_loader(cfg, dataset, device)
    if main_process and train_set.store is not None:
        warn_if_random_labels(train_set.store)
    num_classes = dataset.num_train_pids
    model = build_model(cfg, num_classes).to(device)
    precision = build_precision(cfg, device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
    criterion = build_criterion(cfg, num_classes, model.feat_dim).to(device)
    optimizers = build_optimizers(cfg, model, criterion)
    scheduler = build_scheduler(optimizers.main, cfg.optim, len(sampler))
    warmup = warmup_iterations(cfg, len(sampler))
    health = BranchHealth(model, criterion, cfg.train.health_period, warmup, warn=main_process)
    data = TrainData(loader, sampler, train_set, num_classes)
    return Trainer(cfg, model, criterion, optimizers, scheduler, precision, data, health)


def build_hooks(
    cfg: Config,
    out_dir: Path,
    dataset: ReIDDataset,
    device: torch.device,
    evaluate: Evaluate | None,
    fresh: bool,
) -> list[HookBase]:
    """Branch health and balancing; on the main process checkpoints and ``evaluate`` every
    ``train.eval_period`` epochs; the metrics log (``fresh``: replacing an earlier attempt's)."""
    main_process = dist_utils.is_main_process()
    hooks: list[HookBase] = [BranchHealthHook()]
    if main_process:
        hooks.append(Checkpointer(out_dir / CHECKPOINT_DIR, cfg.train.checkpoint_period))
    if main_process and evaluate is not None and cfg.train.eval_period > 0:
        hooks.append(PeriodicEvaluation(evaluate, dataset, device, cfg.train.eval_period))
    hooks.append(MetricsWriter(out_dir, cfg.train.log_period, main_process, fresh))
    return hooks


def resume_state(cfg: Config, out_dir: Path, resume: bool) -> dict[str, Any] | None:
    """The checkpoint ``resume`` continues (:func:`load_resume_checkpoint`); without
    ``resume``, None once :func:`check_new_run` has found no run in ``out_dir``."""
    last = out_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    if resume and not last.is_file():
        raise DaafError(f"--resume: no checkpoint at {last}; start without --resume")
    if not resume:
        check_new_run(out_dir)
        return None
    return load_resume_checkpoint(last, cfg)


def train(
    cfg: Config, out_dir: str | Path, resume: bool = False, evaluate: Evaluate | None = None
) -> Path:
    """Train per ``cfg``; returns the path of ``OUT/checkpoints/last.pt``.

    Without ``resume``, an ``out_dir`` that holds a run is refused (:func:`check_new_run`).

    ``evaluate`` (e.g. mAP and Rank-1 from :mod:`daaf.evaluation`) runs on the main process
    every ``train.eval_period`` epochs; its scores go to the metrics log.
    """
    out_dir = Path(out_dir)
    last = out_dir / CHECKPOINT_DIR / LAST_CHECKPOINT
    state = resume_state(cfg, out_dir, resume)
    if not cfg.data.root:  # else the current folder would be read as the dataset
        raise ConfigError(
            f"data.root is not set: the folder holding the {cfg.data.dataset} dataset "
            "(data.root=DIR after the config)"
        )
    device = resolve_device(cfg.train.device)
    dist_utils.init_distributed(device, datetime.timedelta(minutes=cfg.train.ddp_timeout_minutes))
    main_process = dist_utils.is_main_process()
    if main_process and cfg.train.eval_period and evaluate is None:
        logger.warning("train.eval_period is set but no evaluation was given: none will run")
    seed_everything(cfg.train.seed)

    dataset = build_dataset(cfg.data.dataset, cfg.data.root)
    check_dataset_images(dataset)  # a truncated image stops here, before any folder is written
    trainer = build_trainer(cfg, dataset, device)
    trainer.register_hooks(build_hooks(cfg, out_dir, dataset, device, evaluate, state is None))
    if state is not None:
        trainer.load_state_dict(state, last)
    if main_process:
        claim_dir(out_dir, RUN_KIND)
        save_config(cfg, out_dir / "config.yaml")
    trainer.train()
    dist_utils.cleanup_distributed()
    return last


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
