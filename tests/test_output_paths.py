"""Every command that writes checks its output path before any work: an --out under a regular
file, or in a folder it cannot write to, is one line and exit 1, with nothing made."""

import os
from pathlib import Path

import pytest

from daaf.errors import DaafError
from daaf.utils.files import check_output_dir, check_output_path, marked_output

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
        "embed": (["embed", "--model", str(existing), "--images", str(existing)], False),
        "search": (
            [
                "search",
                "--gallery",
                str(existing / "g.h5"),
                "--query",
                str(existing),
                "--model",
                str(existing),
            ],
            True,
        ),
    }


COMMANDS = list(command_lines(Path("/")))


def out_below(parent: Path, folder: bool) -> Path:
    return parent / "sub" if folder else parent / "sub" / "picture.png"


# What each command writes into its --out folder, as someone's files of the same names.
WRITES = {
    "evaluate": ["report.html", "metrics.json", "per_query.csv"],
    "export": ["model_state.pt", "model.onnx", "export_report.json"],
    "search": ["results.csv", "ranklists/0000_query.png"],
    "compare": ["report.html", "bootstrap.png"],
    "visualize": ["visualize.json", "holistic_attention.png"],
    "synth": ["conditions.csv", "annotations/manifest.csv"],
}


@pytest.mark.parametrize("command", WRITES)
def test_an_out_holding_someone_s_files_is_refused_and_kept(tmp_path, command, cli):
    """daaf replaces only files it can prove it made: a folder of someone's files (here with
    the very names the command writes) is refused before any work, whatever it holds."""
    args, _ = command_lines(tmp_path)[command]
    if command == "compare":
        args = [*args, "--bootstrap", "1"]
    out = tmp_path / "mine"
    for name in WRITES[command]:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(f"the user's {name}")
    result = cli(*args, "--out", out, ok=False)
    assert result.exit_code == 1, result.output
    kind = f"`daaf {command}` output"
    assert result.output.splitlines() == [
        f"Error: --out {out} holds files that daaf did not write (it has no .daaf marker of "
        f"{kind}); daaf writes only into a new or empty folder, or one of its own, so as to "
        "replace nothing of yours: use another --out"
    ]
    assert all((out / n).read_text() == f"the user's {n}" for n in WRITES[command])


def test_a_folder_a_command_wrote_into_is_its_own_next_time(tmp_path):
    """marked_output marks a new or empty folder once written into (even by a run that failed
    half-way), so that the same command may write there again; nothing made, nothing marked;
    folders made by a run that failed before writing into them are removed."""
    kind = "`daaf evaluate` output"
    out = tmp_path / "eval"
    check_output_dir(out, kind)
    with pytest.raises(DaafError), marked_output(out, kind):
        raise DaafError("refused before anything was written")
    assert not out.exists()
    with pytest.raises(RuntimeError), marked_output(out, kind):
        out.mkdir()
        (out / "report.html").write_text("half")
        raise RuntimeError("failed half-way")
    check_output_dir(out, kind)  # its own, partial outputs
    nested = tmp_path / "new" / "deeper" / "eval"
    with pytest.raises(DaafError), marked_output(nested, kind):
        nested.mkdir(parents=True)  # made its folders, then refused the model (NaN weights)
        raise DaafError("refused before anything was written")
    assert not (tmp_path / "new").exists()  # an empty --out stood in no one's way, but why keep it
    (tmp_path / "yours").mkdir()
    with pytest.raises(KeyboardInterrupt), marked_output(tmp_path / "yours" / "eval", kind):
        (tmp_path / "yours" / "eval").mkdir()
        raise KeyboardInterrupt
    assert list((tmp_path / "yours").iterdir()) == []  # the folder it found stays
    with pytest.raises(DaafError, match="no .daaf marker of `daaf export` output"):
        check_output_dir(out, "`daaf export` output")  # another command's folder
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", kind)


@pytest.mark.parametrize("command", COMMANDS)
def test_an_out_under_a_regular_file_is_one_line(tmp_path, command, cli):
    args, folder = command_lines(tmp_path)[command]
    blocker = tmp_path / "results.txt"
    blocker.write_text("a file, not a folder")
    out = out_below(blocker, folder)
    result = cli(*args, "--out", out, ok=False)
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [f"Error: --out {out}: {blocker} is a file, not a folder"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs", "results.txt"]


@pytest.mark.parametrize("command", COMMANDS)
def test_an_out_in_an_unwritable_folder_is_one_line(tmp_path, command, monkeypatch, cli):
    args, folder = command_lines(tmp_path)[command]
    locked = tmp_path / "read-only"
    locked.mkdir()
    real_access = os.access  # root writes anywhere, so the permission is simulated
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    out = out_below(locked, folder)
    result = cli(*args, "--out", out, ok=False)
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
