"""Training step time of each preset on CPU: base network vs DAAF (the branches' training cost).

Builds every preset as configured (ResNet-50, pretrained none) at 256x128 and times full
``daaf.training.engine.train_step`` calls (device-side batch preparation, forward, loss,
backward, optimizer steps) on a random P x K worker batch with random masks and keypoints. Presets are timed in turn, step by step,
so load from other processes hits all alike; the figure is the median of ``--steps``. The
ratio column divides each preset by its base network (bot or trinet) from the same run. Row
``daaf_bot/stride4`` is daaf_bot with ``model.decoder_stride=4`` (decoders at 1/4 of the
input); ``paper_daaf_bot`` is the paper's branch objective (configs/paper/paper_daaf_bot.yaml:
decoders at the input size). ``--rows`` times only those rows (and their bases); ``--set KEY=VALUE`` changes every
row, e.g. the demo's ResNet-18 at 128x64 with 16 decoder channels: ``--depth 18 --set
data.height=128 --set data.width=64 --set model.decoder_channels=16``.

    python benchmarks/train_step.py [--steps 3] [--p 4] [--k 4] [--threads N] [--depth 50]
                                    [--rows bot,daaf_bot,...] [--set KEY=VALUE ...]
    python benchmarks/train_step.py --compile [--depth 18 --height 128 --width 64]

``--compile`` times bot and daaf_bot with their model ``torch.compile``'d (what
``train.compile=true`` does) against the plain step, in turn, and reports the compile time
(the first compiled step's extra time) apart.

``--health PRESET`` times instead the branch-health signals (``daaf.training.branch_health``)
on PRESET: the plain step (no hooks), the step with the hooks installed but not measuring,
and a measured step, interleaved in one run; the overhead of training is the hooks' constant
cost plus a measured step's extra cost divided by ``train.health_period``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from daaf.config import Config, load_config
from daaf.models import build_model
from daaf.training.branch_health import BranchHealth
from daaf.training.engine import Optimizers, Precision, train_step
from daaf.training.losses import build_criterion
from daaf.training.schedule import build_optimizer
from daaf.training.trainer import amp_dtype

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# row: (preset, its overrides, the base network's row it is divided by)
ROWS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "bot": ("bot", (), "bot"),
    "daaf_bot": ("daaf_bot", (), "bot"),
    "daaf_bot/stride4": ("daaf_bot", ("model.decoder_stride=4",), "bot"),
    "daaf_bot_official": ("daaf_bot_official", (), "bot"),
    "paper_daaf_bot": ("paper/paper_daaf_bot", (), "bot"),
    "trinet": ("trinet", (), "trinet"),
    "daaf_trinet": ("daaf_trinet", (), "trinet"),
}
NUM_CLASSES = 751  # Market-1501 training identities

# synthetic batches have no annotation store to resolve "auto" from
SYNTHETIC_THRESHOLD = "data.keypoint_score_threshold=0.3"


def selected_rows(names: str) -> dict[str, tuple[str, tuple[str, ...], str]]:
    """The :data:`ROWS` named in comma-separated ``names`` with their bases, in table order;
    all for ""."""
    wanted = set(names.split(",")) if names else set(ROWS)
    unknown = wanted - ROWS.keys()
    if unknown:
        raise SystemExit(f"unknown rows {sorted(unknown)}; the rows: {', '.join(ROWS)}")
    wanted |= {ROWS[name][2] for name in wanted}
    return {name: row for name, row in ROWS.items() if name in wanted}


def add_row_options(parser: argparse.ArgumentParser) -> None:
    """``--rows`` (:func:`selected_rows`) and ``--set KEY=VALUE`` (repeatable, every row)."""
    parser.add_argument("--rows", default="", help="comma-separated rows (default: all)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every row (repeatable)",
    )


def make_batch(p: int, k: int, height: int, width: int) -> dict[str, torch.Tensor]:
    """A worker batch as ``TrainSet`` hands it over: uint8 images and masks, keypoints."""
    generator = torch.Generator().manual_seed(0)
    n = p * k
    keypoints = torch.rand(n, 17, 3, generator=generator) * torch.tensor([width, height, 1.0])
    return {
        "images": torch.randint(0, 256, (n, height, width, 3), generator=generator).byte(),
        "pids": torch.arange(p).repeat_interleave(k),
        "masks": torch.randint(0, 256, (n, 1, height, width), generator=generator).byte(),
        "keypoints": keypoints,
        "valid": torch.ones(n, dtype=torch.bool),
        "erasing": torch.zeros(n, 4, dtype=torch.int32),
    }


def build_training(cfg: Config, device: torch.device, num_classes: int = NUM_CLASSES):
    """Model, criterion, optimizers and grad scaler for ``cfg``, as ``daaf train`` builds them
    (fp16 AMP gets an enabled scaler; bf16 and full precision need none)."""
    torch.manual_seed(0)
    model = build_model(cfg, num_classes).to(device).train()
    criterion = build_criterion(cfg, num_classes, model.feat_dim).to(device)
    centers = criterion.center_parameters()
    optimizers = Optimizers(
        build_optimizer(model.parameters(), cfg.optim),
        torch.optim.SGD(centers, lr=cfg.loss.center_lr) if centers else None,
        1.0 / cfg.loss.center_weight if cfg.loss.center_weight > 0 else 1.0,
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype(cfg, device) == torch.float16)
    return model, criterion, optimizers, scaler


def preset_config(preset: str, depth: int, *overrides: str) -> Config:
    """``configs/PRESET.yaml`` with ResNet-``depth``, no pretrained weights, and ``overrides``."""
    return load_config(
        CONFIGS / f"{preset}.yaml",
        [f"model.depth={depth}", "model.pretrained=none", SYNTHETIC_THRESHOLD, *overrides],
    )


def make_stepper(
    preset: str,
    depth: int,
    p: int,
    k: int,
    *overrides: str,
    health: str = "",
    compile: bool = False,
):
    """A closure doing one training step of ``preset``, and its parameter count. ``health``:
    "" none, "hooks" branch-health hooks installed but not measuring, "measure" every step
    measured; ``compile``: the model torch.compile'd, as ``train.compile=true`` does."""
    cfg = preset_config(preset, depth, *overrides)
    model, criterion, optimizers, scaler = build_training(cfg, torch.device("cpu"))
    batch = make_batch(p, k, cfg.data.height, cfg.data.width)
    params = sum(x.numel() for x in model.parameters())
    signals = BranchHealth(model, criterion, period=1, warmup=0, warn=False) if health else None
    step_model = torch.compile(model) if compile else model

    def step() -> dict[str, float]:
        measured = health == "measure" and signals.arm(1)
        values = train_step(
            step_model,
            batch,
            optimizers,
            criterion,
            data=cfg.data,
            precision=Precision(scaler=scaler),
            health=signals,
        )
        if measured:
            signals.finish(1)
        return values

    return step, params, cfg


