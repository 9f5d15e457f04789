"""benchmarks/input_pipeline.py: its --json line is the worker's speed and hand-over size."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a subprocess importing torch: 8 s of CPU
def test_input_pipeline_json(tiny_dataset):
    command = [
        sys.executable,
        str(REPO / "benchmarks" / "input_pipeline.py"),
        "--root",
        str(tiny_dataset),
        "--config",
        str(REPO / "configs" / "daaf_bot.yaml"),
        "--samples",
        "6",
        "--json",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["samples_per_s"] > 0 and row["decode_per_s"] > 0
    # 256x128: uint8 image 98,304 B + uint8 mask 32,768 B + keypoints 204 B + pid, valid, erasing
    assert row["bytes_per_sample"] == 98_304 + 32_768 + 204 + 8 + 1 + 16
    assert row["tensors"] == ["erasing", "images", "keypoints", "masks", "pids", "valid"]
