"""An exported model (its model_state.pt, or a trusted model.ts) or a training checkpoint, loaded
as an eval-mode embedding model with its :class:`~daaf.models.meta.ModelMeta`."""

from __future__ import annotations

import dataclasses
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from daaf.config import recorded_config
from daaf.errors import DaafError
from daaf.models.daaf import build_model, inference_network
from daaf.models.meta import META_FILE, ModelMeta
from daaf.models.state import build_from_state, checked_contents, load_daaf_file
from daaf.utils.device import resolve_device

TRUST_HINT = "load a model.ts only if you trust it: daaf evaluate --trust-torchscript"


@contextmanager
def torchscript_warnings_off() -> Iterator[None]:
    """TorchScript and the TorchScript-based ONNX exporter are deprecated in recent PyTorch but
    still what deployment stacks load (the dynamo exporter needs onnxscript): use them without a
    deprecation warning on every export and load."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def load_inference_model(
    path: Path, device: torch.device | str, trust_torchscript: bool = False
) -> tuple[nn.Module, ModelMeta]:
    """The eval-mode embedding model and its meta from an export folder or its model_state.pt,
    or from a training checkpoint (then the whole DAAF model: its eval forward is the
    embedding, and its branches stay reachable for branch pictures and measurements).

    These files hold weights only. A TorchScript model.ts holds code, which runs when it is
    loaded and called: it is loaded only with ``trust_torchscript`` (then also for a folder
    without model_state.pt).
    """
    path, device = Path(path), resolve_device(device)
    if path.is_dir():
        return load_inference_model(_model_file(path, trust_torchscript), device, trust_torchscript)
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
        base, meta = _load_export(state, path)
        return base.to(device), meta
    if "model" in state:
        model, meta = _load_checkpoint(state, path)
        return model.to(device).eval(), meta
    raise DaafError(f"{path}: neither an exported model nor a daaf training checkpoint")


def _model_file(folder: Path, trust_torchscript: bool) -> Path:
    """The file of an export folder to load: model_state.pt, else a trusted model.ts."""
    names = ("model_state.pt", "model.ts") if trust_torchscript else ("model_state.pt",)
    for name in names:
        if (folder / name).is_file():
            return folder / name
    untrusted = (folder / "model.ts").is_file() and not trust_torchscript
    hint = f"; {TRUST_HINT}" if untrusted else ""
    raise DaafError(f"{folder}: no model_state.pt in this folder (run `daaf export`){hint}")


def _load_export(state: dict[str, Any], path: Path) -> tuple[nn.Module, ModelMeta]:
    """The base network and meta of a model_state.pt, its embedding dimension checked against
    the network's."""
    checked_contents(state, path, "state_dict")
    cfg = recorded_config(state["config"], path)
    meta = ModelMeta.from_dict(state["meta"], path)
    cfg.model.hab = cfg.model.pab = False
    base = build_from_state(
        lambda: inference_network(build_model(cfg, state["num_classes"])),
        state["state_dict"],
        path,
        "state_dict",
    )
    dim = base.head.feat_dim
    if meta.embedding_dim not in (None, dim):
        raise DaafError(
            f"{path}: meta.embedding_dim is {meta.embedding_dim}, but the network it "
            f"describes gives embeddings of dimension {dim}"
        )
    for key in ("base", "depth"):
        said, built = getattr(meta, key), getattr(cfg.model, key)
        if said not in (None, built):
            raise DaafError(
                f"{path}: meta.{key} is {said!r:.40}, but its config and weights are "
                f"model.{key} {built!r}"
            )
    return base, dataclasses.replace(meta, embedding_dim=dim)


def _load_checkpoint(state: dict[str, Any], path: Path) -> tuple[nn.Module, ModelMeta]:
    """The trained DAAF model of a training checkpoint (no pretrained download: the weights
    follow) and the meta its config describes."""
    checked_contents(state, path)
    cfg = recorded_config(state["config"], path)
    model = build_from_state(lambda: build_model(cfg, state["num_classes"]), state["model"], path)
    return model, ModelMeta.from_config(cfg.data, cfg.model, model.feat_dim)


def _load_torchscript(path: Path, device: torch.device) -> tuple[nn.Module, ModelMeta]:
    """A model.ts that ``daaf export`` wrote, with its meta (the caller trusts its code)."""
    extra = {META_FILE: ""}
    try:
        with torchscript_warnings_off():
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
    return module.eval(), ModelMeta.from_dict(meta, path)
