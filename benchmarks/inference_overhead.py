"""Inference overhead of DAAF: the exported DAAF network vs a freshly built plain base network.

Builds ResNet-``depth`` BoT (the plain base network) and DAAF-BoT (HAB + PAB) with random
weights, exports DAAF-BoT through ``daaf.training.export.export_model`` (which checks parameter
count and embeddings), loads the exported state_dict, and times eval-mode inference of both on
CPU, interleaved run by run so that load from other processes hits both alike (median of
``--runs``); a second fresh base network timed alongside shows the noise of the ratio. Also
times one training step (forward, loss, backward) of BoT vs DAAF-BoT: the branches' cost.

    python benchmarks/inference_overhead.py [--depth 50] [--runs 7] [--train-batch 8] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

from daaf.config import Config
from daaf.models import build_model, inference_network, load_inference_model
from daaf.training.export import export_model
from daaf.training.losses import build_criterion

NUM_CLASSES = 751  # Market-1501 training identities


def make_config(depth: int, height: int, width: int, branches: bool) -> Config:
    cfg = Config()
    cfg.data.height, cfg.data.width = height, width
    cfg.model.depth, cfg.model.pretrained = depth, "none"
    cfg.model.hab = cfg.model.pab = branches
    return cfg


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def interleaved_medians(fns: list, runs: int, *args) -> list[float]:
    """Median seconds of each ``fn(*args)``, calling them in turn ``runs`` times after a warm-up;
    the order reverses every run, so that neither gains from its position."""
    times: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        fn(*args)
    for run in range(runs):
        order = list(enumerate(fns))
        for i, fn in order if run % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            fn(*args)
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def train_step(cfg: Config, batch: dict[str, torch.Tensor]):
    """A closure running forward + loss + backward of ``cfg``'s network on ``batch``."""
    torch.manual_seed(0)
    model = build_model(cfg, NUM_CLASSES).train()
    criterion = build_criterion(cfg, NUM_CLASSES, model.feat_dim)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        sum(criterion(model(batch["images"]), batch).values()).backward()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="default: torch's")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # torch.jit / legacy ONNX exporter deprecation notices would break up the table
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch")
    warnings.filterwarnings("ignore", category=FutureWarning, module="torch")
    h, w = args.height, args.width

    base_cfg = make_config(args.depth, h, w, branches=False)
    daaf_cfg = make_config(args.depth, h, w, branches=True)
    base_model = build_model(base_cfg, NUM_CLASSES)
    base = inference_network(base_model)
    base_again = inference_network(build_model(base_cfg, NUM_CLASSES))  # noise reference
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "daaf.pt"
        daaf = build_model(daaf_cfg, NUM_CLASSES)
        state = {"model": daaf.state_dict(), "config": daaf_cfg.to_dict()}
        torch.save({**state, "num_classes": NUM_CLASSES}, checkpoint)
        start = time.perf_counter()
        report = export_model(checkpoint, Path(tmp) / "export")
        export_s = time.perf_counter() - start
        exported, _ = load_inference_model(Path(tmp) / "export", torch.device("cpu"))

    print(
        f"ResNet-{args.depth} BoT vs DAAF-BoT (HAB + PAB, 6 groups), {h}x{w}, CPU, "
        f"{torch.get_num_threads()} threads; export checks passed in {export_s:.0f} s "
        f"(max |diff| TorchScript {report['max_abs_diff_torchscript']:.1e}, "
        f"ONNX {report['max_abs_diff_onnx']:.1e})"
    )
    print(f"{'measure':<38}{'base':>14}{'DAAF':>14}{'ratio':>8}")

    def row(name: str, base_value: float, daaf_value: float, unit: str = "") -> None:
        b, d = (
            f"{v:,.0f}{unit}" if v >= 1e3 else f"{v:.4g}{unit}" for v in (base_value, daaf_value)
        )
        print(f"{name:<38}{b:>14}{d:>14}{daaf_value / base_value:>8.2f}")

    row("parameters, trained (DAAF: branches)", count(base_model), report["trained_params"])
    row("parameters, inference model", count(base), count(exported))
    row("GFLOPs per image, inference model", report["base_gflops"], report["exported_gflops"])
    for batch_size in args.batches:
        images = torch.randn(batch_size, 3, h, w)
        with torch.inference_mode():
            t_base, t_daaf, t_again = interleaved_medians(
                [base, exported, base_again], args.runs, images
            )
        row(f"inference latency, batch {batch_size}", t_base * 1e3, t_daaf * 1e3, " ms")
        row(
            f"  noise: base vs another base, batch {batch_size}", t_base * 1e3, t_again * 1e3, " ms"
        )

    n = args.train_batch
    batch = {
        "images": torch.randn(n, 3, h, w),
        "pids": torch.arange(n) // 4,
        "masks": torch.rand(n, 1, h, w),
        "heatmaps": torch.rand(n, 17, h, w),
        "valid": torch.ones(n, dtype=torch.bool),
    }
    t_base, t_daaf = interleaved_medians(
        [train_step(base_cfg, batch), train_step(daaf_cfg, batch)], args.train_runs
    )
    row(f"training step (fwd + bwd), batch {n}", t_base * 1e3, t_daaf * 1e3, " ms")


if __name__ == "__main__":
    main()
