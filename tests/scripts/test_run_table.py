"""scripts/run_table.py trains, exports and evaluates every row of a table into one CSV."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from daaf.training.trainer import REFUSED

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.height=64", "data.width=32", "data.pad=2", "data.num_identities=4", "data.num_instances=2",
        "data.workers=0", "model.depth=18", "model.pretrained=none", "model.last_stride=1",
        "data.pre_crop_size=null", "train.epochs=1", "train.iters_per_epoch=1"]  # fmt: skip


@pytest.mark.slow
def test_table5_rows_are_trained_and_collected(tiny_dataset, tmp_path):
    cmd = [sys.executable, str(REPO / "scripts" / "run_table.py"), "--table", "5", "--root", str(tiny_dataset),
           "--annotations", str(tiny_dataset / "annotations"), "--out", str(tmp_path), *TINY]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "table5.csv")
    assert sorted(table["row"]) == [
        "table5_keypoint_group",
        "table5_keypoint_no_group",
        "table5_part_image_group",
    ]
    assert table["mAP"].between(0, 100).all()
    # A second run reuses every finished row.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "epoch 1/1" not in again.stderr


def test_a_finished_row_check_refuses_a_checkpoint_that_would_run_code(
    tiny_dataset, tmp_path, malicious_pt
):
    """Finished rows are recognised by loading OUT/ROW/checkpoints/last.pt: never with pickle."""
    write, marker = malicious_pt
    last = write(tmp_path / "table5_keypoint_group" / "checkpoints" / "last.pt")
    cmd = [sys.executable, str(REPO / "scripts" / "run_table.py"), "--table", "5", "--root", str(tiny_dataset),
           "--annotations", str(tiny_dataset / "annotations"), "--out", str(tmp_path), *TINY]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"Error: {last}: {REFUSED}"]
    assert not marker.exists()