def compare_compiled() -> None:
    """Step time of the compiled model over the plain one for bot and daaf_bot, in the same
    run; the first compiled step's extra time is the compile time, reported apart."""
    size = [f"data.height={args.height}", f"data.width={args.width}"]
    print(
        f"train step, CPU, {torch.get_num_threads()} threads, ResNet-{args.depth}, "
        f"{args.height}x{args.width}, P x K = {args.p} x {args.k}, median of {args.steps} steps"
    )
    print(f"{'preset':<12}{'plain s':>9}{'compiled s':>12}{'ratio':>8}{'compile s':>11}")
    for name in ("bot", "daaf_bot"):
        plain = make_stepper(name, args.depth, args.p, args.k, *size)[0]
        compiled = make_stepper(name, args.depth, args.p, args.k, *size, compile=True)[0]
        plain()  # warm-up
        start = time.perf_counter()
        compiled()  # compiles
        first = time.perf_counter() - start
        times: dict[str, list[float]] = {"plain": [], "compiled": []}
        for _ in range(args.steps):
            for kind, stepper in (("plain", plain), ("compiled", compiled)):
                start = time.perf_counter()
                stepper()
                times[kind].append(time.perf_counter() - start)
        t_plain, t_compiled = (statistics.median(times[k]) for k in ("plain", "compiled"))
        print(
            f"{name:<12}{t_plain:>9.3f}{t_compiled:>12.3f}{t_compiled / t_plain:>7.2f}x"
            f"{first - t_compiled:>11.1f}"
        )


