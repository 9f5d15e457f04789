"""ModelMeta: the mapping an export stores, read back as written, and refused in one line."""

import pytest

from daaf.config import Config
from daaf.errors import DaafError
from daaf.models import ModelConfig, ModelMeta

EXPORT_KEYS = [
    "height",
    "width",
    "pixel_mean",
    "pixel_std",
    "embedding_dim",
    "metric",
    "base",
    "depth",
]


@pytest.mark.parametrize(("base", "metric"), [("bot", "cosine"), ("trinet", "euclidean")])
def test_the_meta_an_export_writes_reads_back_as_written(base, metric):
    cfg = Config()
    cfg.model.base = base
    meta = ModelMeta.from_config(cfg.data, cfg.model, embedding_dim=512)
    stored = meta.to_dict()
    assert list(stored) == EXPORT_KEYS  # the keys and order of every export so far
    assert (stored["height"], stored["metric"], stored["depth"]) == (256, metric, 50)
    assert ModelMeta.from_dict(stored, "model_state.pt") == meta


def test_flip_is_read_and_written_only_when_set():
    stored = {**ModelMeta.from_config(Config().data, ModelConfig()).to_dict(), "flip": True}
    meta = ModelMeta.from_dict(stored, "model.ts")
    assert meta.flip and meta.to_dict() == stored


def test_a_meta_without_the_input_size_is_one_line():
    with pytest.raises(DaafError, match=r"^m.pt: its meta has no height, width \(not written"):
        ModelMeta.from_dict(
            {"pixel_mean": [0] * 3, "pixel_std": [1] * 3, "metric": "cosine"}, "m.pt"
        )
