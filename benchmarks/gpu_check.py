"""Acceptance run for a CUDA machine: labeling, training and evaluation speed, and correctness.

    python benchmarks/gpu_check.py [--device cuda] [--minutes 8] [--json FILE]
    python benchmarks/gpu_check.py --device cpu --tiny      # the CPU twin (a test runs it)

Offline and without a dataset: it draws a small Market-1501-layout dataset with daaf's
synthetic generator into a temporary folder and runs daaf's own code paths on it (the
labeler, ``build_train_loader`` and ``train_step``, ``export_model``, ``extract_features``,
``evaluate_rank`` and ``re_ranking_features``). Every timed loop runs for its share of
``--minutes`` (at least a few iterations), so the whole run fits the budget on any card.
``--tiny`` runs the same paths at toy sizes (ResNet-18, 96x48 images, batch 4, one step per
preset) on one torch thread; on the CPU, training still runs under bf16 autocast, so a dtype
error shows without a GPU.

Prints a Markdown table and, with ``--json FILE``, writes the same figures as JSON:

- ``environment``: ``torch``, ``cuda``, ``cudnn``, ``device``, ``device_name``,
  ``device_memory_gib``, ``bf16``, ``cpu_cores``.
- ``sizes``: ``tiny``, ``minutes``, ``depth``, ``height``, ``width``, ``batch_size``,
  ``synthetic_images`` (the drawn dataset).
- ``labeling``: ``batch_B`` for each batch size B (1, 16, 64; tiny: 1, 2), each with
  ``images_per_s`` and ``peak_memory_gib``; ``market1501_images`` (36,036) and
  ``market1501_minutes``, the projected time at the best batch size. torchvision backend,
  random weights, 128x64 crops.
- ``training``: one entry per preset (bot, daaf_bot, daaf_bot_official, trinet,
  daaf_trinet): ``samples_per_s`` (after ``warmup_steps``, over ``steps`` timed steps),
  ``peak_memory_gib``, ``data_wait_share`` (share of the step time spent waiting for the
  DataLoader), ``vs_base`` (samples/s over the base network's: bot or trinet), ``workers``,
  ``amp_dtype``, ``losses_finite`` and ``error`` (null unless the preset failed).
- ``evaluation``: ``extraction_images_per_s`` (exported DAAF-BoT base network, the
  synthetic query and gallery through the evaluation DataLoader), ``num_query``,
  ``num_gallery``, ``feat_dim``, ``rank_metrics_s`` (distances + CMC/mAP/mINP on random
  features), ``rerank_s`` (feature re-ranking of the same features), both on the device.
- ``correctness``: ``losses_finite``, ``export_max_diff_torchscript`` and
  ``export_max_diff_onnx`` (exported model on the device vs the eager model, tolerance
  ``export_tolerance`` = 1e-3), ``onnx_provider``, ``rank_metrics_max_diff`` (device vs the
  CPU NumPy path, tolerance 1e-5), ``ddp`` ("ok", "failed: ..." or "skipped: ...").
- ``verdict``: ``passed``, ``problems`` (one line each), ``seconds`` (the whole run).

Peak memory is ``torch.cuda.max_memory_allocated`` (null on the CPU). Figures in GiB,
seconds, images or samples per second.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from train_step import ROWS, build_training, preset_config

from daaf.data.images import read_rgb
from daaf.errors import DaafError
from daaf.labeling.torchvision_backend import (
    DEFAULT_DETECTIONS_PER_IMAGE,
    DEFAULT_RPN_POST_NMS_TOP_N,
)

MARKET_IMAGES = 36_036  # train 12,936 + query 3,368 + gallery 19,732 files
EXPORT_TOLERANCE = 1e-3
RANK_TOLERANCE = 1e-5
WAIT_SHARE_LIMIT = 0.1  # the input pipeline keeps up when the step waits less than this
# The five configs as they ship (train_step's rows of a preset of that name, without overrides):
# name -> its base network
PRESETS = {
    name: base
    for name, (preset, overrides, base) in ROWS.items()
    if preset == name and not overrides
}
# Shares of --minutes given to the timed loops; drawing the data, building models, the export
# and the Market-scale ranking take the rest.
LABEL_SHARE, TRAIN_SHARE, EXTRACT_SHARE = 0.12, 0.45, 0.05


@dataclass(frozen=True)
class Sizes:
    """How big every part of the run is (the full check, or the CPU twin's toy sizes)."""

    tiny: bool
    depth: int
    height: int
    width: int
    num_identities: int  # P of the P x K batch
    num_instances: int  # K
    identities: int  # drawn by the generator (half train)
    images_per_identity: int
    label_batches: tuple[int, ...]
    label_min_size: int
    label_proposals: int  # region proposals and detections kept per image
    label_detections: int
    warmup_steps: int
    min_steps: int
    max_steps: int
    workers: int | None  # None: the preset's data.workers
    extract_batch: int
    num_query: int
    num_gallery: int
    feat_dim: int

    @property
    def batch_size(self) -> int:
        return self.num_identities * self.num_instances


FULL = Sizes(
    tiny=False,
    depth=50,
    height=256,
    width=128,
    num_identities=16,
    num_instances=4,
    identities=40,
    images_per_identity=16,
    label_batches=(1, 16, 64),
    label_min_size=256,
    label_proposals=DEFAULT_RPN_POST_NMS_TOP_N,
    label_detections=DEFAULT_DETECTIONS_PER_IMAGE,
    warmup_steps=5,
    min_steps=5,
    max_steps=400,
    workers=None,
    extract_batch=128,
    num_query=3_368,
    num_gallery=15_913,
    feat_dim=2048,
)
# bf16 convolutions have no fast CPU kernel without AVX512-BF16/AMX: the twin takes one step per
# preset, of 4 images. 96x48, not smaller: every stride-2 3x3 convolution then sees a map at
# least 3 wide (48 / 16), since on AMX CPUs oneDNN 3.12's bf16 convolution (brg_conv_fwd
# avx10_1_512_amx, torch 2.14.1) returns NaN or wrong values for an input 1 or 2 wide at
# stride 2 (measured: every call; at 32x16 layer3 sees 4x2). The twin takes 12-19 s, AMX or not.
TINY = Sizes(
    tiny=True,
    depth=18,
    height=96,
    width=48,
    num_identities=2,
    num_instances=2,
    identities=8,
    images_per_identity=8,
    label_batches=(1, 2),
    label_min_size=64,
    label_proposals=8,
    label_detections=2,
    warmup_steps=0,
    min_steps=1,
    max_steps=1,
    workers=1,
    extract_batch=16,
    num_query=40,
    num_gallery=160,
    feat_dim=32,
)


def log(message: str, _start: list[float] = []) -> None:  # noqa: B006 - the run's start time
    """A progress line on stderr with the seconds since the first line."""
    _start[:] = _start or [time.perf_counter()]
    print(f"[{time.perf_counter() - _start[0]:6.1f} s] {message}", file=sys.stderr, flush=True)


class Device:
    """The device under test: synchronisation and peak memory (CUDA only)."""

    def __init__(self, name: str) -> None:
        self.torch = torch.device(name)
        self.cuda = self.torch.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.torch)

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.torch)

    def peak_gib(self) -> float | None:
        return torch.cuda.max_memory_allocated(self.torch) / 2**30 if self.cuda else None


