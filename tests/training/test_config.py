"""Configs: _base_ chains, dotted overrides, number coercion and errors that name the key."""

import pytest

from daaf.errors import DaafError
from daaf.training.config import config_from_dict, load_config


def test_base_chain_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  depth: 34\n  hab: true\noptim:\n  lr: 0.1\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\nmodel:\n  depth: 18\n")
    cfg = load_config(tmp_path / "child.yaml", ["optim.lr=1e-4", "model.pab_groups=[[0, 1], [2]]"])
    assert cfg.model.depth == 18 and cfg.model.hab is True
    assert cfg.optim.lr == pytest.approx(1e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.model.pab_groups == [[0, 1], [2]]
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.deph=18"], "unknown config key 'deph'"),
        (["modle.depth=18"], "unknown config key 'modle'"),
        (["optim.lr=fast"], "optim: lr: expected a number, got 'fast'"),
        (["optim"], "must look like section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(DaafError, match=message):
        load_config(None, overrides)


def test_bad_files_are_named(tmp_path):
    (tmp_path / "typo.yaml").write_text("train:\n  epochs: 3\n  epoch: 4\n")
    with pytest.raises(DaafError, match=r"typo.yaml: train: unknown config key 'epoch'"):
        load_config(tmp_path / "typo.yaml")
    (tmp_path / "loop.yaml").write_text("_base_: loop.yaml\n")
    with pytest.raises(DaafError, match="circular _base_"):
        load_config(tmp_path / "loop.yaml")
    with pytest.raises(DaafError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_unknown_key_in_a_base_file_names_that_file(tmp_path):
    (tmp_path / "base.yaml").write_text("optim:\n  lr: 0.1\n  lr_decay: 0.5\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\noptim:\n  lr: 0.2\n")
    with pytest.raises(DaafError, match=r"base.yaml: optim: unknown config key 'lr_decay'"):
        load_config(tmp_path / "child.yaml")
    (tmp_path / "base.yaml").write_text("optim:\n  lr: 0.1\n")
    with pytest.raises(DaafError, match=r"override 'optim.lrr=1': optim: unknown config key 'lrr'"):
        load_config(tmp_path / "child.yaml", ["optim.lrr=1"])
    assert load_config(tmp_path / "child.yaml", ["optim.lr=0.3"]).optim.lr == 0.3
