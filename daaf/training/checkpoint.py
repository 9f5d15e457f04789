"""daaf's own files, training checkpoints and exports, loaded safely and checked before use.

Every file loads with ``torch.load(weights_only=True)`` (:func:`load_daaf_file`), so none runs
code. What it holds is then checked before anything is built from it, each problem one
DaafError line naming the file: its keys and their types; its config, through the config
fields' own rules (:func:`checkpoint_config`, which keeps the dataset name as written, so that
a checkpoint of a dataset registered in another process loads without the registry); the
export meta (:func:`checked_meta`); and each state dict against the module it is meant for,
first built on the meta device (:func:`build_from_state`), so that a file asking for 1e11
classes is refused before any memory is allocated.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from daaf.data.config import DataConfig
from daaf.errors import ConfigError, DaafError
from daaf.training.config import Config, config_from_dict
from daaf.utils.config_fields import checked_value
from daaf.utils.safe_load import describe_exception, load_weights_only

# The counts of training done a checkpoint holds, integers >= 0.
COUNTS = ("epoch", "step")
# A resumed run is the same run: its network, data, losses, optimiser, seed and epoch length
# stay as trained. These settings may change (where the files are, how they are read, on which
# device, how long and how often things are logged), with every train.* but RESUME_SAME_TRAIN.
RESUME_MAY_CHANGE = frozenset(
    {
        "model.pretrained",
        "data.root",
        "data.annotations",
        "data.workers",
        "data.cache_masks",
        "data.test_batch_size",
    }
)
RESUME_SAME_TRAIN = ("train.seed", "train.iters_per_epoch")
# Settings added after files were written, with the value that reproduces what a file without
# them was trained with (the default may differ): section -> {key: value}.
LEGACY_VALUES = {
    "model": {"decoder_init": "pytorch"},
    "loss": {"keypoint_weighting": "all"},
    "optim": {"branch_weight_decay": None},  # one group, optim.weight_decay on every parameter
}
METRICS = ("euclidean", "cosine")  # daaf.evaluation.distance.METRICS
# Reading these cannot go wrong in a way worth a traceback: the file does not fit the run.
MISFITS = (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError)


def _kind(value: Any) -> str:
    return type(value).__name__


def load_daaf_file(path: Path) -> dict[str, Any]:
    """A .pt file daaf wrote (training checkpoint or export) as a dict, loaded with
    ``torch.load(weights_only=True)`` so that no file can run code; DaafError naming the file
    when it is missing, unreadable, would need more than tensors, numbers, strings, lists and
    dicts, or is not a dict."""
    state = load_weights_only(Path(path))
    if not isinstance(state, dict):
        raise DaafError(f"{path}: not a daaf file (holds a {_kind(state)}, not a dict)")
    return state


def _positive_int(value: Any, key: str, path: Path) -> int:
    if type(value) is not int or value < 1:
        raise DaafError(f"{path}: {key} must be a positive integer, got {value!r:.40}")
    return value


def _count(value: Any, key: str, path: Path) -> int:
    if type(value) is not int or value < 0:
        raise DaafError(f"{path}: {key} must be an integer >= 0, got {value!r:.40}")
    return value


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A daaf training checkpoint (:func:`load_daaf_file`), checked by :func:`checked_state`."""
    return checked_state(load_daaf_file(Path(path)), Path(path))


def checked_state(state: dict[str, Any], path: Path, weights: str = "model") -> dict[str, Any]:
    """``state`` once it holds the keys daaf writes (``weights``: ``model`` in a training
    checkpoint, ``state_dict`` and ``meta`` in an export), a config that passes
    :func:`checkpoint_config` and a positive ``num_classes``."""
    needed = (weights, "config", "num_classes", *(("meta",) if weights == "state_dict" else ()))
    if not set(needed) <= state.keys():
        kind = "export (model_state.pt)" if weights == "state_dict" else "training checkpoint"
        raise DaafError(f"{path}: not a daaf {kind} (needs {', '.join(needed)})")
    if not isinstance(state[weights], dict):
        raise DaafError(f"{path}: its {weights} is not a state dict (names -> tensors)")
    _positive_int(state["num_classes"], "num_classes", path)
    checkpoint_config(state["config"], path)
    return state


def checkpoint_config(values: Any, path: Path) -> Config:
    """The :class:`Config` a file records, every value checked by the config's own rules; the
    dataset name is kept as written (a string), registered in this process or not."""
    if not isinstance(values, dict):
        raise DaafError(f"{path}: its config is a {_kind(values)}, not a mapping of sections")
    values = copy.deepcopy(values)
    for section, legacy in LEGACY_VALUES.items():
        if isinstance(values.get(section), dict):
            values[section] = {**legacy, **values[section]}
    data = values.get("data")
    dataset = data.pop("dataset", None) if isinstance(data, dict) else None
    try:
        cfg = config_from_dict(values)
    except ConfigError as exc:
        raise DaafError(f"{path}: {exc}") from None
    if dataset is not None:
        if not isinstance(dataset, str) or not dataset:
            raise DaafError(f"{path}: data.dataset must be a dataset name, got {dataset!r:.40}")
        cfg.data.dataset = dataset
    cfg.model.pretrained = "none"  # the weights follow; nothing to download or read
    return cfg


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


