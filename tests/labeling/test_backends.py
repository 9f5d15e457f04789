"""Backends: the torchvision offline message, random weights end to end, optional packages."""

import json
import pickle
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch

from daaf.data.annotations.schema import STATUS_OK
from daaf.errors import DaafError
from daaf.labeling.backends import build_labeler
from daaf.labeling.selection import ANY_CLASS
from daaf.utils.safe_load import REFUSED

from .conftest import label_args

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


def test_offline_cli_stops_before_writing_anything(offline, tmp_path, market, cli):
    out = tmp_path / "store"
    result = cli("label", "--dataset", "market1501", "--root", market, "--out", out, ok=False)
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


def test_random_weights_cli_end_to_end_writes_a_valid_store(tmp_path, market, cli):
    from daaf.data.annotations import AnnotationStore, validate_store
    from daaf.data.datasets import build_dataset

    out = tmp_path / "store"
    args = label_args(
        market,
        out,
        "--weights",
        "random",
        "--min-size",
        "128",
        "--splits",
        "query,gallery",
        "--workers",
        "0",
        "--batch-size",
        "3",
        "--device",
        "cpu",
    )
    result = cli(*args)
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
    assert result.status == 0 and np.isfinite(result.keypoints[:, :2]).all()  # paired at any IoU
    assert first.describe()["selection"].endswith("keypoints matched by box IoU >= 0.0")


@pytest.mark.parametrize(("backend", "absent"), [("detectron2", "detectron2"), ("mmpose", "mmcv")])
def test_missing_backend_names_the_module_and_the_install_script(backend, absent, monkeypatch):
    monkeypatch.setitem(sys.modules, absent, None)
    with pytest.raises(DaafError) as error:
        build_labeler(backend, weights="random")
    message = str(error.value)
    assert message.startswith(f"--backend {backend} cannot import {absent}")
    assert message.endswith(f"; install the backend with: daaf install-backend {backend}")


# A backend package that imports, but one of whose modules needs pkg_resources (detectron2's
# model zoo, mmengine), as with setuptools >= 81: every module daaf imports from it does so.
FAKE_PACKAGES = {
    "detectron2": ["model_zoo", "checkpoint", "config", "modeling", "data", "data/transforms"],
    "mmcv": ["_ext"],
    "mmpose": ["apis"],
}


@pytest.fixture
def fake_packages(tmp_path, monkeypatch):
    """``install(body)`` puts importable FAKE_PACKAGES on sys.path, each listed module holding
    ``body``; they are forgotten after the test."""

    def install(body: str) -> None:
        for package, modules in FAKE_PACKAGES.items():
            (tmp_path / package).mkdir()
            (tmp_path / package / "__init__.py").write_text('__version__ = "0.0"\n')
            for module in modules:
                (tmp_path / package / module).mkdir(parents=True, exist_ok=True)
                (tmp_path / package / module / "__init__.py").write_text(body)
        (tmp_path / "mmcv" / "_ext" / "__init__.py").write_text("")
        monkeypatch.syspath_prepend(str(tmp_path))
        for name in [n for n in sys.modules if n.split(".")[0] in FAKE_PACKAGES]:
            monkeypatch.delitem(sys.modules, name)

    yield install
    for name in [n for n in sys.modules if n.split(".")[0] in FAKE_PACKAGES]:
        del sys.modules[name]


@pytest.fixture
def without_pkg_resources(fake_packages, monkeypatch):
    fake_packages("import pkg_resources\n")
    monkeypatch.setitem(sys.modules, "pkg_resources", None)  # as setuptools >= 81


def test_mmpose_offline_names_the_pose_checkpoint_and_the_segmenter_file(
    offline, fake_packages, tmp_path
):
    fake_packages("def init_model(*args, **kwargs):\n    raise AssertionError\n")
    with pytest.raises(DaafError) as error:
        build_labeler("mmpose", weights="pretrained", weights_dir=tmp_path / "weights")
    message = str(error.value)
    assert message.startswith("mmpose labeler: weight files not found and not downloadable")
    assert f"{EXPECTED_FILES[0]} (from https://download.pytorch.org/models/" in message
    assert "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth (from https://" in message