def timed_loop(
    run: Callable[[], int],
    device: Device,
    budget_s: float,
    warmup: int,
    min_runs: int,
    max_runs: int | None = None,
) -> tuple[int, float]:
    """(items, seconds) of ``run`` (which returns how many items it did) after ``warmup``
    calls, repeated until ``budget_s`` has passed (at least ``min_runs``, at most ``max_runs``)."""
    for _ in range(warmup):
        run()
    device.sync()
    items, runs, start = 0, 0, time.perf_counter()
    while runs < min_runs or (time.perf_counter() - start < budget_s and runs != max_runs):
        items += run()
        runs += 1
        device.sync()
    return items, time.perf_counter() - start


def environment(device: Device) -> dict:
    env = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "device": str(device.torch),
        "device_name": platform.processor() or platform.machine(),
        "device_memory_gib": None,
        "bf16": True,  # CPU autocast runs bf16
        "cpu_cores": os.cpu_count(),
    }
    if device.cuda:
        props = torch.cuda.get_device_properties(device.torch)
        env.update(
            device_name=props.name,
            device_memory_gib=props.total_memory / 2**30,
            bf16=torch.cuda.is_bf16_supported(),
        )
    return env


def draw_dataset(root: Path, sizes: Sizes):
    """The synthetic Market-1501-layout dataset and its exact annotation store under ``root``."""
    from daaf.data.synthetic.generate import SynthSpec, generate_dataset

    workers = 1 if sizes.tiny else min(4, os.cpu_count() or 1)  # a pool costs the twin seconds
    spec = SynthSpec(sizes.identities, 6, sizes.images_per_identity, seed=0)
    return generate_dataset(root, spec, workers=workers, progress=False)


