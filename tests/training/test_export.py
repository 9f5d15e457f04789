"""Export: the stripped base network, its checks, and loading every exported form."""

import copy
import json

import pytest
import torch
import torchvision
from torch import nn

from daaf.config import Config, config_from_dict
from daaf.errors import DaafError
from daaf.models import build_model, load_inference_model
from daaf.training import export as export_module
from daaf.training.export import export_model
from daaf.utils.safe_load import REFUSED

# ResNet-18 without its ImageNet classifier (fc: 512 x 1000 + 1000), counted by hand.
RESNET18_TRUNK = sum(p.numel() for p in torchvision.models.resnet18().parameters()) - 513_000
HEAD_PARAMS = {"bot": 2 * 512, "trinet": 512 * 1024 + 1024 + 2 * 1024 + 1024 * 128 + 128}


def fake_checkpoint(path, **model):
    cfg = Config()
    cfg.data.height, cfg.data.width = 64, 32
    cfg.model.depth, cfg.model.pretrained = 18, "none"
    for key, value in model.items():
        setattr(cfg.model, key, value)
    torch.manual_seed(0)
    net = build_model(cfg, 6)
    torch.save({"model": net.state_dict(), "config": cfg.to_dict(), "num_classes": 6}, path)
    return net.eval()


def check_round_trip(checkpoint, export_dir, report, net, base):
    """The export's report and every form it loads from give ``net``'s embeddings."""
    assert report["passed"] and report["trained_params"] > report["exported_params"]
    assert report["exported_params"] == report["base_params"] == RESNET18_TRUNK + HEAD_PARAMS[base]
    assert report["exported_gflops"] == report["base_gflops"] > 0
    saved = torch.load(export_dir / "model_state.pt", weights_only=True)
    assert not any("classifier" in key for key in saved["state_dict"])  # training-only
    assert report["max_abs_diff_torchscript"] <= 1e-4 and report["max_abs_diff_onnx"] <= 1e-4
    assert json.loads((export_dir / "export_report.json").read_text()) == report
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        expected = net(images)
        for path in (
            export_dir,
            export_dir / "model.ts",
            export_dir / "model_state.pt",
            checkpoint,
        ):
            trust = path.suffix == ".ts"  # TorchScript only on the caller's word
            module, meta = load_inference_model(path, torch.device("cpu"), trust)
            torch.testing.assert_close(module(images), expected, atol=1e-5, rtol=1e-5)
            assert meta.height == 64 and meta.embedding_dim == expected.shape[1]
            assert meta.metric == ("euclidean" if base == "trinet" else "cosine")


def test_export_round_trip_of_the_trained_daaf_bot(trained_export):
    """The shared model: trained with HAB and PAB by `daaf train`, exported by `daaf export`,
    which prints the report it writes."""
    state = torch.load(trained_export.checkpoint, weights_only=True)
    net = build_model(config_from_dict(state["config"]), state["num_classes"])
    net.load_state_dict(state["model"])
    report = json.loads(trained_export.export.output)
    check_round_trip(trained_export.checkpoint, trained_export.model, report, net.eval(), "bot")


def test_export_round_trip_of_a_trinet(tmp_path):
    net = fake_checkpoint(tmp_path / "ckpt.pt", base="trinet", last_stride=2, pab=True)
    report = export_model(tmp_path / "ckpt.pt", tmp_path / "out")
    # last stride 2: ResNet-18's 1.8186 GMACs at 224 x 224 scale with pixels
    gmacs = 1.8186 * (64 * 32) / (224 * 224) + (512 * 1024 + 1024 * 128) / 1e9
    assert report["base_gflops"] == pytest.approx(2 * gmacs, rel=0.01)  # a MAC is 2 FLOPs
    check_round_trip(tmp_path / "ckpt.pt", tmp_path / "out", report, net, "trinet")


def test_a_stride_4_checkpoint_rebuilds_its_two_deconvolution_branches(tmp_path):
    """The checkpoint's config keeps the stride (lost on the way, the branches' weights would
    not match the four-deconvolution decoders of the default)."""
    fake_checkpoint(tmp_path / "ckpt.pt", hab=True, pab=True, decoder_stride=4)
    state = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    assert config_from_dict(state["config"]).model.decoder_stride == 4
    model, _ = load_inference_model(tmp_path / "ckpt.pt", torch.device("cpu"))
    with torch.no_grad():
        mask, parts = model.branch_outputs(torch.randn(1, 3, 64, 32))
    assert mask.shape == (1, 1, 16, 8) and parts.shape == (1, 17, 16, 8)


@pytest.mark.slow
def test_export_round_trip_of_a_daaf_bot_with_stride_4_decoders(tmp_path):
    """The export strips the two-deconvolution branches as it strips the paper's."""
    net = fake_checkpoint(tmp_path / "ckpt.pt", hab=True, pab=True, decoder_stride=4)
    report = export_model(tmp_path / "ckpt.pt", tmp_path / "out")
    check_round_trip(tmp_path / "ckpt.pt", tmp_path / "out", report, net, "bot")


def test_export_fails_on_an_extra_layer(tmp_path, monkeypatch):
    fake_checkpoint(tmp_path / "ckpt.pt")
    stripped = export_module.inference_network
    monkeypatch.setattr(
        export_module,
        "inference_network",
        lambda m: nn.Sequential(stripped(m), nn.Linear(512, 512)).eval(),
    )
    with pytest.raises(DaafError, match="failed its checks") as info:
        export_model(tmp_path / "ckpt.pt", tmp_path / "out")
    message = str(info.value)
    reference = str(RESNET18_TRUNK + HEAD_PARAMS["bot"])
    assert f"exported network has {int(reference) + 512 * 513} parameters" in message
    assert f"the torchvision ResNet-18 + bot head {reference}" in message
    assert "GFLOPs per image" in message and "max_abs_diff_onnx" in message
    report = json.loads((tmp_path / "out" / "export_report.json").read_text())
    assert report["passed"] is False and report["exported_gflops"] > report["base_gflops"]
    # nothing that looks like a model (evaluate would score it), no staging folder either
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["export_report.json"]


def test_export_fails_on_a_branch_left_attached(tmp_path, monkeypatch):
    fake_checkpoint(tmp_path / "ckpt.pt", hab=True)
    stripped = export_module.inference_network

    def with_hab(model):
        base = stripped(model)
        base.hab = copy.deepcopy(model.hab)  # unused at inference, but shipped
        return base

    monkeypatch.setattr(export_module, "inference_network", with_hab)
    with pytest.raises(DaafError, match="exported network has") as info:
        export_model(tmp_path / "ckpt.pt", tmp_path / "out")
    assert "GFLOPs" not in str(info.value)  # the branch does not run: only the count tells


def test_export_refuses_a_file_that_would_run_code(tmp_path, malicious_pt, cli):
    write, marker = malicious_pt
    path = write(tmp_path / "shared.pt")
    result = cli("export", path, "--out", tmp_path / "out", ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {path}: {REFUSED}"]
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_bad_files_are_named(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DaafError, match="junk.pt: not a readable"):
        export_model(tmp_path / "junk.pt", tmp_path / "out")
    with pytest.raises(DaafError, match="no model_state.pt in this folder"):
        load_inference_model(tmp_path, torch.device("cpu"))