@pytest.mark.parametrize("backend", ["detectron2", "mmpose"])
def test_import_failure_inside_the_backend_is_one_line_naming_it_and_the_script(
    backend, without_pkg_resources, tmp_path, market, cli
):
    with pytest.raises(DaafError) as error:
        build_labeler(backend, weights="random")
    assert str(error.value).startswith(f"--backend {backend} cannot import pkg_resources (")
    assert str(error.value).endswith(f"install the backend with: daaf install-backend {backend}")

    out = tmp_path / "store"
    args = label_args(market, out, "--backend", backend, "--weights", "random")
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {error.value}"
    assert not out.exists()


def test_readme_and_errors_give_the_install_command_and_nothing_else():
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    section = readme.split("## Labeling backends", 1)[1].split("\n## ", 1)[0]
    for backend in ("detectron2", "mmpose"):
        assert f"`daaf install-backend {backend}`" in section
    assert "pip install" not in section and "```" not in section
    assert "scripts/install_backend.sh" not in readme


def test_detectron2_backend_runs_with_random_weights():
    pytest.importorskip("detectron2")
    labeler = build_labeler("detectron2", weights="random", min_size=64)
    info = labeler.describe()
    assert info["weights"] == "random" and info["min_person_score"] == labeler.min_score == 0.0
    assert info["box_score_threshold"] == 0.0 and info["person_classes"] == ANY_CLASS
    assert labeler.mask_model.roi_heads.box_predictor.test_score_thresh == 0.0
    image = np.random.default_rng(0).integers(0, 256, (128, 64, 3), dtype=np.uint8)
    assert labeler.label([image])[0].status == STATUS_OK  # any class at any score is a person


def test_mmpose_backend_runs_with_random_weights():
    pytest.importorskip("mmpose")
    labeler = build_labeler("mmpose", weights="random", min_size=64)
    info = labeler.describe()
    assert info["min_person_score"] == 0.0 and info["person_classes"] == ANY_CLASS
    # random weights are recorded by their seed, as the segmenter's are, never as a file used
    hrnet = "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth"
    assert info["weight_files"][-1] == {"name": hrnet, "seed": 0}
    assert all("seed" in entry and "sha256" not in entry for entry in info["weight_files"])
    image = np.random.default_rng(0).integers(0, 256, (128, 64, 3), dtype=np.uint8)
    result = labeler.label([image])[0]
    assert result.status == STATUS_OK and result.keypoints.shape == (17, 3)


@pytest.fixture(scope="module")
def pedestrians(tmp_path_factory):
    from daaf.data.synthetic.generate import SynthSpec, generate_dataset

    root = tmp_path_factory.mktemp("pedestrians")
    spec = SynthSpec(identities=4, cameras=2, images_per_identity=4, seed=0)
    generate_dataset(root, spec, workers=1, progress=False)
    return root


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["detectron2", "mmpose"])
def test_backend_labels_synthetic_pedestrians_into_a_valid_store(
    backend, pedestrians, tmp_path, cli
):
    pytest.importorskip(backend)
    from daaf.data.annotations import AnnotationStore
    from daaf.data.annotations.schema import (
        STATUS_LABELER_ERROR,
        STATUS_NO_PERSON,
        keypoints_off_image,
    )
    from daaf.data.datasets import SPLITS, build_dataset

    out = tmp_path / backend
    args = label_args(
        pedestrians,
        out,
        "--backend",
        backend,
        "--weights",
        "random",
        "--workers",
        "0",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        dataset="synthetic",
    )
    cli(*args)
    cli("annotations", "validate", out, "--root", pedestrians)

    dataset = build_dataset("synthetic", pedestrians)
    paths = [sample.path for split in SPLITS for sample in dataset.split(split)]
    report = json.loads((out / "label_report.json").read_text())
    assert report["images_labeled"] == len(paths) and report["labeler"]["backend"] == backend
    with AnnotationStore(out) as store:
        assert sorted(store.manifest["image_path"]) == sorted(paths)
        assert store.labeler["min_person_score"] == 0.0
        assert store.labeler["person_classes"] == ANY_CLASS
        status = store.status(paths)
        assert set(status) <= {STATUS_OK, STATUS_NO_PERSON, STATUS_LABELER_ERROR}
        assert (status == STATUS_OK).mean() >= 0.9  # any detection at any score is a person
        keypoints = store.keypoints(paths)
    assert not keypoints_off_image(keypoints, np.tile([128, 64], (len(paths), 1))).any()
    # mmpose's pose model sees every crop whole. detectron2's random keypoint detections score
    # exactly 0 (dropped by its strict `score > threshold`) or have logits so large that
    # heatmaps_to_keypoints asserts (status 3): its ok rows have no keypoints.
    if backend == "mmpose":
        assert np.isfinite(keypoints[status == STATUS_OK, :, 0]).any()
    failed = [entry["image_path"] for entry in report["labeler_errors"]]
    assert failed == [p for p, s in zip(paths, status, strict=True) if s == STATUS_LABELER_ERROR]