def check_labeling(dataset, sizes: Sizes, device: Device, budget_s: float) -> dict:
    """torchvision labeler, random weights, the synthetic 128x64 crops, at each batch size."""
    from daaf.labeling.backends import build_labeler
    from daaf.labeling.driver import label_each

    labeler = build_labeler(
        "torchvision",
        weights="random",
        min_size=sizes.label_min_size,
        rpn_post_nms_top_n_test=sizes.label_proposals,
        detections_per_image=sizes.label_detections,
    )
    labeler.to(device.torch)
    crops = [
        read_rgb(dataset.image_dir / s.path) for s in dataset.train[: max(sizes.label_batches)]
    ]
    out = {}
    for batch in sizes.label_batches:
        images = (crops * batch)[:batch]
        failed = []

        def run(images=images, failed=failed) -> int:
            failed.extend(r for r in label_each(labeler, images) if isinstance(r, str))
            return len(images)

        device.reset_peak()
        warmup = min(1, sizes.warmup_steps)
        count, seconds = timed_loop(run, device, budget_s / len(sizes.label_batches), warmup, 1)
        if failed:
            raise DaafError(f"labeling at batch {batch}: {failed[0]}")
        out[f"batch_{batch}"] = {
            "images_per_s": count / seconds,
            "peak_memory_gib": device.peak_gib(),
        }
    best = max(row["images_per_s"] for row in out.values())
    return {
        **out,
        "market1501_images": MARKET_IMAGES,
        "market1501_minutes": MARKET_IMAGES / best / 60,
    }


def train_config(preset: str, root: Path, sizes: Sizes, device: Device):
    overrides = [
        "data.dataset=synthetic",
        f"data.root={root}",
        f"data.annotations={root / 'annotations'}",
        "data.keypoint_score_threshold=auto",
        f"train.device={device.torch}",
        f"train.iters_per_epoch={sizes.warmup_steps + sizes.max_steps}",
        f"data.num_identities={sizes.num_identities}",
        f"data.num_instances={sizes.num_instances}",
    ]
    if sizes.tiny:
        overrides += [
            f"data.height={sizes.height}",
            f"data.width={sizes.width}",
            "data.pad=2",
            "data.pre_crop_size=null",
            "model.decoder_channels=16",
        ]
    if sizes.workers is not None:
        overrides.append(f"data.workers={sizes.workers}")
    return preset_config(preset, sizes.depth, *overrides)


def check_training(preset: str, root: Path, sizes: Sizes, device: Device, budget_s: float):
    """One preset through the real DataLoader and ``train_step``: (figures, model, config)."""
    from daaf.data.datasets import build_dataset
    from daaf.training.engine import Precision, train_step
    from daaf.training.trainer import amp_dtype, build_train_loader

    cfg = train_config(preset, root, sizes, device)
    dataset = build_dataset(cfg.data.dataset, cfg.data.root)
    loader, train_set, sampler = build_train_loader(cfg, dataset, device.torch)
    device.reset_peak()
    model, criterion, optimizers, scaler = build_training(cfg, device.torch, dataset.num_train_pids)
    # daaf train's settings on CUDA; on the CPU bf16 and channels-last anyway, so that the
    # twin runs the paths a GPU runs
    dtype = amp_dtype(cfg, device.torch) if device.cuda else torch.bfloat16
    channels_last = cfg.train.channels_last or not device.cuda
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    batches = iter(loader)
    waits, steps = [], []
    start, step = time.perf_counter(), 0
    try:
        while step < sizes.warmup_steps + sizes.min_steps or (
            time.perf_counter() - start < budget_s and step < sizes.warmup_steps + sizes.max_steps
        ):
            tic = time.perf_counter()
            batch = next(batches)
            toc = time.perf_counter()
            # train_step ends with .item() of the losses: the device has finished the step
            train_step(
                model,
                batch,
                optimizers,
                criterion,
                data=cfg.data,
                step=step,
                precision=Precision(dtype, scaler, channels_last),
            )
            if step >= sizes.warmup_steps:
                waits.append(toc - tic)
                steps.append(time.perf_counter() - tic)
            step += 1
    finally:
        del batches, loader
        gc.collect()
    figures = {
        "samples_per_s": sizes.batch_size * len(steps) / sum(steps),
        "peak_memory_gib": device.peak_gib(),
        "data_wait_share": sum(waits) / sum(steps),
        "steps": len(steps),
        "warmup_steps": sizes.warmup_steps,
        "workers": cfg.data.workers,
        "amp_dtype": str(dtype).removeprefix("torch."),
    }
    return figures, model, cfg