def checked_meta(meta: Any, path: Path) -> dict[str, Any]:
    """An export's input description (``height``, ``width``, ``pixel_mean``, ``pixel_std``,
    ``metric``, ``embedding_dim``), each value checked by the rules of its config field."""
    if not isinstance(meta, dict) or not meta:
        raise DaafError(f"{path}: its meta is {meta!r:.40}, not the mapping daaf export writes")
    needed = ("height", "width", "pixel_mean", "pixel_std", "metric")
    absent = [key for key in needed if key not in meta]
    if absent:
        raise DaafError(f"{path}: its meta has no {', '.join(absent)} (not written by daaf export)")
    checked = dict(meta)
    try:
        for key in needed[:4]:
            checked[key] = checked_value(DataConfig, key, meta[key], f"meta.{key}", str(path))
    except ConfigError as exc:
        raise DaafError(str(exc)) from None
    if meta["metric"] not in METRICS:
        raise DaafError(f"{path}: meta.metric must be one of {', '.join(METRICS)}")
    if meta.get("embedding_dim") is not None:
        _positive_int(meta["embedding_dim"], "meta.embedding_dim", path)
    return checked


def trained_epochs(path: Path) -> int:
    """The epochs a training checkpoint has finished (its ``epoch``)."""
    state = load_checkpoint(path)
    if "epoch" not in state:
        raise DaafError(f"{path}: no epoch in this checkpoint (not written by daaf train)")
    return _count(state["epoch"], "epoch", path)


def _may_change(key: str) -> bool:
    return key in RESUME_MAY_CHANGE or (key.startswith("train.") and key not in RESUME_SAME_TRAIN)


def _flat(sections: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        f"{name}.{key}": value for name, values in sections.items() for key, value in values.items()
    }


def load_resume_checkpoint(path: Path, cfg: Config) -> dict[str, Any]:
    """The checkpoint ``daaf train --resume`` continues, refused unless its counts of training
    done are counts and ``cfg`` describes the same run (all but :data:`RESUME_MAY_CHANGE` and
    the ``train.*`` settings outside :data:`RESUME_SAME_TRAIN`). An "auto" keypoint score
    threshold in ``cfg`` becomes the number the run resolved it to when it started. Whether it
    holds every part of the training state, :func:`restore_training` checks."""
    state = load_checkpoint(path)
    for key in COUNTS:
        if key in state:
            _count(state[key], key, path)
    trained = _flat(checkpoint_config(state["config"], path).to_dict())
    if cfg.data.keypoint_score_threshold == "auto":  # the value this run resolved "auto" to
        cfg.data.keypoint_score_threshold = trained["data.keypoint_score_threshold"]
    asked = _flat(cfg.to_dict())
    changed = [key for key in trained if trained[key] != asked[key] and not _may_change(key)]
    if changed:
        then = ", ".join(f"{key}={trained[key]!r:.40}" for key in changed[:4])
        now = ", ".join(f"{key}={asked[key]!r:.40}" for key in changed[:4])
        more = f" (and {len(changed) - 4} more settings)" if len(changed) > 4 else ""
        raise DaafError(
            f"{path}: trained with {then}, but this run asks for {now}{more}; resume with the run's "
            "own config.yaml, or train into another --out"
        )
    return state


def restore_training(
    path: Path,
    state: dict[str, Any],
    model: nn.Module,
    num_classes: int,
    parts: dict[str, Callable[[Any], Any]],
) -> None:
    """Load a :func:`load_resume_checkpoint` state into the run: the model's weights, then
    ``parts`` (key -> the loader of ``state[key]``: optimizer, scheduler, ...); one DaafError
    line naming the parts the file lacks, or the first that does not fit the run."""
    missing = [key for key in parts if key not in state]
    if missing:
        raise DaafError(
            f"{path}: cannot resume: no {', '.join(missing)} in this checkpoint "
            "(not written by daaf train, or damaged)"
        )
    if state["num_classes"] != num_classes:
        raise DaafError(
            f"{path}: trained on {state['num_classes']} identities, but this run's dataset has "
            f"{num_classes}; resume with the run's own data settings"
        )
    check_state_dict(model, state["model"], path, "model")
    model.load_state_dict(state["model"])
    for key, load in parts.items():
        try:
            load(state[key])
        except MISFITS as exc:
            raise DaafError(
                f"{path}: its {key} does not fit this run ({describe_exception(exc)})"
            ) from None
