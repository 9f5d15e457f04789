"""daaf's folder marker: written into what daaf makes, required before anything is deleted."""

import shutil

import pytest

from daaf.errors import DaafError
from daaf.utils.files import check_output_path, claim_dir, made_by_daaf, mark_dir, remove_dir


def test_only_a_marked_folder_of_the_right_kind_is_removed(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / ".daaf").write_text("I made this")  # the name alone proves nothing
    (theirs / "thesis.tex").write_text("keep me")
    with pytest.raises(DaafError, match=r"theirs was not made by daaf \(no .daaf marker of a run"):
        remove_dir(theirs, "run")
    assert (theirs / "thesis.tex").read_text() == "keep me"

    mark_dir(tmp_path / "ours", "store")
    with pytest.raises(DaafError, match="no .daaf marker of a run"):
        remove_dir(tmp_path / "ours", "run")
    (tmp_path / "ours" / "sub").mkdir()
    remove_dir(tmp_path / "ours", "store")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs"]


def test_claim_marks_only_a_new_or_empty_folder(tmp_path):
    claim_dir(tmp_path / "new", "run")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("")
    claim_dir(tmp_path / "busy", "run")
    assert made_by_daaf(tmp_path / "new", "run") and not made_by_daaf(tmp_path / "busy", "run")


def test_an_interrupted_removal_keeps_the_marker_so_the_next_one_finishes(tmp_path, monkeypatch):
    folder = tmp_path / "ours"
    mark_dir(folder, "store")
    for name in ("a", "b"):
        (folder / name).mkdir()
    real_rmtree = shutil.rmtree

    def crash_on_b(path, *args, **kwargs):
        if path.name == "b":
            raise KeyboardInterrupt
        real_rmtree(path, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(shutil, "rmtree", crash_on_b)
        with pytest.raises(KeyboardInterrupt):
            remove_dir(folder, "store")
    assert made_by_daaf(folder, "store")
    remove_dir(folder, "store")
    assert not folder.exists()


@pytest.mark.parametrize("name", ["x" * 300, "x" * 300 + "/run", "x" * 297 + ".h5"])
def test_an_output_name_too_long_for_the_file_system_is_one_line(tmp_path, name):
    """os.stat of such a path raises 'File name too long' instead of saying it is missing."""
    with pytest.raises(
        DaafError, match=r"^--out .*\.\.\. \(\d+ characters\): a name of 300 bytes, "
    ):
        check_output_path(tmp_path / name, folder=not name.endswith(".h5"))
    assert list(tmp_path.iterdir()) == []