def check_export(model, cfg, num_classes: int, out_dir: Path, device: Device) -> tuple[dict, Path]:
    """``export_model`` of a trained model, then its TorchScript and ONNX forms against the
    eager exported network on the device: (figures, export folder)."""
    import onnxruntime

    from daaf.models import load_inference_model
    from daaf.training.export import export_model

    ckpt = out_dir / "checkpoint.pt"
    model = model.to(memory_format=torch.contiguous_format)
    state = {"model": model.state_dict(), "config": cfg.to_dict(), "num_classes": num_classes}
    torch.save({**state, "model": {k: v.cpu() for k, v in state["model"].items()}}, ckpt)
    export_dir = out_dir / "export"
    export_model(ckpt, export_dir)
    eager, _ = load_inference_model(export_dir, device.torch)
    scripted, _ = load_inference_model(
        export_dir / "model.ts", device.torch, trust_torchscript=True
    )
    wanted = ["CUDAExecutionProvider"] if device.cuda else []
    providers = [p for p in wanted if p in onnxruntime.get_available_providers()]
    providers.append("CPUExecutionProvider")
    session = onnxruntime.InferenceSession(str(export_dir / "model.onnx"), providers=providers)
    images = torch.randn(
        4, 3, cfg.data.height, cfg.data.width, generator=torch.Generator().manual_seed(0)
    )
    with torch.no_grad():
        reference = eager(images.to(device.torch)).float().cpu()
        ts = scripted(images.to(device.torch)).float().cpu()
    onnx = torch.from_numpy(session.run(None, {"images": images.numpy()})[0])
    figures = {
        "export_max_diff_torchscript": float((ts - reference).abs().max()),
        "export_max_diff_onnx": float((onnx - reference).abs().max()),
        "export_tolerance": EXPORT_TOLERANCE,
        "onnx_provider": session.get_providers()[0],
    }
    return figures, export_dir


def check_extraction(
    export_dir: Path, dataset, sizes: Sizes, workers: int, device: Device, budget_s: float
) -> float:
    """Images/s of the exported network over the synthetic query and gallery, as evaluated."""
    from daaf.evaluation.features import FeatureOptions, extract_features
    from daaf.models import load_inference_model

    model, meta = load_inference_model(export_dir, device.torch)
    samples = dataset.query + dataset.gallery

    def run() -> int:
        extract_features(
            model,
            samples,
            dataset.image_dir,
            meta,
            device.torch,
            FeatureOptions(batch_size=sizes.extract_batch, workers=workers),
        )
        return len(samples)

    count, seconds = timed_loop(run, device, budget_s, 1, 1)
    return count / seconds


