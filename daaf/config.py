"""A run's configuration: plain dataclasses filled from YAML files and ``key=value`` overrides,
or read back from the config a checkpoint or export records (:func:`recorded_config`).

A YAML file may name a ``_base_`` file (relative to itself) whose values it overrides; command
line overrides use dotted keys (``optim.lr=1e-4``) and YAML syntax for values. Any key that is
not a field below is an error that names it, so a typo never silently keeps a default; every
value is checked against its field's type hint and rules (:mod:`daaf.utils.config_fields`) as it
is read, so a wrong type or range stops before anything is built or written.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from daaf.data.config import DataConfig
from daaf.errors import ConfigError, DaafError, short_repr
from daaf.models.config import ModelConfig, check_input_grid
from daaf.utils.config_fields import check_relations, merge_values, set_where, setting
from daaf.utils.options import DEVICE_NAMES, DEVICE_PATTERN
from daaf.utils.yaml_load import read_yaml_file

MAX_CONFIG_BYTES = 1 << 20  # a daaf config is a few KB; the presets are under 2 KB
# Settings added after files were written, with the value that reproduces what a file without
# them was trained with (the default may differ): section -> {key: value}.
LEGACY_VALUES = {
    "model": {"decoder_init": "pytorch"},
    "loss": {"keypoint_weighting": "all"},
    "optim": {"branch_weight_decay": None},  # one group, optim.weight_decay on every parameter
}


@dataclass
class LossConfig:
    branch_loss: Literal["l2", "mse"] = "l2"  # l2 (paper eq. 2 and 4) | mse (authors' BoT code)
    # The PAB target channels its loss counts: all (the paper: an invisible keypoint's all-zero
    # map is a target too) | visible (only the keypoints whose heatmap has a peak, as pose
    # codebases' target_weight)
    keypoint_weighting: Literal["all", "visible"] = "all"
    hab_weight: float = setting(0.003, min=0)
    pab_weight: float = setting(0.003, min=0)
    label_smoothing: float = setting(0.1, min=0, max=1)
    triplet_margin: float | None = setting(0.3, min=0)  # null = soft margin (TriNet)
    center_weight: float = setting(0.0005, min=0)
    center_lr: float = setting(0.5, min=0)
    id_weight: float = setting(1.0, min=0)
    triplet_weight: float = setting(1.0, min=0)
    # How the branch losses are weighed against the ReID loss (daaf/training/balance.py,
    # docs/training.md): none (the paper's fixed lambdas) | grad_ratio (each lambda adapted so
    # that the branch's gradient into the shared backbone is balance_ratio times the ReID
    # loss's, at each branch-health measurement) | uncertainty (Kendall et al.'s learned
    # log-variances, trained at uncertainty_lr)
    branch_balance: Literal["none", "grad_ratio", "uncertainty"] = "none"
    balance_ratio: float = setting(0.1, above=0, max=10)
    uncertainty_lr: float = setting(0.01, above=0, max=1)


@dataclass
class OptimConfig:
    name: Literal["adam", "sgd"] = "adam"
    lr: float = setting(3.5e-4, above=0)
    weight_decay: float = setting(5e-4, min=0)
    # The attention branches' own decay (HAB and PAB, a parameter group of their own); null:
    # weight_decay, one group for the whole network. Only the branch losses train them, and
    # Adam's coupled decay matches or outweighs their gradient, pulling the decoders to the
    # all-zero map (docs/paper.md).
    branch_weight_decay: float | None = setting(0.0, min=0)
    momentum: float = setting(0.9, min=0, max=1)
    # warmup_multistep (BoT) | exponential (TriNet)
    schedule: Literal["warmup_multistep", "exponential"] = "warmup_multistep"
    warmup_epochs: int = setting(10, min=0)
    warmup_factor: float = setting(0.01, above=0, max=1)
    milestones: list[int] = setting(factory=lambda: [40, 70], min=0)
    gamma: float = setting(0.1, above=0)
    decay_start_iter: int = setting(15000, min=0)  # exponential: decay from here ...
    # ... to lr * decay_final_factor here
    decay_end_iter: int = setting(25000, min=1, above_field="decay_start_iter")
    decay_final_factor: float = setting(0.001, above=0)


@dataclass
class TrainConfig:
    epochs: int = setting(120, min=1, max=10**6)  # the paper trains 120
    # null: one pass over the training identities
    iters_per_epoch: int | None = setting(None, min=1, max=10**6)
    seed: int = setting(0, min=0, max=2**32 - 1)  # numpy's seeds are 32-bit
    device: str = setting("auto", pattern=DEVICE_PATTERN, allowed=DEVICE_NAMES)
    amp: bool = True  # used on CUDA only (bf16 where supported)
    channels_last: bool = True  # used on CUDA only
    # torch.compile the training step's model: compiles during the first steps (a minute or more),
    # then steps faster where the hardware allows (benchmarks/train_step.py --compile)
    compile: bool = False
    checkpoint_period: int = setting(10, min=1)  # epochs
    eval_period: int = setting(0, min=0)  # epochs; 0 disables periodic evaluation
    log_period: int = setting(20, min=1)  # iterations
    # Branch-health metrics (losses beside trivial maps, gradients into the shared backbone)
    # every this many iterations, and the warning for a branch that learns nothing; 0: off.
    health_period: int = setting(20, min=0)
    # How long a process waits for the others at a collective under torchrun; rank 0's periodic
    # evaluation (MSMT17: many minutes) happens while the others wait at a barrier.
    ddp_timeout_minutes: float = setting(120.0, above=0, max=7 * 24 * 60)  # a week at most


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_relations(cfg: Config, sources: dict[str, str]) -> Config:
    """``cfg`` once the rules between fields hold (see :func:`check_relations`), the input
    size divides into the branches' output grid, and grad_ratio has measurements to adapt at."""
    for section in dataclasses.fields(cfg):
        check_relations(getattr(cfg, section.name), f"{section.name}.", sources)
    check_input_grid(cfg.data, cfg.model, sources)
    if cfg.loss.branch_balance == "grad_ratio" and cfg.train.health_period == 0:
        where = set_where(("loss.branch_balance", "train.health_period"), sources)
        raise ConfigError(
            f"{where}: loss.branch_balance=grad_ratio adapts the branch weights at "
            "each branch-health measurement: train.health_period must be >= 1, got 0"
        )
    return cfg


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[dict[str, Any], str]]:
    """The chain of (values, file name) from the root ``_base_`` down to ``path``."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"{path}: circular _base_ chain")
    values = read_yaml_file(path, MAX_CONFIG_BYTES)
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of sections")
    base = values.pop("_base_", None)
    if base is not None and not (isinstance(base, str) and base.strip()):
        raise ConfigError(
            f"{path}: _base_ must be the path of a YAML file (relative to this one), "
            f"got {short_repr(base)}"
        )
    chain = _read_yaml(path.parent / base, seen + (path,)) if base else []
    return chain + [(values, str(path))]


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-4"`` -> (["optim", "lr"], 0.0001); values parse as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {short_repr(item)} must look like section.key=value")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0]
        raise ConfigError(
            f"override {short_repr(item)}: the value is not valid YAML ({problem})"
        ) from None
    return key.strip().split("."), value


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Defaults, then the YAML chain of ``path``, then dotted ``overrides``; the rules between
    fields are checked on the result."""
    cfg, sources = Config(), {}
    if path is not None:
        for values, where in _read_yaml(Path(path)):
            merge_values(cfg, values, where, sources)
    for item in overrides:
        keys, value = parse_override(item)
        nested: dict[str, Any] = {keys[-1]: value}
        for key in reversed(keys[:-1]):
            nested = {key: nested}
        merge_values(cfg, nested, f"override {short_repr(item)}", sources)
    return _check_relations(cfg, sources)


def config_from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a :class:`Config` from :meth:`Config.to_dict` output (e.g. from a checkpoint)."""
    cfg, sources = Config(), {}
    merge_values(cfg, values, "checkpoint config", sources)
    return _check_relations(cfg, sources)


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def recorded_config(values: Any, path: Path) -> Config:
    """The :class:`Config` a checkpoint or export at ``path`` records, every value checked by
    the config's own rules (one DaafError line naming the file), with :data:`LEGACY_VALUES`
    where it lacks them; the dataset name is kept as written, registered in this process or
    not, and ``model.pretrained`` is "none" (the file's weights follow)."""
    if not isinstance(values, dict):
        raise DaafError(
            f"{path}: its config is a {type(values).__name__}, not a mapping of sections"
        )
    values = copy.deepcopy(values)
    for section, known in LEGACY_VALUES.items():
        if isinstance(values.get(section), dict):
            values[section] = {**known, **values[section]}
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
    cfg.model.pretrained = "none"
    return cfg
