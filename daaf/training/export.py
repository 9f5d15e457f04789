"""Export the stripped inference model (the base network alone) and load any exported form.

``export_model`` proves the paper's central claim on every export: the exported network has
exactly the parameter count of a freshly built base network, and its TorchScript and ONNX
forms give the trained model's embeddings (to 1e-4). Otherwise it fails and says why.
"""

from __future__ import annotations

import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from daaf.errors import DaafError
from daaf.training.config import Config, config_from_dict, default_metric
from daaf.training.modeling import build_model
from daaf.training.trainer import load_checkpoint
from daaf.utils.files import atomic_write

TOLERANCE = 1e-4
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


def _rebuild(state: dict[str, Any]) -> tuple[Config, nn.Module]:
    """The trained DAAF model from a checkpoint dict (no pretrained download: weights follow)."""
    cfg = config_from_dict(state["config"])
    cfg.model.pretrained = "none"
    model = build_model(cfg, state["num_classes"])
    model.load_state_dict(state["model"])
    return cfg, model.eval()


def export_model(checkpoint_path: Path, out_dir: Path) -> dict[str, Any]:
    """Write model_state.pt, model.ts, model.onnx and export_report.json; return the report."""
    import onnxruntime

    state = load_checkpoint(Path(checkpoint_path))
    cfg, model = _rebuild(state)
    base = model.base_network().eval()
    fresh_cfg = config_from_dict(cfg.to_dict())
    fresh_cfg.model.hab = fresh_cfg.model.pab = False
    fresh = build_model(fresh_cfg, state["num_classes"]).base_network()

    torch.manual_seed(0)
    images = torch.randn(4, 3, cfg.data.height, cfg.data.width)
    with torch.no_grad():
        reference = model(images)
    meta = {**inference_meta(cfg), "embedding_dim": int(reference.shape[1])}

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(
        out_dir / "model_state.pt",
        lambda p: torch.save(
            {"state_dict": base.state_dict(), "config": cfg.to_dict(),
             "num_classes": state["num_classes"], "meta": meta}, p
        ),
    )  # fmt: skip
    onnx_path = out_dir / "model.onnx"
    with _torchscript():
        with torch.no_grad():
            traced = torch.jit.trace(base, images)
        atomic_write(
            out_dir / "model.ts",
            lambda p: torch.jit.save(traced, str(p), _extra_files={META_FILE: json.dumps(meta)}),
        )
        atomic_write(
            onnx_path,
            lambda p: torch.onnx.export(
                base, (images,), str(p), input_names=["images"], output_names=["embedding"],
                dynamic_axes={"images": {0: "batch"}, "embedding": {0: "batch"}}, dynamo=False,
            ),
        )  # fmt: skip
        loaded_ts = torch.jit.load(str(out_dir / "model.ts"))
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    odd_batch = torch.randn(3, 3, cfg.data.height, cfg.data.width)  # checks the dynamic axis
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
        "base_params": _count(fresh),
        "exported_params": _count(base),
        "base_flops": _flops(fresh.eval(), images[:1]),
        "exported_flops": _flops(base, images[:1]),
        "max_abs_diff_torchscript": ts_diff,
        "max_abs_diff_onnx": onnx_diff,
        "embedding_dim": meta["embedding_dim"],
        "input_size": [cfg.data.height, cfg.data.width],
        "files": ["model_state.pt", "model.ts", "model.onnx"],
    }
    problems = []
    if report["exported_params"] != report["base_params"]:
        problems.append(
            f"exported network has {report['exported_params']} parameters, "
            f"a fresh base network {report['base_params']}"
        )
    for key in ("max_abs_diff_torchscript", "max_abs_diff_onnx"):
        if not report[key] <= TOLERANCE:
            problems.append(f"{key} = {report[key]:.2e} > {TOLERANCE}")
    report["passed"] = not problems
    atomic_write(
        out_dir / "export_report.json", lambda p: p.write_text(json.dumps(report, indent=2))
    )
    if problems:
        raise DaafError(f"export to {out_dir} failed its checks: " + "; ".join(problems))
    return report


def load_inference_model(path: Path, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The eval-mode embedding model and its meta from an export folder, model.ts,
    model_state.pt or a training checkpoint (then the whole DAAF model: its eval forward is the
    embedding, and its branches stay reachable for branch pictures and measurements)."""
    path = Path(path)
    if path.is_dir():
        for name in ("model_state.pt", "model.ts"):
            if (path / name).is_file():
                return load_inference_model(path / name, device)
        raise DaafError(f"{path}: no model_state.pt or model.ts in this folder (run `daaf export`)")
    if not path.is_file():
        raise DaafError(f"{path}: no such model file")
    if path.suffix == ".ts":
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
        return module.eval(), json.loads(extra[META_FILE])
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise DaafError(f"{path}: not a readable model file ({exc.__class__.__name__})") from exc
    if isinstance(state, dict) and "state_dict" in state and "meta" in state:
        cfg = config_from_dict(state["config"])
        cfg.model.pretrained = "none"
        cfg.model.hab = cfg.model.pab = False
        base = build_model(cfg, state["num_classes"]).base_network()
        base.load_state_dict(state["state_dict"])
        return base.to(device).eval(), state["meta"]
    if isinstance(state, dict) and {"model", "config", "num_classes"} <= state.keys():
        cfg, model = _rebuild(state)
        return model.to(device).eval(), {**inference_meta(cfg), "embedding_dim": model.feat_dim}
    raise DaafError(f"{path}: neither an exported model nor a daaf training checkpoint")
