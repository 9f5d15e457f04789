"""Export the stripped inference model (the base network alone).

``export_model`` proves the paper's central claim on every export: the exported network has
exactly the parameters and FLOPs of the base network built from torchvision alone (ResNet
plus the BoT or TriNet head), and its TorchScript and ONNX forms give the trained model's
embeddings (to 1e-4). Otherwise it fails and says why. ``model_state.pt`` holds tensors,
numbers, strings, lists and dicts only, so that it loads with ``weights_only=True``;
:func:`daaf.models.load_inference_model` reads every form back.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn

from daaf.config import Config, recorded_config
from daaf.errors import DaafError
from daaf.models.daaf import build_model, inference_network
from daaf.models.load import torchscript_warnings_off
from daaf.models.meta import META_FILE, ModelMeta
from daaf.models.state import build_from_state
from daaf.training.checkpoint import load_checkpoint
from daaf.utils.files import atomic_write

TOLERANCE = 1e-4
MODEL_FILES = ("model_state.pt", "model.ts", "model.onnx")


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _flops(module: nn.Module, images: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(images)
    return int(counter.get_total_flops())


def reference_network(cfg: Config) -> nn.Module:
    """The base network an export must equal, assembled from torchvision's ResNet without
    daaf's model classes: ResNet-``depth`` minus avgpool and fc, the configured last stride,
    global average pooling and the head (BoT: BNNeck; TriNet: FC-BN-ReLU-FC)."""
    resnet = getattr(torchvision.models, f"resnet{cfg.model.depth}")(weights=None)
    if cfg.model.last_stride == 1:  # a Bottleneck strides in conv2, a BasicBlock in conv1
        block = resnet.layer4[0]
        (block.conv2 if hasattr(block, "conv3") else block.conv1).stride = (1, 1)
        block.downsample[0].stride = (1, 1)
    channels = resnet.fc.in_features
    if cfg.model.base == "bot":
        head = [nn.BatchNorm1d(channels)]
    else:
        hidden, out = cfg.model.trinet_dims
        head = [
            nn.Linear(channels, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, out),
        ]
    trunk = list(resnet.children())[:-2]  # avgpool, fc
    return nn.Sequential(*trunk, nn.AdaptiveAvgPool2d(1), nn.Flatten(), *head).eval()


def _rebuild(state: dict[str, Any], path: Path) -> tuple[Config, nn.Module]:
    """The trained DAAF model of a :func:`load_checkpoint` state, checked against its config
    before it is built (no pretrained download: the weights follow)."""
    cfg = recorded_config(state["config"], path)
    model = build_from_state(lambda: build_model(cfg, state["num_classes"]), state["model"], path)
    return cfg, model.eval()


def _write_model_files(
    folder: Path, base: nn.Module, images: torch.Tensor, cfg: Config, num_classes: int, meta: dict
) -> None:
    """model_state.pt (tensors, numbers, strings, lists and dicts only), model.ts and
    model.onnx of the exported network ``base`` in ``folder``."""
    torch.save(
        {
            "state_dict": base.state_dict(),
            "config": cfg.to_dict(),
            "num_classes": num_classes,
            "meta": meta,
        },
        folder / "model_state.pt",
    )
    with torchscript_warnings_off():
        with torch.no_grad():
            traced = torch.jit.trace(base, images)
        torch.jit.save(traced, str(folder / "model.ts"), _extra_files={META_FILE: json.dumps(meta)})
        torch.onnx.export(
            base,
            (images,),
            str(folder / "model.onnx"),
            input_names=["images"],
            output_names=["embedding"],
            dynamo=False,
            dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"}},
        )


def export_model(checkpoint_path: Path, out_dir: Path) -> dict[str, Any]:
    """Write model_state.pt, model.ts, model.onnx and export_report.json; return the report.

    The model files are written into a temporary folder inside ``out_dir`` and moved into
    place only when every check passes: a failed export leaves its report (``passed: false``)
    and no model.
    """
    checkpoint_path, out_dir = Path(checkpoint_path), Path(out_dir)
    state = load_checkpoint(checkpoint_path)
    cfg, model = _rebuild(state, checkpoint_path)
    base = inference_network(model)
    reference = reference_network(cfg)
    images, odd_batch, dim = _probe_inputs(model, cfg, checkpoint_path)
    meta = ModelMeta.from_config(cfg.data, cfg.model, dim).to_dict()

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as staging:
        staging = Path(staging)
        _write_model_files(staging, base, images, cfg, state["num_classes"], meta)
        ts_diff, onnx_diff = _round_trip_differences(staging, model, (images, odd_batch))
        report = {
            "checkpoint": str(checkpoint_path),
            "base": cfg.model.base,
            "depth": cfg.model.depth,
            **_sizes(model, base, reference, images[:1]),
            "max_abs_diff_torchscript": ts_diff,
            "max_abs_diff_onnx": onnx_diff,
            "embedding_dim": dim,
            "input_size": [cfg.data.height, cfg.data.width],
            "files": list(MODEL_FILES),
        }
        problems = _problems(report, cfg)
        report["passed"] = not problems
        if not problems:
            for name in MODEL_FILES:
                os.replace(staging / name, out_dir / name)
    atomic_write(
        out_dir / "export_report.json", lambda p: p.write_text(json.dumps(report, indent=2))
    )
    if problems:
        raise DaafError(f"export to {out_dir} failed its checks: " + "; ".join(problems))
    return report


def _probe_inputs(
    model: nn.Module, cfg: Config, checkpoint_path: Path
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Seeded random images the exported forms are compared on (a batch of 4, and one of 3 that
    checks the dynamic batch axis) and the embedding dimension, once the trained model's
    embeddings of them are finite."""
    torch.manual_seed(0)
    images = torch.randn(4, 3, cfg.data.height, cfg.data.width)
    odd_batch = torch.randn(3, 3, cfg.data.height, cfg.data.width)
    with torch.no_grad():
        embeddings = model(images)
    broken = int((~torch.isfinite(embeddings)).sum())
    if broken:
        raise DaafError(
            f"{checkpoint_path}: the trained model's embeddings hold {broken} non-finite values "
            f"(NaN or inf) of {embeddings.numel()}: its weights are broken (a diverged run?); "
            "nothing exported"
        )
    return images, odd_batch, int(embeddings.shape[1])


