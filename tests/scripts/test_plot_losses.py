"""scripts/plot_losses.py: the losses of a seeded table, mean over seeds, branch terms unweighted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import load_script

REPO = Path(__file__).resolve().parents[2]


def plot_losses():
    return load_script(REPO / "scripts" / "plot_losses.py")


def write_run(folder: Path, lines: list[dict], pab_weight: float = 0.003) -> None:
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / "config.yaml").write_text(f"loss:\n  hab_weight: 0.003\n  pab_weight: {pab_weight}\n")


@pytest.fixture
def runs(tmp_path):
    for seed, scale in ((0, 1.0), (1, 3.0)):
        write_run(
            tmp_path / f"seed{seed}" / "study_daaf_bot",
            [
                {
                    "step": 10,
                    "id": 2.0 * scale,
                    "triplet": 1.0,
                    "center": 0.5,
                    "hab": 0.003 * scale,
                    "pab": 0.006 * scale,
                    "total": 9.0,
                },
                {
                    "step": 20,
                    "id": 1.0,
                    "triplet": 0.5,
                    "center": 0.5,
                    "hab": 0.0015,
                    "pab": 0.003,
                    "total": 9.0,
                },
            ],
        )
        write_run(
            tmp_path / f"seed{seed}" / "study_bot",
            [
                {"step": 10, "id": scale, "triplet": 0.0, "center": 0.0, "total": 9.0},
            ],
        )
    return tmp_path


def test_seed_losses_average_the_seeds_and_unweight_the_branches(runs):
    summary = plot_losses().seed_losses(runs)
    daaf = summary["study_daaf_bot"].set_index("step")
    assert daaf.loc[10, "reid_mean"] == pytest.approx((3.5 + 7.5) / 2)  # id + triplet + center
    assert daaf.loc[10, "pab_mean"] == pytest.approx(4.0)  # (2 + 6) / 2: divided by 0.003
    assert daaf.loc[10, ["pab_min", "pab_max"]].tolist() == pytest.approx([2.0, 6.0])
    assert daaf.loc[20, "hab_mean"] == pytest.approx(0.5)
    assert (daaf["seeds"] == 2).all()
    bot = summary["study_bot"]
    assert "pab_mean" not in bot and bot["reid_mean"].tolist() == pytest.approx([2.0])


def test_a_run_that_has_logged_nothing_yet_is_left_out(runs):
    """A study collected while a row still trains: its seed that has just started (an empty
    metrics.jsonl) is not averaged in, and a row with no logged seed has no curve."""
    write_run(runs / "seed2" / "study_daaf_bot", [])
    write_run(runs / "seed0" / "study_pab_only", [])
    summary = plot_losses().seed_losses(runs)
    assert (summary["study_daaf_bot"]["seeds"] == 2).all() and "study_pab_only" not in summary


def test_adapted_weights_are_the_logged_ones(tmp_path):
    """loss.branch_balance logs the weight each step used; the config's is only the start."""
    write_run(
        tmp_path / "seed0" / "study_daaf_bot_fix",
        [
            {"step": 10, "id": 1.0, "hab": 0.003, "pab": 0.006, "total": 1.0, "weight/pab": 0.003},
            {"step": 20, "health/pab/loss": 0.8},  # a branch-health line: no losses to draw
            {"step": 20, "id": 1.0, "hab": 0.003, "pab": 24.0, "total": 25.0, "weight/pab": 30.0},
        ],
    )
    losses = plot_losses().run_losses(tmp_path / "seed0" / "study_daaf_bot_fix").set_index("step")
    assert losses["pab"].tolist() == pytest.approx([2.0, 0.8])
    assert losses["reid"].tolist() == [1.0, 1.0]
    assert losses["hab"].tolist() == pytest.approx([1.0, 1.0])  # no weight/hab: the config's


def test_the_command_writes_the_png_and_names_a_folder_without_runs(runs, tmp_path):
    script = str(REPO / "scripts" / "plot_losses.py")
    png = tmp_path / "out" / "losses.png"
    result = subprocess.run(
        [sys.executable, script, "--runs", str(runs), "--png", str(png)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(
        [sys.executable, script, "--runs", str(empty), "--png", str(png)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: {empty}: no seed<i>/<row>/metrics.jsonl (run scripts/run_table.py --seeds)"
    )
