"""``ModelMeta``: how to feed a model and compare its embeddings, stored beside its weights.

An export keeps it as a plain mapping (``meta`` in model_state.pt, ``daaf_meta.json`` inside
model.ts), as timm keeps a ``PretrainedCfg`` beside its weights; :meth:`ModelMeta.from_dict`
checks each value by the rules of its config field before anything reads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daaf.data.config import DataConfig
from daaf.errors import ConfigError, DaafError
from daaf.models.config import ModelConfig
from daaf.utils.config_fields import checked_value

META_FILE = "daaf_meta.json"  # the meta inside model.ts (a torch.jit extra file)
METRICS = ("euclidean", "cosine")  # daaf.evaluation.distance.METRICS
INPUT_KEYS = ("height", "width", "pixel_mean", "pixel_std")  # checked as DataConfig's fields


def default_metric(model: ModelConfig) -> str:
    """BoT is tested on the L2-normalised post-BN feature (cosine); TriNet on Euclidean distance."""
    return "cosine" if model.base == "bot" else "euclidean"


def positive_int(value: Any, key: str, path: Path | str) -> int:
    """``value`` if it is an integer >= 1; DaafError naming ``path`` and ``key`` otherwise."""
    if type(value) is not int or value < 1:
        raise DaafError(f"{path}: {key} must be a positive integer, got {value!r:.40}")
    return value


@dataclass(frozen=True)
class ModelMeta:
    """The input size (``height`` x ``width``), the normalisation (``pixel_mean``,
    ``pixel_std``), the embedding's dimension and distance ``metric``, and the network
    (``base``, ``depth``) of a model; ``flip``: average each embedding with its mirror's."""

    height: int
    width: int
    pixel_mean: list[float]
    pixel_std: list[float]
    embedding_dim: int | None = None
    metric: str = "euclidean"
    base: str | None = None
    depth: int | None = None
    flip: bool = False

    @classmethod
    def from_config(
        cls, data: DataConfig, model: ModelConfig, embedding_dim: int | None = None
    ) -> ModelMeta:
        """The meta of the network ``model`` describes, fed as ``data`` describes."""
        return cls(
            height=data.height,
            width=data.width,
            pixel_mean=list(data.pixel_mean),
            pixel_std=list(data.pixel_std),
            embedding_dim=embedding_dim,
            metric=default_metric(model),
            base=model.base,
            depth=model.depth,
        )

    @classmethod
    def from_dict(cls, meta: Any, path: Path | str) -> ModelMeta:
        """The meta a file at ``path`` stores, each value checked by the rules of its config
        field; one DaafError line naming the file and the first value that is wrong."""
        if not isinstance(meta, dict) or not meta:
            raise DaafError(f"{path}: its meta is {meta!r:.40}, not the mapping daaf export writes")
        absent = [key for key in (*INPUT_KEYS, "metric") if key not in meta]
        if absent:
            raise DaafError(
                f"{path}: its meta has no {', '.join(absent)} (not written by daaf export)"
            )
        try:
            inputs = {
                key: checked_value(DataConfig, key, meta[key], f"meta.{key}", str(path))
                for key in INPUT_KEYS
            }
        except ConfigError as exc:
            raise DaafError(str(exc)) from None
        if meta["metric"] not in METRICS:
            raise DaafError(f"{path}: meta.metric must be one of {', '.join(METRICS)}")
        dim = meta.get("embedding_dim")
        return cls(
            **inputs,
            embedding_dim=None if dim is None else positive_int(dim, "meta.embedding_dim", path),
            metric=meta["metric"],
            base=meta.get("base"),
            depth=meta.get("depth"),
            flip=bool(meta.get("flip", False)),
        )

    def same_input(self, other: ModelMeta) -> bool:
        """Whether ``other`` takes the same input size and normalisation."""
        return all(getattr(self, key) == getattr(other, key) for key in INPUT_KEYS)

    def to_dict(self) -> dict[str, Any]:
        """The mapping an export stores (``flip`` only when set: daaf export never sets it)."""
        values = dataclasses.asdict(self)
        if not self.flip:
            del values["flip"]
        return values
