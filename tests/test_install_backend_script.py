"""scripts/install_backend.sh checks its arguments before it installs anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install_backend.sh"


def run_script(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env={"PYTHON": python}
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "scripts/install_backend.sh detectron2 [--source DIR]"),
        (("openpose",), 2, "unknown backend 'openpose' (detectron2 or mmpose)"),
        (("mmpose", "--colour"), 2, "unknown option --colour"),
        (("mmpose", "--source", "."), 1, "--source is for detectron2"),
        (("detectron2", "--workdir", "."), 1, "--workdir is for mmpose"),
    ],
)
def test_bad_arguments_are_refused_before_any_install(args, code, message):
    result = run_script(*args, python="/nonexistent/python")  # no pip could run
    assert result.returncode == code
    assert message in result.stderr


def test_a_source_folder_must_be_a_detectron2_checkout(tmp_path):
    result = run_script("detectron2", "--source", str(tmp_path), python="/nonexistent/python")
    assert result.returncode == 1
    assert f"{tmp_path} has no setup.py (not a detectron2 checkout)" in result.stderr


def test_a_python_without_daaf_is_refused(tmp_path):
    result = run_script("mmpose", python="/nonexistent/python")
    assert result.returncode == 1
    assert "cannot import torch and daaf; install daaf first" in result.stderr
