"""Export the stripped inference model (the base network alone) and load any exported form.

``export_model`` proves the paper's central claim on every export: the exported network has
exactly the parameters and FLOPs of the base network built from torchvision alone (ResNet
plus the BoT or TriNet head), and its TorchScript and ONNX forms give the trained model's
embeddings (to 1e-4). Otherwise it fails and says why. ``model_state.pt`` holds tensors,
numbers, strings, lists and dicts only, so that it loads with ``weights_only=True``.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn

from daaf.errors import DaafError
from daaf.training.checkpoint import (
    build_from_state,
    checked_meta,
    checked_state,
    checkpoint_config,
    load_checkpoint,
    load_daaf_file,
)
from daaf.training.config import Config, default_metric
from daaf.training.modeling import build_model
from daaf.utils.device import resolve_device
from daaf.utils.files import atomic_write

TOLERANCE = 1e-4
MODEL_FILES = ("model_state.pt", "model.ts", "model.onnx")
META_FILE = "daaf_meta.json"  # inside model.ts (torch.jit extra file)


@contextmanager
def _torchscript():
    """TorchScript and the TorchScript-based ONNX exporter are deprecated in recent PyTorch but
    still what deployment stacks load (the dynamo exporter needs onnxscript): use them without a
    deprecation warning on every export."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _flops(module: nn.Module, images: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(images)
    return int(counter.get_total_flops())


def inference_meta(cfg: Config) -> dict[str, Any]:
    """How to feed and compare the exported model's embeddings."""
    return {
        "height": cfg.data.height,
        "width": cfg.data.width,
        "pixel_mean": list(cfg.data.pixel_mean),
        "pixel_std": list(cfg.data.pixel_std),
        "embedding_dim": None,
        "metric": default_metric(cfg),
        "base": cfg.model.base,
        "depth": cfg.model.depth,
    }


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


def inference_network(model: nn.Module) -> nn.Module:
    """What is exported: a copy of the base network (backbone + head) in eval mode, without
    BoT's classifier (training-only logits over the training identities)."""
    base = copy.deepcopy(model.base_network()).eval()
    if getattr(base.head, "classifier", None) is not None:
        base.head.classifier = None
    return base


