"""`daaf label` never deletes what daaf did not make: --out is never the dataset, --overwrite
replaces only a store daaf marked (and holding only store files), a crash in the swap loses no
store, an interrupted --overwrite resumes, and a second run into a busy --out is refused."""

import os
from pathlib import Path

import pytest

from daaf.data.annotations import validate_store
from daaf.data.datasets import build_dataset
from daaf.errors import DaafError
from daaf.labeling.driver import LabelOptions, run_labeler
from daaf.labeling.rerun import overwrite_dir, replaced_dir
from daaf.utils.files import MARKER_NAME
from daaf.utils.lock import folder_lock

from .conftest import label_args


class Crash(KeyboardInterrupt):
    """An interruption (Ctrl-C, kill): not recorded as a labeler error of one image."""


def label(labeler, dataset, out, **options):
    options = {"shard_size": 2, "workers": 0, "progress": False} | options
    return run_labeler(labeler, dataset, out, LabelOptions(**options))


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (relative path -> bytes)."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def cli_label(cli, market, out, *extra):
    args = label_args(market, out, "--workers", "0", "--device", "cpu", "--shard-size", "2", *extra)
    return cli(*args, ok=False)


@pytest.fixture
def fake_backend(monkeypatch, fake_labeler):
    monkeypatch.setattr(
        "daaf.labeling.backends.build_labeler", lambda name, **options: fake_labeler()
    )


@pytest.mark.parametrize("out", [".", "Market-1501-v15.09.15", "Market-1501-v15.09.15/query"])
def test_an_out_that_holds_the_datasets_images_is_refused(market, fake_backend, out, cli):
    """The issue's reproduction: a stray manifest.csv in the dataset root, --out = --root."""
    (market / "manifest.csv").write_text("x\n")
    (market / "notes.txt").write_text("keep me")
    before = tree(market)
    for extra in ((), ("--overwrite",)):
        result = cli_label(cli, market, market / out, *extra)
        assert result.exit_code == 1, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(
            f"Error: --out {(market / out).resolve()} holds the dataset's images ("
        )
        assert tree(market) == before


def test_an_out_inside_the_root_beside_the_images_is_fine(market, fake_backend, cli):
    """The README's `--out DATA/annotations` with `--root DATA`."""
    assert cli_label(cli, market, market / "annotations").exit_code == 0
    result = cli_label(cli, market, market / "annotations", "--shard-size", "1", "--overwrite")
    assert result.exit_code == 0, result.output
    assert validate_store(market / "annotations", build_dataset("market1501", market)) == []


def test_overwrite_refuses_user_files_that_carry_a_stores_names(tmp_path, market, fake_labeler):
    """manifest.csv, store.json and a shard name: anyone can have them; no marker, no replace."""
    out = tmp_path / "mine"
    out.mkdir()
    for name in ("manifest.csv", "store.json", "train-00000.h5", "thesis.tex"):
        (out / name).write_text(f"my {name}")
    before = tree(out)
    with pytest.raises(DaafError) as error:
        label(fake_labeler(), build_dataset("market1501", market), out, overwrite=True)
    assert str(error.value) == (
        f"--overwrite: {out} is not an annotation store daaf made (no {MARKER_NAME} marker, no "
        "daaf store.json); refusing to replace it"
    )
    assert tree(out) == before and not overwrite_dir(out).exists()


def test_overwrite_refuses_a_daaf_store_that_holds_other_files(tmp_path, market, fake_labeler):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out)
    (out / "notes.txt").write_text("keep me")
    before = tree(out)
    labeler = fake_labeler()
    with pytest.raises(DaafError) as error:
        label(labeler, dataset, out, shard_size=1, overwrite=True)
    assert str(error.value) == (
        f"--overwrite: {out} holds files daaf did not write (notes.txt); refusing to replace it"
    )
    assert tree(out) == before and labeler.batches == []


def test_a_store_made_before_the_marker_is_replaced_on_its_store_json(
    tmp_path, market, fake_labeler
):
    """An older daaf wrote store.json but no marker: a readable daaf store.json is the proof."""
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out)
    (out / MARKER_NAME).unlink()
    label(fake_labeler(), dataset, out, shard_size=1, overwrite=True)
    assert len(list(out.glob("*.h5"))) == 6 and validate_store(out, dataset) == []


