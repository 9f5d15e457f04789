"""Training configuration: plain dataclasses filled from YAML files and ``key=value`` overrides.

A YAML file may name a ``_base_`` file (relative to itself) whose values it overrides; command
line overrides use dotted keys (``optim.lr=1e-4``) and YAML syntax for values. Any key that is
not a field below is an error that names it, so a typo never silently keeps a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from daaf.errors import DaafError


@dataclass
class DataConfig:
    dataset: str = "market1501"
    root: str = ""
    annotations: str = ""  # annotation store folder (daaf label --out, or DIR/annotations)
    height: int = 256
    width: int = 128
    # TriNet resizes to a larger size and random-crops (height, width); null = resize directly.
    pre_crop_size: list[int] | None = None
    pad: int = 10  # BoT: pad by this many pixels, then random-crop back (0 disables)
    flip_prob: float = 0.5
    erasing_prob: float = 0.5
    pixel_mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    pixel_std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    num_identities: int = 16  # P of the P x K sampler
    num_instances: int = 4  # K of the P x K sampler
    workers: int = 4
    heatmap_sigma: float = 2.0  # Gaussian sigma in output-map pixels
    keypoint_score_threshold: float | str = "auto"  # below: no peak; auto: the labeler's value
    test_batch_size: int = 128


@dataclass
class ModelConfig:
    base: str = "bot"  # bot | trinet
    depth: int = 50  # ResNet-18/34/50/101
    pretrained: str = "imagenet"  # imagenet | none | PATH to a state_dict
    last_stride: int = 1
    trinet_dims: list[int] = field(default_factory=lambda: [1024, 128])
    hab: bool = False
    pab: bool = False
    pab_target: str = "keypoints"  # keypoints | part_images (six horizontal stripes)
    pab_groups: Any = "6"  # all | 4 | 6 | 7 | each | custom list of lists of keypoint indices
    pab_grouped: bool = True  # false: all channels predict all 17 maps (Table 5, w/o group)
    pab_shared_decoder: bool = True  # false: one decoder per group (Table 7)
    num_parts: int = 6  # stripes for pab_target=part_images
    decoder_channels: int = 64
    deconv_kernel: int = 3  # 3 (paper) or 2 (authors' BoT code)
    # The paper names no nonlinearity; linear deconvolutions are the authors' PyTorch code. With
    # BN + ReLU (true, as their TF code) the PAB collapses to flat maps: fitting one batch of 16
    # synthetic images for 100 Adam steps, PCK 0.03 with BN + ReLU vs 0.98 linear.
    decoder_norm: bool = False


@dataclass
class LossConfig:
    branch_loss: str = "l2"  # l2 (paper eq. 2 and 4) | mse (authors' BoT code)
    hab_weight: float = 0.003
    pab_weight: float = 0.003
    label_smoothing: float = 0.1
    triplet_margin: float | None = 0.3  # null = soft margin (TriNet)
    center_weight: float = 0.0005
    center_lr: float = 0.5
    id_weight: float = 1.0
    triplet_weight: float = 1.0


@dataclass
class OptimConfig:
    name: str = "adam"  # adam | sgd
    lr: float = 3.5e-4
    weight_decay: float = 5e-4
    momentum: float = 0.9
    schedule: str = "warmup_multistep"  # warmup_multistep (BoT) | exponential (TriNet)
    warmup_epochs: int = 10
    warmup_factor: float = 0.01
    milestones: list[int] = field(default_factory=lambda: [40, 70])
    gamma: float = 0.1
    decay_start_iter: int = 15000  # exponential: decay from here ...
    decay_end_iter: int = 25000  # ... to lr * decay_final_factor here
    decay_final_factor: float = 0.001


@dataclass
class TrainConfig:
    epochs: int = 120
    iters_per_epoch: int | None = None  # null: one pass over the training identities
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # used on CUDA only (bf16 where supported)
    channels_last: bool = True  # used on CUDA only
    checkpoint_period: int = 10  # epochs
    eval_period: int = 0  # epochs; 0 disables periodic evaluation
    log_period: int = 20  # iterations


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _merge(cfg: Any, values: dict[str, Any], where: str) -> None:
    """Set ``values`` on dataclass ``cfg`` recursively; unknown keys raise naming ``where``."""
    known = {f.name: f for f in dataclasses.fields(cfg)}
    for key, value in values.items():
        if key not in known:
            raise DaafError(f"{where}: unknown config key {key!r}; known keys: {', '.join(known)}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise DaafError(f"{where}: {key!r} must be a mapping, got {value!r}")
            _merge(current, value, f"{where}: {key}")
        else:
            setattr(cfg, key, _coerce(current, value, f"{where}: {key}"))


def _coerce(current: Any, value: Any, where: str) -> Any:
    """YAML reads ``1e-4`` as a string (its floats need a dot): numbers follow the default's type."""
    if isinstance(current, float) and isinstance(value, (int, str)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise DaafError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(current, int) and not isinstance(current, bool) and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise DaafError(f"{where}: expected an integer, got {value!r}") from None
    return value


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> list[tuple[dict[str, Any], str]]:
    """The chain of (values, file name) from the root ``_base_`` down to ``path``."""
    path = path.resolve()
    if path in seen:
        raise DaafError(f"{path}: circular _base_ chain")
    if not path.is_file():
        raise DaafError(f"config file {path} does not exist")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise DaafError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(values, dict):
        raise DaafError(f"{path}: a config file must be a mapping of sections")
    base = values.pop("_base_", None)
    chain = _read_yaml(path.parent / base, seen + (path,)) if base else []
    return chain + [(values, str(path))]


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"optim.lr=1e-4"`` -> (["optim", "lr"], 0.0001); values parse as YAML."""
    if "=" not in item:
        raise DaafError(f"override {item!r} must look like section.key=value")
    key, raw = item.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Defaults, then the YAML chain of ``path``, then dotted ``overrides``."""
    cfg = Config()
    if path is not None:
        for values, where in _read_yaml(Path(path)):
            _merge(cfg, values, where)
    for item in overrides:
        keys, value = parse_override(item)
        nested: dict[str, Any] = {keys[-1]: value}
        for key in reversed(keys[:-1]):
            nested = {key: nested}
        _merge(cfg, nested, f"override {item!r}")
    return cfg


def config_from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a :class:`Config` from :meth:`Config.to_dict` output (e.g. from a checkpoint)."""
    cfg = Config()
    _merge(cfg, values, "checkpoint config")
    return cfg


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
