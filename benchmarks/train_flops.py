"""GFLOPs per training sample of each preset, forward and backward, and the ratio to its base.

Counted with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions,
transposed ones included; elementwise work is not counted) on one
``daaf.training.engine.train_step`` of a random worker batch (``benchmarks/train_step.py``):
the forward is the model and the criterion, the backward the rest of the step. Every preset
as configured (ResNet-50 at 256x128 unless ``--depth``), ``model.pretrained=none``, and
daaf_bot with its decoders at 1/4 of the input (``daaf_bot/stride4``); ``--rows`` and
``--set KEY=VALUE`` as in ``benchmarks/train_step.py``.

    python benchmarks/train_flops.py [--depth 50] [--batch 2] [--rows ...] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode
from train_step import (
    add_row_options,
    build_training,
    make_batch,
    preset_config,
    selected_rows,
)

from daaf.config import Config
from daaf.data.device_batch import prepare_batch
from daaf.training.engine import Precision, train_step


def count(cfg: Config, batch_size: int) -> tuple[float, float]:
    """(forward, backward) FLOPs per sample of one training step of ``cfg``."""
    model, criterion, optimizers, scaler = build_training(cfg, torch.device("cpu"))
    batch = make_batch(1, batch_size, cfg.data.height, cfg.data.width)
    prepared = prepare_batch(batch, cfg.data, torch.device("cpu"), criterion.target_stride)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        criterion(model(prepared["images"]), prepared)
    forward = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        train_step(
            model, batch, optimizers, criterion, data=cfg.data, precision=Precision(scaler=scaler)
        )
    return forward / batch_size, (counter.get_total_flops() - forward) / batch_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--batch", type=int, default=2, help="samples in the counted step")
    add_row_options(parser)
    args = parser.parse_args()
    rows = selected_rows(args.rows)
    configs = {
        name: preset_config(preset, args.depth, *overrides, *args.set)
        for name, (preset, overrides, _) in rows.items()
    }
    flops = {name: count(cfg, args.batch) for name, cfg in configs.items()}
    cfg = next(iter(configs.values()))
    print(
        f"GFLOPs per training sample, ResNet-{args.depth}, {cfg.data.height}x{cfg.data.width}"
        + (f", {' '.join(args.set)}" if args.set else "")
    )
    print(f"{'preset':<20}{'forward':>9}{'backward':>10}{'step':>8}{'vs base':>9}")
    for name, (_, _, base) in rows.items():
        forward, backward = flops[name]
        step = forward + backward
        ratio = step / sum(flops[base])
        print(
            f"{name:<20}{forward / 1e9:>9.1f}{backward / 1e9:>10.1f}{step / 1e9:>8.1f}"
            f"{ratio:>8.2f}x"
        )


if __name__ == "__main__":
    main()