@pytest.mark.parametrize("hidden", [overwrite_dir, replaced_dir])
def test_user_folders_with_the_hidden_names_are_never_deleted(
    tmp_path, market, fake_labeler, hidden
):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out)
    theirs = hidden(out)
    theirs.mkdir()
    (theirs / "photo.jpg").write_text("keep me")
    (theirs / "store.json").write_text("{}")
    before, store_before = tree(theirs), tree(out)
    with pytest.raises(DaafError, match=f"{theirs} .*was not made by daaf"):
        label(fake_labeler(), dataset, out, shard_size=1, overwrite=True)
    assert tree(theirs) == before and tree(out) == store_before


def test_a_crash_between_the_two_renames_loses_no_store(
    tmp_path, market, fake_labeler, monkeypatch
):
    """Old store moved aside, new one not yet in place: the next run puts the new one in place
    before anything else, even if that run is interrupted in turn."""
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out, shard_size=2)
    real_replace = os.replace

    def crash_before_the_new_store_moves(source, target):
        if Path(source) == overwrite_dir(out):
            raise Crash()
        real_replace(source, target)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", crash_before_the_new_store_moves)
        with pytest.raises(Crash):
            label(fake_labeler(), dataset, out, shard_size=1, overwrite=True)
    assert not out.exists() and replaced_dir(out).is_dir() and overwrite_dir(out).is_dir()

    crashing = fake_labeler()
    crashing.label = lambda images: (_ for _ in ()).throw(Crash())
    with pytest.raises(Crash):  # another --overwrite, itself interrupted
        label(crashing, dataset, out, shard_size=1, overwrite=True)
    assert validate_store(out, dataset) == [] and len(list(out.glob("*.h5"))) == 6
    assert not replaced_dir(out).exists()

    labeler = fake_labeler()
    run = label(labeler, dataset, out, shard_size=1)  # the new store, complete
    assert labeler.batches == [] and run.shards_skipped == 6


def test_an_interrupted_overwrite_resumes(tmp_path, market, fake_labeler, capsys):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out, shard_size=2)
    crashing = fake_labeler()
    real_label = crashing.label

    def crash_at_the_fourth_shard(images):
        if len(crashing.batches) == 3:
            raise Crash()
        return real_label(images)

    crashing.label = crash_at_the_fourth_shard
    with pytest.raises(Crash):
        label(crashing, dataset, out, shard_size=1, overwrite=True)
    assert len(list(overwrite_dir(out).glob("*.h5"))) == 3

    labeler = fake_labeler()
    run = label(labeler, dataset, out, shard_size=1, overwrite=True)
    assert labeler.batches == [1, 1, 1] and (run.shards_written, run.shards_skipped) == (3, 3)
    assert (
        f"resuming the interrupted --overwrite in {overwrite_dir(out)}" in capsys.readouterr().err
    )
    assert len(list(out.glob("*.h5"))) == 6 and validate_store(out, dataset) == []
    assert not overwrite_dir(out).exists() and not replaced_dir(out).exists()


def test_an_interrupted_overwrite_with_other_settings_starts_afresh(tmp_path, market, fake_labeler):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out, shard_size=2)
    crashing = fake_labeler()
    crashing.label = lambda images: (_ for _ in ()).throw(Crash())
    with pytest.raises(Crash):
        label(crashing, dataset, out, shard_size=1, overwrite=True)
    labeler = fake_labeler()
    label(labeler, dataset, out, shard_size=3, overwrite=True)
    assert sum(labeler.batches) == 6 and len(list(out.glob("*.h5"))) == 3


@pytest.mark.parametrize("extra", [(), ("--overwrite",)])
def test_a_second_run_into_a_busy_out_is_refused_in_one_line(
    tmp_path, market, fake_backend, extra, cli
):
    out = tmp_path / "store"
    assert cli_label(cli, market, out).exit_code == 0
    before = tree(out)
    with folder_lock(out):  # another daaf label, still running
        result = cli_label(cli, market, out, "--shard-size", "1", *extra)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {out} is in use by another daaf run (process {os.getpid()} holds "
        f"{out / '.daaf.lock'}); wait for it to end, or use another --out"
    ]
    assert tree(out) == before and not overwrite_dir(out).exists()


def test_overwrite_needs_a_writable_folder_beside_the_store(
    tmp_path, market, fake_backend, monkeypatch, cli
):
    """The new store is built beside the old one: refused before any work, not after hours."""
    out = tmp_path / "store"
    assert cli_label(cli, market, out).exit_code == 0
    real_access = os.access  # root writes anywhere, so the permission is simulated
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != tmp_path and real_access(p, mode))
    result = cli_label(cli, market, out, "--shard-size", "1", "--overwrite")
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: --out {overwrite_dir(out)}: cannot write into {tmp_path} (permission denied)"
    ]
