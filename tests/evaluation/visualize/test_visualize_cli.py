"""`daaf visualize` on the tiny dataset: a training checkpoint gets every picture, an export
Grad-CAM only."""

import json

import cv2
import pytest
import torch
from click.testing import CliRunner

from daaf.errors import DaafError
from daaf.evaluation.visualize.render import GRADCAM_ONLY_NOTE
from daaf.evaluation.visualize_command import visualize
from daaf.models import build_model
from daaf.utils.safe_load import REFUSED

from .conftest import tiny_config


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    """A training checkpoint of the base network (no HAB, no PAB, random weights)."""
    cfg = tiny_config(hab=False, pab=False)
    torch.manual_seed(0)
    state = {"model": build_model(cfg, 8).state_dict(), "config": cfg.to_dict(), "num_classes": 8}
    path = tmp_path_factory.mktemp("visualize") / "base.pt"
    torch.save(state, path)
    return path


def run(*args):
    return CliRunner().invoke(
        visualize, [*map(str, args), "--components", "2", "--n", "3", "--device", "cpu"]
    )


def test_checkpoint_gets_every_picture_and_the_score(
    tiny_dataset, trained_export, base_checkpoint, tmp_path, monkeypatch
):
    """The shared daaf_bot run's last.pt beside the base network."""
    from daaf.evaluation import visualize as vis

    titles = {}

    def recorder(name, save):
        def record(*args, **kwargs):
            titles[name] = kwargs["title"]
            return save(*args, **kwargs)

        return record

    for name in (
        "save_attention_figure",
        "save_partial_attention_figure",
        "save_branch_figure",
        "save_shuffle_figure",
    ):
        monkeypatch.setattr(vis, name, recorder(name, getattr(vis, name)))
    out = tmp_path / "pictures"
    result = run(
        "--model",
        trained_export.checkpoint,
        "--base-model",
        base_checkpoint,
        "--dataset",
        "market1501",
        "--root",
        tiny_dataset,
        "--annotations",
        tiny_dataset / "annotations",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    files = ["holistic_attention.png", "partial_attention.png", "branch_outputs.png", "shuffle.png"]
    for name in files:
        assert cv2.imread(str(out / name)) is not None, name
    report = json.loads((out / "visualize.json").read_text())
    assert report["files"] == files and report["notes"] == [] and len(report["images"]) == 3
    score = report["decoupling"]
    assert score["groups"] == 6 and score["images"] == 3
    assert score["nearest_diagonal"]["cells"] == 90 and score["keypoint_regions"]["cells"] == 90
    assert "1x1 conv shuffle:" in result.output
    # Every title names the model (and the base beside it) and the data; Grad-CAM says it jittered.
    assert all("daaf" in t and "market1501 query" in t for t in titles.values()), titles
    assert "daaf vs base" not in titles["save_attention_figure"]  # the base comes first
    assert "base vs daaf" in titles["save_attention_figure"]
    assert "2x2 input shifts" in titles["save_partial_attention_figure"]
    assert report["gradcam_jitter"] == 2


@pytest.mark.slow
def test_a_stride_4_checkpoint_gets_every_picture(tiny_dataset, tmp_path):
    """Branches decoding to 1/4 of the input: their pictures and the shuffle score at the input
    size, beside labels in input pixels."""
    cfg = tiny_config(hab=True, pab=True, decoder_stride=4)
    torch.manual_seed(0)
    state = {"model": build_model(cfg, 8).state_dict(), "config": cfg.to_dict(), "num_classes": 8}
    torch.save(state, tmp_path / "stride4.pt")
    out = tmp_path / "pictures"
    result = run(
        "--model",
        tmp_path / "stride4.pt",
        "--dataset",
        "market1501",
        "--root",
        tiny_dataset,
        "--annotations",
        tiny_dataset / "annotations",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "visualize.json").read_text())
    assert report["files"][2:] == ["branch_outputs.png", "shuffle.png"]
    assert cv2.imread(str(out / "branch_outputs.png")) is not None
    assert report["decoupling"]["keypoint_regions"]["cells"] == 90


def test_export_gets_gradcam_only(tiny_dataset, trained_export, tmp_path):
    out = tmp_path / "pictures"
    result = run(
        "--model",
        trained_export.model,
        "--dataset",
        "market1501",
        "--root",
        tiny_dataset,
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "visualize.json").read_text())
    assert report["files"] == ["holistic_attention.png", "partial_attention.png"]
    assert report["notes"] == [GRADCAM_ONLY_NOTE] and f"note: {GRADCAM_ONLY_NOTE}" in result.output
    assert report["decoupling"] is None


def test_labels_must_cover_the_images(tiny_dataset, trained_export, tmp_path):
    result = run(
        "--model",
        trained_export.checkpoint,
        "--dataset",
        "market1501",
        "--root",
        tiny_dataset,
        "--split",
        "gallery",
        "--annotations",
        tmp_path,
        "--out",
        tmp_path,
    )
    assert isinstance(result.exception, DaafError)


@pytest.mark.parametrize("option", ["--model", "--base-model"])
def test_visualize_refuses_a_model_file_that_would_run_code(
    tiny_dataset, trained_export, base_checkpoint, tmp_path, malicious_pt, option, cli
):
    write, marker = malicious_pt
    path = write(tmp_path / "shared.pt")
    models = {
        "--model": trained_export.checkpoint,
        "--base-model": base_checkpoint,
        option: path,
    }
    out = tmp_path / "pictures"
    result = cli(
        "visualize",
        *(str(x) for item in models.items() for x in item),
        "--dataset",
        "market1501",
        "--root",
        tiny_dataset,
        "--out",
        out,
        ok=False,
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {path}: {REFUSED}"]
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("option", ["--model", "--base-model"])
def test_visualize_refuses_a_model_of_nan_weights_and_draws_nothing(
    tiny_dataset, base_checkpoint, tmp_path, option, cli
):
    """It drew every picture of an all-NaN checkpoint, where evaluate, embed and export refuse."""
    state = torch.load(base_checkpoint, weights_only=True)
    for tensor in state["model"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))
    nan = tmp_path / "nan.pt"
    torch.save(state, nan)
    models = {"--model": base_checkpoint, "--base-model": base_checkpoint, option: nan}
    out = tmp_path / "pictures"
    args = [str(x) for item in models.items() for x in item]
    args += ["--dataset", "market1501", "--root", tiny_dataset, "--n", 2, "--out", out]
    result = cli("visualize", *args, ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: 1024 of 1024 values of {nan}'s embeddings are not finite (NaN or inf): the "
        "model's weights or its inputs are broken (a diverged training run?); no picture was drawn"
    ]
    assert not out.exists()
