"""`daaf install-backend` runs the install script shipped in the package, which checks its
arguments before it installs anything."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "daaf" / "labeling" / "install_backend.sh"


def run_command(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "daaf.cli", "install-backend", *args]
    return subprocess.run(command, capture_output=True, text=True)


def run_script(*args: str, python: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env={"PYTHON": python}
    )


def test_the_command_runs_the_packaged_script_which_checks_the_source_folder(tmp_path):
    result = run_command("detectron2", "--source", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"daaf install-backend: {tmp_path} has no setup.py (not a detectron2 checkout)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("openpose",), "Invalid value for '{detectron2|mmpose}': 'openpose'"),
        (("torchvision",), "Invalid value for '{detectron2|mmpose}': 'torchvision'"),
        (
            ("detectron2", "--source", "/no/such/dir"),
            "Invalid value for '--source': Directory '/no/such/dir' does not exist",
        ),
        ((), "Missing argument '{detectron2|mmpose}'"),
    ],
)
def test_the_command_refuses_bad_arguments(args, message):
    result = run_command(*args)
    assert result.returncode == 2
    assert f"Error: {message}" in result.stderr


def test_a_source_folder_is_refused_for_mmpose(tmp_path):
    result = run_command("mmpose", "--source", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == "daaf install-backend: --source is for detectron2"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ((), 2, "daaf install-backend detectron2 [--source DIR]"),
        (("openpose",), 2, "unknown backend 'openpose' (detectron2 or mmpose)"),
        (("mmpose", "--colour"), 2, "unknown option --colour"),
        (("detectron2", "--workdir", "."), 1, "--workdir is for mmpose"),
    ],
)
def test_the_script_run_by_hand_refuses_bad_arguments_before_any_install(args, code, message):
    result = run_script(*args, python="/nonexistent/python")  # no pip could run
    assert result.returncode == code
    assert message in result.stderr


def test_the_script_refuses_a_python_without_daaf():
    result = run_script("mmpose", python="/nonexistent/python")
    assert result.returncode == 1
    assert "cannot import torch and daaf; install daaf first" in result.stderr


def test_the_wheel_ships_the_script(tmp_path):
    """A user who installs daaf from a wheel, without a checkout, gets the script."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "daaf", source / "daaf", ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*pip, "-w", str(tmp_path / "wheel"), str(source)], check=True)
    (wheel,) = (tmp_path / "wheel").glob("daaf-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("daaf/labeling/install_backend.sh")
    assert shipped == SCRIPT.read_bytes()
