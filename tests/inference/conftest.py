"""A tiny exported model (ResNet-18 BoT, 64x32) written as `daaf export` writes model_state.pt."""

import pytest
import torch

from daaf.training.config import Config
from daaf.training.export import inference_meta, inference_network
from daaf.training.modeling import build_model


def write_model(folder, seed: int = 0):
    cfg = Config()
    cfg.data.height, cfg.data.width = 64, 32
    cfg.model.depth, cfg.model.pretrained, cfg.model.hab, cfg.model.pab = 18, "none", False, False
    torch.manual_seed(seed)
    base = inference_network(build_model(cfg, 8))
    meta = {**inference_meta(cfg), "embedding_dim": 512}
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "state_dict": base.state_dict(),
        "config": cfg.to_dict(),
        "num_classes": 8,
        "meta": meta,
    }
    torch.save(state, folder / "model_state.pt")
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("models") / "tiny model")


@pytest.fixture(scope="session")
def other_model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("models") / "other", seed=1)
