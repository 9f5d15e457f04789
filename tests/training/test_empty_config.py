"""A config that names no dataset folder stops at that, in one line, before daaf train reads the
current folder as the dataset or fetches ImageNet weights for a model it cannot train."""

import pytest

import daaf.models.backbone as backbone


@pytest.mark.parametrize("content", ["{}\n", "data: {num_identities: 4, num_instances: 2}\n"])
def test_a_config_without_data_root_says_so_before_any_weights(
    tiny_dataset, tmp_path, monkeypatch, content, cli
):
    fetched = []
    monkeypatch.setattr(backbone, "_imagenet_state_dict", lambda weights: fetched.append(weights))
    monkeypatch.chdir(tiny_dataset)  # a Market-1501 layout in the current folder, as a trap
    config = tmp_path / "bare.yaml"
    config.write_text(content)
    out = tmp_path / "run"
    result = cli("train", "--config", config, "--out", out, ok=False)
    assert result.exit_code == 2, result.output
    assert result.output == (
        "Error: data.root is not set: the folder holding the market1501 dataset "
        "(data.root=DIR after the config)\n"
    )
    assert fetched == [] and not out.exists()
