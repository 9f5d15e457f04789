"""Training checkpoints, loaded safely and checked before use.

Every file loads through :func:`daaf.models.state.load_daaf_file` (``weights_only=True``), so
none runs code. What it holds is then checked before anything is built from it, each problem one
DaafError line naming the file: its keys and their types; its whole config, through the config
fields' own rules (:func:`recorded_config`, which keeps the dataset name as written, so that a
checkpoint of a dataset registered in another process loads without the registry); and, for a
resumed run, every part of the training state against the run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from daaf.config import Config, recorded_config
from daaf.errors import DaafError
from daaf.models.state import check_state_dict, checked_contents, load_daaf_file
from daaf.utils.safe_load import describe_exception

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
# Reading these cannot go wrong in a way worth a traceback: the file does not fit the run.
MISFITS = (KeyError, IndexError, TypeError, ValueError, RuntimeError, AttributeError)


def _count(value: Any, key: str, path: Path) -> int:
    if type(value) is not int or value < 0:
        raise DaafError(f"{path}: {key} must be an integer >= 0, got {value!r:.40}")
    return value


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A daaf training checkpoint (:func:`load_daaf_file`) once it holds the keys daaf writes
    (:func:`checked_contents`) and a config that passes :func:`recorded_config`."""
    path = Path(path)
    state = load_daaf_file(path)
    checked_contents(state, path)
    recorded_config(state["config"], path)
    return state


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
    trained = _flat(recorded_config(state["config"], path).to_dict())
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
