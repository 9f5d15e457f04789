"""Refactors keep behaviour: a short training's metrics.jsonl equals the one recorded before
them, and an export written before them still loads (tests/data/fixtures/make_reference_run.py).

The floats are compared bit for bit on the machine and torch version that recorded them; on
another machine, to 1e-4 (kernels may sum in another order there), said in the message.
"""

import json
import tarfile
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from .conftest import REPO, load_script

FIXTURES = REPO / "tests" / "data" / "fixtures"
RECORDED = FIXTURES / "reference_run"
# Wall-clock values differ from run to run; every other value is a function of the seed.
TIMINGS = ("images_per_s",)


def read_metrics(path: Path) -> list[dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [{k: v for k, v in line.items() if k not in TIMINGS} for line in lines]


@pytest.fixture(scope="module")
def maker():
    return load_script(FIXTURES / "make_reference_run.py")


def test_a_short_training_logs_what_it_logged_before(maker, tiny_dataset, tmp_path):
    result = maker.train_reference(tiny_dataset, tmp_path / "run")
    assert result.exit_code == 0, result.output
    recorded = read_metrics(RECORDED / "metrics.jsonl")
    now = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [sorted(line) for line in now] == [sorted(line) for line in recorded]
    assert any("eval/mAP" in line for line in recorded), "the reference evaluates"
    assert any(key.startswith("health/") for line in recorded for key in line), "and measures"
    same_machine = maker.machine() == {
        k: v
        for k, v in json.loads((RECORDED / "machine.json").read_text()).items()
        if k != "commit"
    }
    if same_machine:
        assert now == recorded
    else:
        for old, new in zip(recorded, now, strict=True):
            values = np.array([new[k] for k in old], float), np.array(list(old.values()), float)
            assert np.allclose(*values, rtol=1e-4, atol=1e-7), (
                f"step {old['step']} differs beyond 1e-4 (recorded on another machine)"
            )


def test_an_export_written_before_loads_and_embeds(tmp_path):
    from daaf.training.export import load_inference_model

    with tarfile.open(FIXTURES / "reference_export.tar.xz") as archive:
        archive.extractall(tmp_path, filter="data")
    folder = tmp_path / "reference_export"
    report = json.loads((folder / "export_report.json").read_text())
    assert report["passed"] is True
    images = torch.linspace(-1, 1, 2 * 3 * 64 * 32).reshape(2, 3, 64, 32)
    embeddings = []
    for path in (folder, folder / "model.ts"):
        model, meta = load_inference_model(path, "cpu", trust_torchscript=path.suffix == ".ts")
        assert (meta["height"], meta["width"], meta["metric"]) == (64, 32, "cosine")
        with torch.no_grad():
            embeddings.append(model(images))
        assert embeddings[-1].shape == (2, meta["embedding_dim"])
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"))
    (onnx,) = session.run(None, {"images": images.numpy()})
    assert torch.isfinite(embeddings[0]).all()
    torch.testing.assert_close(embeddings[1], embeddings[0])
    np.testing.assert_allclose(onnx, embeddings[0].numpy(), rtol=1e-4, atol=1e-5)