def random_problem(sizes: Sizes):
    """Clustered random features (about 8 images per identity) with random cameras."""
    rng = np.random.default_rng(0)
    n = sizes.num_query + sizes.num_gallery
    ids = rng.integers(0, max(2, n // 8), n)
    centres = rng.normal(size=(ids.max() + 1, sizes.feat_dim)).astype(np.float32)
    feats = centres[ids] + rng.normal(size=(n, sizes.feat_dim)).astype(np.float32)
    cams = rng.integers(1, 7, n)
    q, g = slice(0, sizes.num_query), slice(sizes.num_query, n)
    return feats[q], feats[g], ids[q], ids[g], cams[q], cams[g]


def check_ranking(sizes: Sizes, device: Device) -> tuple[dict, float]:
    """Seconds of distances + metrics and of feature re-ranking on the device, and how far the
    device's metrics are from the CPU NumPy path's."""
    from daaf.evaluation.distance import compute_distance
    from daaf.evaluation.metrics import evaluate_rank
    from daaf.evaluation.rerank import re_ranking_features

    q, g, q_pids, g_pids, q_cams, g_cams = random_problem(sizes)
    device.sync()
    tic = time.perf_counter()
    distmat = compute_distance(q, g, device=device.torch)
    result = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, device=device.torch)
    rank_s = time.perf_counter() - tic
    tic = time.perf_counter()
    re_ranking_features(q, g, progress=False, device=device.torch)
    rerank_s = time.perf_counter() - tic
    cpu = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams)
    diff = max(
        float(np.abs(cpu.cmc - result.cmc).max()),
        abs(cpu.mAP - result.mAP),
        abs(cpu.mINP - result.mINP),
    )
    figures = {
        "num_query": sizes.num_query,
        "num_gallery": sizes.num_gallery,
        "feat_dim": sizes.feat_dim,
        "rank_metrics_s": rank_s,
        "rerank_s": rerank_s,
    }
    return figures, diff


