"""Every command that writes checks its output path before any work: an --out under a regular
file, or in a folder it cannot write to, is one line and exit 1, with nothing made."""

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from daaf.cli import main
from daaf.errors import DaafError
from daaf.utils.files import check_output_path

REPO = Path(__file__).resolve().parents[1]


def command_lines(tmp_path: Path) -> dict[str, tuple[list[str], bool]]:
    """Command name -> (arguments before --out, whether --out names a folder); every input is a
    placeholder that the command must never get as far as reading."""
    existing = tmp_path / "inputs"
    existing.mkdir(exist_ok=True)
    dataset = ["--dataset", "market1501", "--root", str(existing)]
    return {
        "train": (["train", "--config", str(REPO / "configs/demo.yaml")], True),
        "export": (["export", str(existing / "last.pt")], True),
        "evaluate": (["evaluate", "--model", str(existing), *dataset], True),
        "synth": (["synth"], True),
        "label": (["label", *dataset], True),
        "annotations show": (["annotations", "show", str(existing)], False),
        "compare": (["compare", "--baseline", str(existing), "--candidate", str(existing)], False),
        "visualize": (["visualize", "--model", str(existing), *dataset], True),
        "demo": (["demo"], True),
    }


COMMANDS = list(command_lines(Path("/")))


def out_below(parent: Path, folder: bool) -> Path:
    return parent / "sub" if folder else parent / "sub" / "picture.png"


@pytest.mark.parametrize("command", COMMANDS)
def test_an_out_under_a_regular_file_is_one_line(tmp_path, command):
    args, folder = command_lines(tmp_path)[command]
    blocker = tmp_path / "results.txt"
    blocker.write_text("a file, not a folder")
    out = out_below(blocker, folder)
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [f"Error: --out {out}: {blocker} is a file, not a folder"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs", "results.txt"]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_out_in_an_unwritable_folder_is_one_line(tmp_path, command, monkeypatch):
    args, folder = command_lines(tmp_path)[command]
    locked = tmp_path / "read-only"
    locked.mkdir()
    real_access = os.access  # root writes anywhere, so the permission is simulated
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    out = out_below(locked, folder)
    result = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        f"Error: --out {out}: cannot write into {locked} (permission denied)"
    ]
    assert list(locked.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_folder_without_write_permission_is_refused(tmp_path):
    locked = tmp_path / "read-only"
    locked.mkdir(mode=0o555)
    with pytest.raises(DaafError, match="cannot write into"):
        check_output_path(locked / "run")


def test_existing_outputs_of_the_wrong_kind_and_fine_ones(tmp_path):
    (tmp_path / "file.png").write_text("")
    with pytest.raises(DaafError, match=r"file.png is a file, not a folder$"):
        check_output_path(tmp_path / "file.png")
    with pytest.raises(DaafError, match=r"is a folder, not a file$"):
        check_output_path(tmp_path, "--out", folder=False)
    check_output_path(tmp_path / "file.png", folder=False)  # replaced: its folder is writable
    check_output_path(tmp_path / "new" / "deeper")
    check_output_path(Path("relative-and-new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.png"]  # nothing created
