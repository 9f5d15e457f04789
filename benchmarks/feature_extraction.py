"""Feature extraction speed of an exported model on this machine (images/s), by batch size.

    python benchmarks/feature_extraction.py [--depth 50] [--height 256 --width 128]

Builds DAAF-BoT with random weights, exports it the way `daaf export` does, and times the
exported base network (eager state_dict model and TorchScript) against the freshly built plain
BoT network at batch 1 and 32, in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from daaf.config import Config
from daaf.evaluation.speed import measure_latency
from daaf.models import build_model, load_inference_model
from daaf.training.export import export_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    args = parser.parse_args()
    cfg = Config()
    cfg.data.height, cfg.data.width = args.height, args.width
    cfg.model.depth, cfg.model.pretrained, cfg.model.hab, cfg.model.pab = (
        args.depth,
        "none",
        True,
        True,
    )
    device = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        daaf = build_model(cfg, 751)
        torch.save(
            {"model": daaf.state_dict(), "config": cfg.to_dict(), "num_classes": 751},
            Path(tmp) / "ckpt.pt",
        )
        export_model(Path(tmp) / "ckpt.pt", Path(tmp) / "export")
        exported, _ = load_inference_model(Path(tmp) / "export", device)
        scripted, _ = load_inference_model(  # written just now by export_model
            Path(tmp) / "export" / "model.ts", device, trust_torchscript=True
        )
        cfg.model.hab = cfg.model.pab = False
        plain = build_model(cfg, 751).eval()
        models = {
            "plain BoT (reference)": plain,
            "exported DAAF-BoT": exported,
            "exported TorchScript": scripted,
        }
        print(
            f"ResNet-{args.depth} at {args.height}x{args.width}, CPU, {torch.get_num_threads()} threads"
        )
        print(f"{'model':<24}" + "".join(f"{f'img/s b={b}':>14}{'ratio':>8}" for b in args.batches))
        reference = {}
        for name, model in models.items():
            row = f"{name:<24}"
            for b in args.batches:
                seconds = measure_latency(model, (b, 3, args.height, args.width), device, repeats=5)
                reference.setdefault(b, seconds)
                row += f"{b / seconds:>14.1f}{reference[b] / seconds:>8.2f}"
            print(row)


if __name__ == "__main__":
    main()
