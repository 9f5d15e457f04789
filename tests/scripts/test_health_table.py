"""scripts/health_table.py: each run's last branch-health measurement, per trained branch."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import load_script

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "health_table.py"


def write_run(folder: Path, lines: list[dict], hab_weight: float, pab_weight: float) -> None:
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (folder / "config.yaml").write_text(
        f"loss:\n  hab_weight: {hab_weight}\n  pab_weight: {pab_weight}\n"
    )


def health(step: int, pab: float, hab: float = 5.0) -> dict:
    return {
        "step": step,
        "health/pab/loss": pab,
        "health/pab/zero_map_loss": 3.0,
        "health/pab/mean_map_loss": 3.1,
        "health/pab/grad_ratio": 1e-4,
        "health/hab/loss": hab,
        "health/hab/zero_map_loss": 10.0,
    }


def test_the_last_measurement_per_trained_branch(tmp_path):
    write_run(
        tmp_path / "seed0" / "fix",
        [
            {"step": 20, "pab": 0.1, "weight/pab": 0.5},
            health(20, 3.3),
            {"step": 40, "pab": 0.2, "weight/pab": 2.0},
            health(40, 1.5, hab=8.0),
            {"step": 50, "pab": 0.2, "weight/pab": 4.0},  # after the last measurement
        ],
        hab_weight=0.003,
        pab_weight=0.003,
    )
    write_run(tmp_path / "seed0" / "pab_alone", [health(40, 3.0)], hab_weight=0.0, pab_weight=1.0)
    write_run(tmp_path / "seed0" / "bot", [{"step": 40, "id": 1.0}], 0.003, 0.003)
    table = load_script(SCRIPT).health_rows(tmp_path).set_index(["row", "branch"])
    assert sorted(table.index) == [("fix", "hab"), ("fix", "pab"), ("pab_alone", "pab")]
    pab = table.loc[("fix", "pab")]
    assert (pab["step"], pab["loss"], pab["zero_map_loss"], pab["mean_map_loss"]) == (
        40,
        1.5,
        3.0,
        3.1,
    )
    assert pab["below_zero"] == pytest.approx(0.5) and pab["grad_ratio"] == pytest.approx(1e-4)
    assert pab["weight"] == 2.0  # the weight in use at step 40, not the config's nor a later one
    assert table.loc[("fix", "hab"), "below_zero"] == pytest.approx(0.2)
    assert table.loc[("fix", "hab"), "weight"] == 0.003  # never adapted: the config's
    assert table.loc[("pab_alone", "pab"), "below_zero"] == pytest.approx(0.0)


def test_the_command_prints_and_writes_the_table_and_names_a_folder_without_signals(tmp_path):
    write_run(tmp_path / "runs" / "seed1" / "daaf", [health(40, 3.3)], 0.003, 0.003)
    csv = tmp_path / "health.csv"
    command = [sys.executable, str(SCRIPT), str(tmp_path / "runs"), "--csv", str(csv)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "daaf" in result.stdout and "seed1" in result.stdout and "-0.1" in result.stdout
    assert csv.read_text().splitlines()[0].startswith("row,seed,branch,step,loss")
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run([*command[:2], str(empty)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"error: {empty}: no seed<i>/<row>/metrics.jsonl with branch-health signals"
    )


@pytest.mark.parametrize(
    "metrics, config, message",
    [
        (
            '{"step": 20, "health/pab/loss": 1.0}\n{"step": 3',
            "loss:\n  hab_weight: 0.003\n  pab_weight: 0.003\n",
            "metrics.jsonl, line 2: not a JSON object: '{\"step\": 3'",
        ),
        (
            "[1, 2]\n",
            "loss: {hab_weight: 1, pab_weight: 1}\n",
            "metrics.jsonl, line 1: not a JSON object: '[1, 2]'",
        ),
        (
            '{"step": 20, "health/pab/loss": 1.0}\n',
            "loss: [unclosed\n",
            "config.yaml: not a run's config",
        ),
        (
            '{"step": 20, "health/pab/loss": 1.0}\n',
            "loss: {pab_weight: 1}\n",
            "config.yaml: not a run's config with loss weights (KeyError('hab_weight'))",
        ),
    ],
)
def test_a_broken_run_is_named_in_one_line(tmp_path, metrics, config, message):
    run = tmp_path / "runs" / "seed0" / "daaf"
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text(metrics)
    (run / "config.yaml").write_text(config)
    before = {p: p.read_bytes() for p in run.iterdir()}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "runs")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {run}/") and message in result.stderr
    assert {p: p.read_bytes() for p in run.iterdir()} == before  # nothing touched
