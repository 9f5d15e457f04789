"""Export: the stripped base network, its checks, and loading every exported form."""

import json

import pytest
import torch

from daaf.errors import DaafError
from daaf.training import export as export_module
from daaf.training.config import Config
from daaf.training.export import export_model, load_inference_model
from daaf.training.modeling import build_model


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


@pytest.mark.parametrize(
    "model", [{"hab": True, "pab": True}, {"base": "trinet", "last_stride": 2, "pab": True}]
)
def test_export_round_trip(tmp_path, model):
    net = fake_checkpoint(tmp_path / "ckpt.pt", **model)
    report = export_model(tmp_path / "ckpt.pt", tmp_path / "out")
    assert (
        report["passed"]
        and report["exported_params"] == report["base_params"] < report["trained_params"]
    )
    assert report["exported_flops"] == report["base_flops"]
    assert report["max_abs_diff_torchscript"] <= 1e-4 and report["max_abs_diff_onnx"] <= 1e-4
    assert json.loads((tmp_path / "out" / "export_report.json").read_text()) == report
    images = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        expected = net(images)
        for path in ("out", "out/model.ts", "out/model_state.pt", "ckpt.pt"):
            module, meta = load_inference_model(tmp_path / path, torch.device("cpu"))
            torch.testing.assert_close(module(images), expected, atol=1e-5, rtol=1e-5)
            assert meta["height"] == 64 and meta["embedding_dim"] == expected.shape[1]
            assert meta["metric"] == ("euclidean" if model.get("base") == "trinet" else "cosine")


def test_export_fails_when_parameters_or_embeddings_differ(tmp_path, monkeypatch):
    fake_checkpoint(tmp_path / "ckpt.pt", hab=True)
    monkeypatch.setattr(export_module, "_count", lambda m: id(m) % 1000)  # counts that cannot agree
    monkeypatch.setattr(export_module, "TOLERANCE", -1.0)  # any difference is too large
    with pytest.raises(DaafError, match="failed its checks: exported network has") as info:
        export_model(tmp_path / "ckpt.pt", tmp_path / "out")
    assert "max_abs_diff_torchscript" in str(info.value) and "max_abs_diff_onnx" in str(info.value)
    assert json.loads((tmp_path / "out" / "export_report.json").read_text())["passed"] is False


def test_bad_files_are_named(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DaafError, match="junk.pt: not a readable"):
        export_model(tmp_path / "junk.pt", tmp_path / "out")
    with pytest.raises(DaafError, match="no model_state.pt or model.ts"):
        load_inference_model(tmp_path, torch.device("cpu"))
