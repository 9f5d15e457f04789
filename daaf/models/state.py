"""daaf's own model files, loaded safely and checked before anything is built from them.

Every file loads with ``torch.load(weights_only=True)`` (:func:`load_daaf_file`), so none runs
code. What it holds is then checked, each problem one DaafError line naming the file: its keys
and their types (:func:`checked_contents`); its config (:func:`daaf.config.recorded_config`, which
keeps the dataset name as written, so that a file of a dataset registered in another process
loads without the registry); and each state dict against the
module it is meant for, first built on the meta device (:func:`build_from_state`), so that a
file asking for 1e11 classes is refused before any memory is allocated.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from daaf.errors import DaafError
from daaf.models.meta import positive_int
from daaf.utils.safe_load import load_weights_only


def kind(value: Any) -> str:
    """The type name of ``value``, for messages about what a file holds."""
    return type(value).__name__


def load_daaf_file(path: Path) -> dict[str, Any]:
    """A .pt file daaf wrote (training checkpoint or export) as a dict, loaded with
    ``torch.load(weights_only=True)`` so that no file can run code; DaafError naming the file
    when it is missing, unreadable, would need more than tensors, numbers, strings, lists and
    dicts, or is not a dict."""
    state = load_weights_only(Path(path))
    if not isinstance(state, dict):
        raise DaafError(f"{path}: not a daaf file (holds a {kind(state)}, not a dict)")
    return state


def checked_contents(state: dict[str, Any], path: Path, weights: str = "model") -> None:
    """DaafError unless ``state`` holds the keys daaf writes (``weights``: ``model`` in a
    training checkpoint, ``state_dict`` and ``meta`` in an export), ``weights`` as a mapping
    and a positive ``num_classes``; its config is checked apart."""
    needed = (weights, "config", "num_classes", *(("meta",) if weights == "state_dict" else ()))
    if not set(needed) <= state.keys():
        what = "export (model_state.pt)" if weights == "state_dict" else "training checkpoint"
        raise DaafError(f"{path}: not a daaf {what} (needs {', '.join(needed)})")
    if not isinstance(state[weights], dict):
        raise DaafError(f"{path}: its {weights} is not a state dict (names -> tensors)")
    positive_int(state["num_classes"], "num_classes", path)


def check_state_dict(module: nn.Module, state_dict: Any, path: Path, what: str) -> None:
    """DaafError unless ``state_dict`` has exactly ``module``'s keys, each a tensor of its
    shape: one line with the counts of missing, unexpected and mis-shaped keys and the first
    of each (``module`` may live on the meta device)."""
    if not isinstance(state_dict, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state_dict.items()
    ):
        raise DaafError(f"{path}: its {what} is not a state dict (names -> tensors)")
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    shaped = [
        f"{k}: {tuple(state_dict[k].shape)} in the file, {tuple(v.shape)} expected"
        for k, v in expected.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    problems = [
        f"{len(names)} {label} ({', '.join(names[:2])}{', ...' if len(names) > 2 else ''})"
        for label, names in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("mis-shaped", shaped),
        )
        if names
    ]
    if problems:
        raise DaafError(
            f"{path}: its {what} does not fit the network its config describes: "
            + "; ".join(problems)
        )


def build_from_state(
    make: Callable[[], nn.Module], state_dict: Any, path: Path, what: str = "model"
) -> nn.Module:
    """``make()`` with ``state_dict`` loaded, once :func:`check_state_dict` has compared them
    on a copy built on the meta device (no memory is allocated for a file that does not fit)."""
    with torch.device("meta"):
        expected = make()
    check_state_dict(expected, state_dict, path, what)
    module = make()
    module.load_state_dict(state_dict)
    return module
