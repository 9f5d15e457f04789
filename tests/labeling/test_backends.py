"""Backends: the torchvision offline message, random weights end to end, optional packages."""

import json
import urllib.error

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from daaf.cli import main
from daaf.errors import DaafError
from daaf.labeling.backends import build_labeler

EXPECTED_FILES = (
    "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth",
    "keypointrcnn_resnet50_fpn_coco-fc266e95.pth",
)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty torch cache and a network that refuses every download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_offline_without_weights_names_each_file_and_where_to_put_it(offline, tmp_path):
    with pytest.raises(DaafError) as info:
        build_labeler("torchvision", weights="pretrained", weights_dir=tmp_path / "weights")
    message = str(info.value)
    for name in EXPECTED_FILES:
        assert name in message
    assert str(offline) in message and str(tmp_path / "weights") in message
    assert "https://download.pytorch.org/models/" in message


def test_offline_cli_stops_before_writing_anything(offline, tmp_path, market):
    out = tmp_path / "store"
    result = CliRunner().invoke(
        main, ["label", "--dataset", "market1501", "--root", str(market), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert EXPECTED_FILES[0] in result.output and EXPECTED_FILES[1] in result.output
    assert not out.exists()


def test_weight_files_are_taken_from_weights_dir_without_network(offline, tmp_path):
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    for name in EXPECTED_FILES:
        torch.save({"not": torch.zeros(1)}, weights_dir / name)
    with pytest.raises(
        DaafError, match="maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth: does not match MaskRCNN"
    ):
        build_labeler("torchvision", weights="pretrained", weights_dir=weights_dir, min_size=64)


def test_random_weights_cli_end_to_end_writes_a_valid_store(tmp_path, market):
    from daaf.data.annotations import AnnotationStore, validate_store
    from daaf.data.datasets import build_dataset

    out = tmp_path / "store"
    args = ["label", "--dataset", "market1501", "--root", str(market), "--out", str(out),
            "--weights", "random", "--min-size", "128", "--splits", "query,gallery",
            "--workers", "0", "--batch-size", "3", "--device", "cpu"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "images/s" in result.output and "gallery" in result.output

    dataset = build_dataset("market1501", market)
    dataset.train = []  # only query and gallery were labeled
    assert validate_store(out, dataset) == []
    store = AnnotationStore(out)
    assert len(store) == 3 and store.labeler["weights"] == "random"
    keypoints = store.keypoints(list(store.manifest["image_path"]))
    scores = keypoints[..., 2]
    assert ((scores >= 0) & (scores <= 1)).all()
    store.close()
    report = json.loads((out / "label_report.json").read_text())
    assert report["splits"]["gallery"]["images"] == 2 and report["images_labeled"] == 3


def test_random_weights_are_the_same_in_every_build():
    first = build_labeler("torchvision", weights="random", min_size=64, seed=3)
    second = build_labeler("torchvision", weights="random", min_size=64, seed=3)
    for a, b in zip(
        first.mask_model.state_dict().values(), second.mask_model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
    assert first.describe()["weights"] == "random" and first.describe()["min_size"] == 64
    image = np.random.default_rng(0).integers(0, 256, (128, 64, 3), dtype=np.uint8)
    result = first.label([image])[0]
    assert result.mask.shape == (128, 64) and result.keypoints.shape == (17, 3)


def test_detectron2_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "detectron2", None)
    with pytest.raises(
        DaafError,
        match="pip install --no-build-isolation 'git\\+https://github.com/facebookresearch/detectron2.git'",
    ):
        build_labeler("detectron2", weights="random")


def test_mmpose_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "mmpose", None)
    monkeypatch.setitem(__import__("sys").modules, "mmcv._ext", None)
    with pytest.raises(DaafError, match="mmcv==2.1.0.*mmpose==1.3.2.*xtcocotools"):
        build_labeler("mmpose", weights="random")


def test_detectron2_backend_runs_with_random_weights():
    pytest.importorskip("detectron2")
    labeler = build_labeler("detectron2", weights="random", min_size=64)
    assert labeler.describe()["weights"] == "random"


def test_mmpose_backend_runs_with_random_weights():
    pytest.importorskip("mmpose")
    labeler = build_labeler("mmpose", weights="random", min_size=64)
    image = np.zeros((128, 64, 3), np.uint8)
    assert labeler.label([image])[0].keypoints.shape == (17, 3)


def test_readme_shows_the_mmpose_install_recipe_of_the_error_message(monkeypatch):
    from pathlib import Path

    from daaf.labeling.mmpose_backend import INSTALL, INSTALL_STEPS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Labeling backends", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [line.strip() for line in block.strip().splitlines()] == list(INSTALL_STEPS)
    assert "pip install 'setuptools==80.10.2'" in INSTALL_STEPS
    assert "sed -i 's/-std=c++17/-std=c++20/' mmcv-2.1.0/setup.py" in INSTALL_STEPS
    monkeypatch.setitem(__import__("sys").modules, "mmpose", None)
    with pytest.raises(DaafError) as error:
        build_labeler("mmpose", weights="random")
    assert str(error.value).endswith(f"install with: {INSTALL}")