def _round_trip_differences(
    folder: Path, model: nn.Module, batches: tuple[torch.Tensor, ...]
) -> tuple[float, float]:
    """The largest absolute difference between the trained model's embeddings of ``batches``
    and those of the model.ts, then the model.onnx, written in ``folder``."""
    import onnxruntime

    with torchscript_warnings_off():
        loaded_ts = torch.jit.load(str(folder / "model.ts"))  # written just now, by us
    session = onnxruntime.InferenceSession(
        str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    with torch.no_grad():
        ts_diff = max((loaded_ts(x) - model(x)).abs().max().item() for x in batches)
        onnx_diff = max(
            float(np.abs(session.run(None, {"images": x.numpy()})[0] - model(x).numpy()).max())
            for x in batches
        )
    return ts_diff, onnx_diff


def _sizes(
    model: nn.Module, base: nn.Module, reference: nn.Module, image: torch.Tensor
) -> dict[str, Any]:
    """The parameter counts of the trained, reference and exported networks, and the GFLOPs of
    the reference and exported ones on ``image``."""
    return {
        "trained_params": _count(model),
        "base_params": _count(reference),
        "exported_params": _count(base),
        "base_gflops": _flops(reference, image) / 1e9,
        "exported_gflops": _flops(base, image) / 1e9,
    }


def _problems(report: dict[str, Any], cfg: Config) -> list[str]:
    """What makes an export fail: a network that is not the base network, or TorchScript or
    ONNX embeddings that differ from the trained model's."""
    reference_name = f"torchvision ResNet-{cfg.model.depth} + {cfg.model.base} head"
    problems = []
    if report["exported_params"] != report["base_params"]:
        problems.append(
            f"exported network has {report['exported_params']} parameters, "
            f"the {reference_name} {report['base_params']}"
        )
    if report["exported_gflops"] != report["base_gflops"]:
        problems.append(
            f"exported network costs {report['exported_gflops']:.6g} GFLOPs per image, "
            f"the {reference_name} {report['base_gflops']:.6g}"
        )
    for key in ("max_abs_diff_torchscript", "max_abs_diff_onnx"):
        if not report[key] <= TOLERANCE:
            problems.append(f"{key} = {report[key]:.2e} > {TOLERANCE}")
    return problems
