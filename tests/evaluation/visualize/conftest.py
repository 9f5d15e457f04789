"""Tiny DAAF models (ResNet-18, random weights) for the visualisation tests."""

import pytest
import torch

from daaf.config import Config
from daaf.models import build_model


def tiny_config(**model) -> Config:
    cfg = Config()
    cfg.data.height, cfg.data.width = 64, 32
    cfg.model.depth, cfg.model.pretrained, cfg.model.decoder_channels = 18, "none", 8
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


@pytest.fixture(scope="module")
def daaf_model():
    torch.manual_seed(0)
    return build_model(tiny_config(hab=True, pab=True), 8).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 64, 32, generator=torch.Generator().manual_seed(1))
