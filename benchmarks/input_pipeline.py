"""Training input pipeline speed and size: samples a worker makes per second vs decoding alone.

Builds training samples exactly as a ``daaf train`` worker does for ``--config`` (read,
augment, hand over; ``daaf.training.trainer.build_train_set``), in one process with no
DataLoader workers and torch and OpenCV at one thread. ``decode_per_s`` is cv2 decode + RGB +
resize of the same JPEGs to the config's size, measured in the same run; both are the median
of ``--repeats`` interleaved passes. ``bytes_per_sample`` counts every tensor a worker hands to
the training process for one sample. The dataset is the annotation store's
(ROOT/annotations, e.g. from ``daaf synth --out ROOT``), else the config's.

    python benchmarks/input_pipeline.py --root DIR [--config FILE] [--samples N] [--json] [KEY=VALUE ...]

KEY=VALUE overrides the config as ``daaf train`` does, e.g. ``data.cache_masks=false`` to read
each mask from the store instead of the decoded-mask cache.

With ``--json`` the last line of stdout is one JSON object for ``--config``; without it, a
table for bot, daaf_bot and daaf_trinet (or for ``--config``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import cv2
import torch

from daaf.config import load_config
from daaf.data.annotations import AnnotationStore
from daaf.data.datasets import build_dataset
from daaf.data.images import read_rgb
from daaf.training.trainer import build_train_set

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TABLE_PRESETS = ("bot", "daaf_bot", "daaf_trinet")


def measure(
    root: Path, config: Path, samples: int, repeats: int, extra: list[str]
) -> dict[str, float | int | str]:
    """samples_per_s, bytes_per_sample and decode_per_s of ``config``'s worker on ``root``."""
    overrides = [f"data.root={root}", "model.pretrained=none"]
    store = root / "annotations"
    if store.is_dir():
        overrides += [f"data.annotations={store}", f"data.dataset={AnnotationStore(store).dataset}"]
    cfg = load_config(config, overrides + extra)
    dataset = build_dataset(cfg.data.dataset, root)
    train_set = build_train_set(cfg, dataset)
    indices = [i % len(train_set) for i in range(samples)]
    paths = [dataset.image_dir / dataset.train[i].path for i in indices]
    size = (cfg.data.width, cfg.data.height)

    def pipeline() -> list[dict[str, torch.Tensor]]:
        return [train_set[i] for i in indices]

    def decode() -> None:
        for path in paths:
            cv2.resize(read_rgb(path), size, interpolation=cv2.INTER_LINEAR)

    items = pipeline()  # warm-up: file cache, the store's shards
    decode()
    times: dict[str, list[float]] = {"pipeline": [], "decode": []}
    for _ in range(repeats):
        for name, run in (("pipeline", pipeline), ("decode", decode)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    nbytes = sum(t.numel() * t.element_size() for item in items for t in item.values())
    samples_per_s = samples / statistics.median(times["pipeline"])
    decode_per_s = samples / statistics.median(times["decode"])
    return {
        "config": config.stem,
        "size": f"{cfg.data.height}x{cfg.data.width}",
        "samples": samples,
        "samples_per_s": round(samples_per_s, 1),
        "bytes_per_sample": nbytes // samples,
        "decode_per_s": round(decode_per_s, 1),
        "ratio_to_decode": round(samples_per_s / decode_per_s, 3),
        "tensors": sorted(items[0]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="dataset root (daaf synth --out)")
    parser.add_argument("--config", type=Path, default=None, help="training config YAML")
    parser.add_argument("--samples", type=int, default=256, help="samples per pass")
    parser.add_argument("--repeats", type=int, default=3, help="passes; the median is reported")
    parser.add_argument("--json", action="store_true", help="one JSON object as the last line")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    if args.json and args.config is None:
        parser.error("--json needs --config")
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    if args.json:
        print(
            json.dumps(measure(args.root, args.config, args.samples, args.repeats, args.overrides))
        )
        return
    configs = [args.config] if args.config else [CONFIGS / f"{p}.yaml" for p in TABLE_PRESETS]
    rows = [
        measure(args.root, config, args.samples, args.repeats, args.overrides) for config in configs
    ]
    print(f"one process, 1 thread, {args.samples} samples, median of {args.repeats} passes")
    print(
        f"{'config':<14}{'size':>9}{'samples/s':>11}{'KB/sample':>11}{'decode/s':>10}"
        f"{'ratio':>7}  tensors"
    )
    for row in rows:
        print(
            f"{row['config']:<14}{row['size']:>9}{row['samples_per_s']:>11.0f}"
            f"{row['bytes_per_sample'] / 1024:>11.1f}{row['decode_per_s']:>10.0f}"
            f"{row['ratio_to_decode']:>7.2f}  {', '.join(row['tensors'])}"
        )


if __name__ == "__main__":
    main()
