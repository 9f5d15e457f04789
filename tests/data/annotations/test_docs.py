"""The h5py + pandas recipes of docs/annotations.md run as written against a store daaf wrote."""

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "annotations.md"


def code_block(heading: str) -> str:
    """The first python code block after the markdown heading ``heading``."""
    text = DOC.read_text()
    match = re.search(rf"^### {re.escape(heading)}\n.*?```python\n(.*?)```", text, re.M | re.S)
    assert match, f"no python block under '### {heading}' in {DOC}"
    return match.group(1)


def test_reading_example_runs_without_daaf(tmp_path, helpers):
    helpers.write_store(tmp_path / "annotations")
    code = code_block("Reading example")
    assert "daaf" not in code.replace('"daaf.annotations"', "")
    assert len(code.strip().splitlines()) <= 14
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # the first status-0 image; its mask has the store's mask size (32, 16 in the tests)
    assert result.stdout.startswith("bounding_box_train/0002_c1s1_000451_03.jpg (32, 16) {")
    assert "'left_ear': nan" not in result.stdout and "'left_ear': 0.0" in result.stdout


def test_checksum_recipe_matches_the_writer(store):
    namespace = {}
    exec(code_block("Recomputing content_sha256"), namespace)
    for shard in sorted(store.glob("*.h5")):
        assert namespace["content_sha256"](shard) is True