def health_main(preset: str) -> None:
    modes = {"plain": "", "hooks": "hooks", "measured": "measure"}
    steppers = {
        m: make_stepper(preset, args.depth, args.p, args.k, health=h) for m, h in modes.items()
    }
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    for stepper, _, _ in steppers.values():
        stepper()  # warm-up
    for _ in range(args.steps):
        for mode, (stepper, _, _) in steppers.items():
            start = time.perf_counter()
            stepper()
            times[mode].append(time.perf_counter() - start)
    median = {mode: statistics.median(t) for mode, t in times.items()}
    cfg = steppers["plain"][2]
    period = cfg.train.health_period
    overhead = (median["hooks"] - median["plain"]) + (median["measured"] - median["hooks"]) / period
    print(
        f"branch health, {preset}, CPU, {torch.get_num_threads()} threads, ResNet-{args.depth}, "
        f"{cfg.data.height}x{cfg.data.width}, P x K = {args.p} x {args.k}, "
        f"median of {args.steps} steps each, interleaved"
    )
    for mode in modes:
        print(
            f"{mode:<10}{median[mode]:>8.3f} s / step   ({min(times[mode]):.3f}-{max(times[mode]):.3f})"
        )
    print(
        f"overhead at train.health_period={period}: {overhead:+.4f} s / step = "
        f"{100 * overhead / median['plain']:+.2f}% of the plain step"
    )


def main() -> None:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.compile:
        compare_compiled()
        return
    if args.health:
        health_main(args.health)
        return
    rows = selected_rows(args.rows)
    steppers = {
        name: make_stepper(preset, args.depth, args.p, args.k, *overrides, *args.set)
        for name, (preset, overrides, _) in rows.items()
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    for stepper, _, _ in steppers.values():
        stepper()  # warm-up
    for _ in range(args.steps):
        for name, (stepper, _, _) in steppers.items():
            start = time.perf_counter()
            stepper()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    cfg = next(iter(steppers.values()))[2]
    print(
        f"train step, CPU, {torch.get_num_threads()} threads, ResNet-{args.depth}, "
        f"{cfg.data.height}x{cfg.data.width}, P x K = {args.p} x {args.k}, "
        f"median of {args.steps} steps" + (f", {' '.join(args.set)}" if args.set else "")
    )
    print(f"{'preset':<20}{'params (M)':>12}{'s / step':>10}{'images/s':>10}{'vs base':>9}")
    for name, (_, _, base) in rows.items():
        seconds = median[name]
        print(
            f"{name:<20}{steppers[name][1] / 1e6:>12.2f}{seconds:>10.3f}"
            f"{args.p * args.k / seconds:>10.1f}{seconds / median[base]:>8.2f}x"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--p", type=int, default=4, help="identities per batch")
    parser.add_argument("--k", type=int, default=4, help="images per identity")
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="instead: compiled / plain step time of bot and daaf_bot (train.compile=true)",
    )
    parser.add_argument("--height", type=int, default=256, help="with --compile")
    parser.add_argument("--width", type=int, default=128, help="with --compile")
    parser.add_argument("--health", default="", help="time the branch-health signals on PRESET")
    add_row_options(parser)
    args = parser.parse_args()
    main()