def _rebuild(state: dict[str, Any], path: Path) -> tuple[Config, nn.Module]:
    """The trained DAAF model of a :func:`load_checkpoint` state, checked against its config
    before it is built (no pretrained download: the weights follow)."""
    cfg = checkpoint_config(state["config"], path)
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
    with _torchscript():
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
    import onnxruntime

    checkpoint_path, out_dir = Path(checkpoint_path), Path(out_dir)
    state = load_checkpoint(checkpoint_path)
    cfg, model = _rebuild(state, checkpoint_path)
    base = inference_network(model)
    reference = reference_network(cfg)

    torch.manual_seed(0)
    images = torch.randn(4, 3, cfg.data.height, cfg.data.width)
    odd_batch = torch.randn(3, 3, cfg.data.height, cfg.data.width)  # checks the dynamic axis
    with torch.no_grad():
        embeddings = model(images)
    broken = int((~torch.isfinite(embeddings)).sum())
    if broken:
        raise DaafError(
            f"{checkpoint_path}: the trained model's embeddings hold {broken} non-finite values "
            f"(NaN or inf) of {embeddings.numel()}: its weights are broken (a diverged run?); "
            "nothing exported"
        )
    meta = {**inference_meta(cfg), "embedding_dim": int(embeddings.shape[1])}

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as staging:
        staging = Path(staging)
        _write_model_files(staging, base, images, cfg, state["num_classes"], meta)
        with _torchscript():
            loaded_ts = torch.jit.load(str(staging / "model.ts"))  # written just now, by us
        session = onnxruntime.InferenceSession(
            str(staging / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        with torch.no_grad():
            ts_diff = max((loaded_ts(x) - model(x)).abs().max().item() for x in (images, odd_batch))
            onnx_diff = max(
                float(np.abs(session.run(None, {"images": x.numpy()})[0] - model(x).numpy()).max())
                for x in (images, odd_batch)
            )
        report = {
            "checkpoint": str(checkpoint_path),
            "base": cfg.model.base,
            "depth": cfg.model.depth,
            "trained_params": _count(model),
            "base_params": _count(reference),
            "exported_params": _count(base),
            "base_gflops": _flops(reference, images[:1]) / 1e9,
            "exported_gflops": _flops(base, images[:1]) / 1e9,
            "max_abs_diff_torchscript": ts_diff,
            "max_abs_diff_onnx": onnx_diff,
            "embedding_dim": meta["embedding_dim"],
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


TRUST_HINT = "load a model.ts only if you trust it: daaf evaluate --trust-torchscript"


def load_inference_model(
    path: Path, device: torch.device | str, trust_torchscript: bool = False
) -> tuple[nn.Module, dict[str, Any]]:
    """The eval-mode embedding model and its meta from an export folder or its model_state.pt,
    or from a training checkpoint (then the whole DAAF model: its eval forward is the
    embedding, and its branches stay reachable for branch pictures and measurements).

    These files hold weights only. A TorchScript model.ts holds code, which runs when it is
    loaded and called: it is loaded only with ``trust_torchscript`` (then also for a folder
    without model_state.pt).
    """
    path, device = Path(path), resolve_device(device)
    if path.is_dir():
        names = ("model_state.pt", "model.ts") if trust_torchscript else ("model_state.pt",)
        for name in names:
            if (path / name).is_file():
                return load_inference_model(path / name, device, trust_torchscript)
        hint = f"; {TRUST_HINT}" if (path / "model.ts").is_file() and not trust_torchscript else ""
        raise DaafError(f"{path}: no model_state.pt in this folder (run `daaf export`){hint}")
    if not path.is_file():
        raise DaafError(f"{path}: no such model file")
    if path.suffix == ".ts":
        if not trust_torchscript:
            raise DaafError(
                f"{path}: TorchScript runs code of its own when loaded, so daaf reads the "
                f"export's model_state.pt (weights only) instead; {TRUST_HINT}"
            )
        return _load_torchscript(path, device)
    state = load_daaf_file(path)
    if "state_dict" in state:
        checked_state(state, path, "state_dict")
        meta = checked_meta(state["meta"], path)
        cfg = checkpoint_config(state["config"], path)
        cfg.model.hab = cfg.model.pab = False
        base = build_from_state(
            lambda: inference_network(build_model(cfg, state["num_classes"])),
            state["state_dict"],
            path,
            "state_dict",
        )
        dim = base.head.feat_dim
        if meta.get("embedding_dim") not in (None, dim):
            raise DaafError(
                f"{path}: meta.embedding_dim is {meta['embedding_dim']}, but the network it "
                f"describes gives embeddings of dimension {dim}"
            )
        return base.to(device), {**meta, "embedding_dim": dim}
    if "model" in state:
        cfg, model = _rebuild(checked_state(state, path), path)
        return model.to(device).eval(), {**inference_meta(cfg), "embedding_dim": model.feat_dim}
    raise DaafError(f"{path}: neither an exported model nor a daaf training checkpoint")


def _load_torchscript(path: Path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """A model.ts that ``daaf export`` wrote, with its meta (the caller trusts its code)."""
    extra = {META_FILE: ""}
    try:
        with _torchscript():
            module = torch.jit.load(str(path), map_location=device, _extra_files=extra)
    except Exception as exc:
        raise DaafError(f"{path}: not a TorchScript model ({exc.__class__.__name__})") from exc
    if not extra[META_FILE]:
        raise DaafError(
            f"{path}: TorchScript file without {META_FILE} (not written by daaf export)"
        )
    try:
        meta = json.loads(extra[META_FILE])
    except ValueError:
        raise DaafError(
            f"{path}: its {META_FILE} is not JSON (not written by daaf export)"
        ) from None
    return module.eval(), checked_meta(meta, path)
