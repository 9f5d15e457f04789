"""The Python examples of docs/annotations.md run as written against a store daaf wrote."""

import os
import re
import subprocess
import sys
from pathlib import Path

import h5py

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "annotations.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.M | re.S)


def code_block(heading: str) -> str:
    """The first python code block after the markdown heading ``heading``."""
    text = DOC.read_text()
    match = re.search(rf"^### {re.escape(heading)}\n.*?```python\n(.*?)```", text, re.M | re.S)
    assert match, f"no python block under '### {heading}' in {DOC}"
    return match.group(1)


def run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_every_python_block_runs(tmp_path, helpers):
    helpers.write_store(tmp_path / "annotations")
    blocks = python_blocks()
    assert len(blocks) == 3
    for code in blocks:
        result = run(code, tmp_path)
        assert result.returncode == 0, f"{code}\n{result.stderr}"


def test_reading_example_runs_without_daaf(tmp_path, helpers):
    helpers.write_store(tmp_path / "annotations")
    code = code_block("Reading example")
    assert "daaf" not in code.replace('"daaf.annotations"', "")
    assert len(code.strip().splitlines()) <= 14
    result = run(code, tmp_path)
    assert result.returncode == 0, result.stderr
    # the first status-0 image; its mask has the store's mask size (32, 16 in the tests)
    assert result.stdout.startswith("bounding_box_train/0002_c1s1_000451_03.jpg (32, 16) {")
    assert "'left_ear': nan" not in result.stdout and "'left_ear': 0.0" in result.stdout


def test_checksum_recipe_returns_the_digest_the_writer_stored(tmp_path, helpers, monkeypatch):
    store = helpers.write_store(tmp_path / "annotations")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(code_block("Recomputing content_sha256"), namespace)
    for shard in sorted(store.glob("*.h5")):
        with h5py.File(shard, "r") as f:
            stored = f.attrs["content_sha256"]
        digest = namespace["content_sha256"](shard)
        assert isinstance(digest, str) and len(digest) == 64 and digest == stored