def check_ddp(root: Path, out_dir: Path, device: Device) -> str:
    """Two ranks of ``daaf train`` under torchrun (NCCL) for two steps, where there are 2 GPUs."""
    count = torch.cuda.device_count() if device.cuda else 0
    if count < 2:
        return f"skipped: {count} CUDA device(s), a two-rank DDP step needs 2"
    config = Path(__file__).resolve().parents[1] / "configs" / "daaf_bot.yaml"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "-m",
        "daaf.cli",
        "train",
        "--config",
        str(config),
        f"data.root={root}",
        "data.dataset=synthetic",
        f"data.annotations={root / 'annotations'}",
        "model.pretrained=none",
        "data.num_identities=8",
        "train.epochs=1",
        "train.iters_per_epoch=2",
        "--out",
        str(out_dir / "ddp"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        return f"failed: {lines[-1] if lines else f'exit {done.returncode}'}"
    return "ok"


def run_check(device: Device, sizes: Sizes, minutes: float, tmp: Path) -> dict:
    budget = 60 * minutes
    report = {
        "environment": environment(device),
        "sizes": {},
        "labeling": {},
        "training": {},
        "evaluation": {},
        "correctness": {},
    }
    problems = []
    log(f"drawing the synthetic dataset ({sizes.identities} identities)")
    dataset = draw_dataset(tmp / "data", sizes)
    report["sizes"] = {
        "tiny": sizes.tiny,
        "minutes": minutes,
        "depth": sizes.depth,
        "height": sizes.height,
        "width": sizes.width,
        "batch_size": sizes.batch_size,
        "synthetic_images": sum(len(dataset.split(s)) for s in ("train", "query", "gallery")),
    }
    log("labeling")
    report["labeling"] = check_labeling(dataset, sizes, device, LABEL_SHARE * budget)

    trained = None
    for preset, base in PRESETS.items():
        log(f"training {preset}")
        try:
            figures, model, cfg = check_training(
                preset, tmp / "data", sizes, device, TRAIN_SHARE * budget / len(PRESETS)
            )
            figures.update(losses_finite=True, error=None)
        except DaafError as exc:  # a non-finite loss or a data problem: report, go on
            # check_finite's messages name "loss term"; anything else is not about the losses
            figures = {"losses_finite": "loss term" not in str(exc), "error": str(exc)}
            problems.append(f"training {preset}: {exc}")
        else:
            if preset == "daaf_bot":
                trained = model, cfg, dataset.num_train_pids
            else:
                del model
        rate = figures.get("samples_per_s")
        base_rate = rate if base == preset else report["training"][base].get("samples_per_s")
        figures["vs_base"] = rate / base_rate if rate and base_rate else None
        report["training"][preset] = figures
        gc.collect()
    finite = all(row["losses_finite"] for row in report["training"].values())

    correctness = {"losses_finite": finite}
    if trained is None:
        problems.append("export: daaf_bot did not train, nothing to export")
    else:
        log("export")
        export, export_dir = check_export(*trained, tmp, device)
        correctness.update(export)
        for key in ("export_max_diff_torchscript", "export_max_diff_onnx"):
            if not export[key] <= EXPORT_TOLERANCE:
                problems.append(f"{key} = {export[key]:.2e} > {EXPORT_TOLERANCE}")
        workers = trained[1].data.workers
        log("feature extraction")
        report["evaluation"]["extraction_images_per_s"] = check_extraction(
            export_dir, dataset, sizes, workers, device, EXTRACT_SHARE * budget
        )
    log(f"ranking and re-ranking {sizes.num_query} x {sizes.num_gallery}")
    ranking, diff = check_ranking(sizes, device)
    report["evaluation"].update(ranking)
    correctness["rank_metrics_max_diff"] = diff
    if not diff <= RANK_TOLERANCE:
        problems.append(f"rank metrics on {device.torch} differ from the CPU path by {diff:.2e}")
    log("DDP")
    correctness["ddp"] = check_ddp(tmp / "data", tmp, device)
    if correctness["ddp"].startswith("failed"):
        problems.append(f"ddp: {correctness['ddp']}")
    if not finite:
        problems.append("a loss was not finite under AMP")
    report["correctness"] = correctness
    report["verdict"] = {"passed": not problems, "problems": problems}
    return report


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def markdown(report: dict) -> str:
    """The verdict table: one row per figure, grouped by section."""
    rows = ["| section | figure | value |", "|---|---|---|"]
    env = report["environment"]
    rows.append(
        f"| environment | device | {env['device_name']} ({env['device']}, "
        f"{_cell(env['device_memory_gib'])} GiB), {env['cpu_cores']} CPU cores |"
    )
    rows.append(
        f"| environment | torch / CUDA / cuDNN / bf16 | {env['torch']} / {env['cuda']} / "
        f"{env['cudnn']} / {env['bf16']} |"
    )
    for name, row in report["labeling"].items():
        if name.startswith("batch_"):
            rows.append(
                f"| labeling | {name.replace('_', ' ')}: images/s, peak GiB | "
                f"{_cell(row['images_per_s'])}, {_cell(row['peak_memory_gib'])} |"
            )
    rows.append(
        f"| labeling | Market-1501 ({MARKET_IMAGES:,} images), minutes | "
        f"{_cell(report['labeling']['market1501_minutes'])} |"
    )
    for preset, row in report["training"].items():
        if row.get("error"):
            rows.append(f"| training | {preset} | FAILED: {row['error']} |")
            continue
        rows.append(
            f"| training | {preset}: samples/s, vs base, peak GiB, data wait | "
            f"{_cell(row['samples_per_s'])}, {_cell(row['vs_base'])}x, "
            f"{_cell(row['peak_memory_gib'])}, {100 * row['data_wait_share']:.0f}% |"
        )
    ev = report["evaluation"]
    rows.append(
        f"| evaluation | feature extraction, images/s | {_cell(ev.get('extraction_images_per_s'))} |"
    )
    rows.append(
        f"| evaluation | {ev['num_query']:,} x {ev['num_gallery']:,}: metrics s, "
        f"re-ranking s | {_cell(ev['rank_metrics_s'])}, {_cell(ev['rerank_s'])} |"
    )
    for key, value in report["correctness"].items():
        rows.append(f"| correctness | {key} | {_cell(value)} |")
    verdict = report["verdict"]
    result = "PASSED" if verdict["passed"] else "FAILED: " + "; ".join(verdict["problems"])
    rows.append(f"| verdict | {verdict['seconds']:.0f} s | {result} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--minutes",
        type=float,
        default=None,
        help="time budget of the timed loops (default 8; --tiny: 0, their minimum)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--tiny", action="store_true", help="toy sizes: the CPU twin")
    args = parser.parse_args()
    from daaf.utils.device import resolve_device

    try:
        device = Device(str(resolve_device(args.device)))
    except DaafError as exc:
        print(f"gpu_check: {exc}", file=sys.stderr)
        return 2
    sizes = TINY if args.tiny else FULL
    if args.tiny:  # toy tensors gain nothing from threads, which spin on a shared CPU
        torch.set_num_threads(1)
    # The imports' objects (torch, torchvision, dynamo) never become garbage: frozen, they leave
    # the gc.collect between presets milliseconds instead of half a second.
    gc.freeze()
    minutes = args.minutes if args.minutes is not None else 0.0 if args.tiny else 8.0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="daaf-gpu-check-") as tmp:
        report = run_check(device, sizes, minutes, Path(tmp))
    report["verdict"]["seconds"] = time.perf_counter() - start
    print(markdown(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0 if report["verdict"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