# detectron2's checkpointer as far as daaf uses it: ``load`` unpickles through ``_load_file``.
FAKE_CHECKPOINTER = """
import pickle

class DetectionCheckpointer:
    def __init__(self, model):
        self.model = model

    def _load_file(self, filename):
        with open(filename, "rb") as f:
            return pickle.load(f, encoding="latin1")

    def load(self, path):
        return self._load_file(path)

def init_model(config, checkpoint, device):  # mmpose.apis: mmengine unpickles the checkpoint
    import torch
    return torch.load(checkpoint, weights_only=False)
"""


def test_detectron2_weight_files_are_checked_before_detectron2_unpickles_them(
    fake_packages, tmp_path, payload
):
    from daaf.labeling.detectron2_backend import _safe_checkpointer

    fake_packages(FAKE_CHECKPOINTER)
    code, marker = payload
    crafted = tmp_path / "model_final_f10217.pkl"
    crafted.write_bytes(pickle.dumps({"model": {"w": np.zeros(2)}, "__author__": code}))
    with pytest.raises(DaafError) as error:
        _safe_checkpointer()(model=None).load(str(crafted))
    assert str(error.value) == f"{crafted}: {REFUSED}" and not marker.exists()
    zoo = tmp_path / "model_final_a6e10b.pkl"  # the model zoo's format: arrays under "model"
    zoo.write_bytes(pickle.dumps({"model": {"w": np.ones(2)}, "__author__": "zoo"}))
    assert _safe_checkpointer()(model=None).load(str(zoo))["__author__"] == "zoo"


def test_mmpose_checkpoint_is_checked_before_mmengine_unpickles_it(
    offline, fake_packages, tmp_path, malicious_pt
):
    fake_packages(FAKE_CHECKPOINTER)
    write, marker = malicious_pt
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    torch.save({}, weights_dir / EXPECTED_FILES[0])  # the segmenter's, found by name
    crafted = write(weights_dir / "td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth")
    with pytest.raises(DaafError) as error:
        build_labeler("mmpose", weights="pretrained", weights_dir=weights_dir)
    assert str(error.value) == f"{crafted}: {REFUSED}" and not marker.exists()


def test_torchvision_weights_that_would_run_code_are_refused_in_one_line(
    offline, tmp_path, market, malicious_pt, cli
):
    write, marker = malicious_pt
    crafted = write(tmp_path / "weights" / EXPECTED_FILES[0])
    torch.save({}, tmp_path / "weights" / EXPECTED_FILES[1])
    out = tmp_path / "store"
    args = label_args(market, out, "--weights-dir", str(tmp_path / "weights"), "--min-size", "64")
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {crafted}: {REFUSED}"]
    assert not marker.exists() and not out.exists()
