"""Re-running `daaf label` never leaves a broken store: store.json, refusal, --overwrite, validation."""

import dataclasses
import hashlib
import json

import pytest

from daaf.data.annotations import AnnotationStore, validate_store
from daaf.data.datasets import build_dataset
from daaf.errors import DaafError
from daaf.labeling.driver import LabelOptions, run_labeler
from daaf.labeling.rerun import overwrite_dir

from .conftest import label_args

OUT_HINT = "use another --out, or --overwrite to replace the store once the new one is complete"


def label(labeler, dataset, out, **options):
    options = {"shard_size": 2, "workers": 0, "progress": False} | options
    return run_labeler(labeler, dataset, out, LabelOptions(**options))


def snapshot(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_store_json_records_what_the_store_was_made_with(tmp_path, market, fake_labeler):
    dataset = build_dataset("market1501", market)
    label(fake_labeler(), dataset, tmp_path / "store", splits=("train", "gallery"))
    info = json.loads((tmp_path / "store" / "store.json").read_text())
    lines = "".join(
        f"{split}\t{s.path}\t{s.pid}\t{s.camid}\n"
        for split in ("train", "gallery")
        for s in dataset.split(split)
    )
    assert info["schema"] == "daaf.annotations" and info["schema_version"] == 2
    assert info["dataset"] == "market1501" and info["splits"] == ["train", "gallery"]
    assert info["shard_size"] == 2 and info["mask_size"] == [256, 128]
    assert info["images"] == {"count": 5, "sha256": hashlib.sha256(lines.encode()).hexdigest()}
    assert info["labeler"] == {"backend": "fake", "weights": "none"}


def test_rerun_with_another_shard_size_is_refused_before_any_work(tmp_path, market, fake_labeler):
    """The issue's reproduction: shard size 2, then 1, into the same --out."""
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out, shard_size=2)
    before = snapshot(out)
    labeler = fake_labeler()
    with pytest.raises(DaafError) as error:
        label(labeler, dataset, out, shard_size=1)
    assert str(error.value) == (
        f"{out / 'store.json'} was made with other settings: shard_size: 2 (store) vs 1 "
        f"(this run); {OUT_HINT}"
    )
    assert labeler.batches == [] and snapshot(out) == before
    assert validate_store(out, dataset) == []


def _other_images(dataset):
    return dataclasses.replace(dataset, gallery=dataset.gallery[:1])


def _other_dataset(dataset):
    return dataclasses.replace(dataset, name="dukemtmc")


@pytest.mark.parametrize(
    "change,options,expected",
    [
        (_other_images, {}, "images: {'count': 6, 'sha256': '"),
        (_other_dataset, {}, "dataset: 'market1501' (store) vs 'dukemtmc' (this run)"),
        (None, {"splits": ("train", "query")}, "splits: ['train', 'query', 'gallery'] (store) vs"),
        ("labeler", {}, "labeler.weights: 'none' (store) vs 'other' (this run)"),
    ],
)
def test_rerun_with_other_images_splits_dataset_or_labeler_is_refused(
    tmp_path, market, fake_labeler, change, options, expected
):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out)
    (out / "gallery-00000.h5").unlink()  # an interrupted store: a resume would write this shard
    before = snapshot(out)
    labeler = fake_labeler()
    if change == "labeler":
        labeler.describe = lambda: {"backend": "fake", "weights": "other"}
    elif change is not None:
        dataset = change(dataset)
    with pytest.raises(DaafError, match="was made with other settings") as error:
        label(labeler, dataset, out, **options)
    assert expected in str(error.value) and str(error.value).endswith(OUT_HINT)
    assert labeler.batches == [] and snapshot(out) == before


def test_overwrite_replaces_the_store_as_a_whole(tmp_path, market, fake_labeler):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out, shard_size=2)
    (out / "label_report.json").write_text("{}")  # the old store's files all go
    run = label(fake_labeler(), dataset, out, shard_size=1, overwrite=True)
    assert run.shards_written == 6 and run.shards_skipped == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".daaf",
        "gallery-00000.h5",
        "gallery-00001.h5",
        "manifest.csv",
        "query-00000.h5",
        "store.json",
        "train-00000.h5",
        "train-00001.h5",
        "train-00002.h5",
    ]
    assert json.loads((out / "store.json").read_text())["shard_size"] == 1
    assert validate_store(out, dataset) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "store"]  # no temporary folder


class Crash(KeyboardInterrupt):
    """An interruption: an exception of one image would be recorded as status 3 instead."""


def test_interrupted_overwrite_leaves_the_old_store_intact(tmp_path, market, fake_labeler):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out, shard_size=2)
    before = snapshot(out)

    crashing = fake_labeler()
    crashing.label = lambda images: (_ for _ in ()).throw(Crash())  # dies in its first batch
    with pytest.raises(Crash):
        label(crashing, dataset, out, shard_size=1, overwrite=True)
    assert snapshot(out) == before
    assert validate_store(out, dataset) == []
    assert overwrite_dir(out).is_dir()  # the half-made new store is beside it, not in it

    label(fake_labeler(), dataset, out, shard_size=1, overwrite=True)  # starts the new one afresh
    assert json.loads((out / "store.json").read_text())["shard_size"] == 1
    assert validate_store(out, dataset) == [] and not overwrite_dir(out).exists()


def test_same_settings_rerun_still_resumes(tmp_path, market, fake_labeler):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out)
    (out / "query-00000.h5").unlink()
    labeler = fake_labeler()
    run = label(labeler, dataset, out)
    assert (run.shards_written, run.shards_skipped) == (1, 3) and labeler.batches == [1]
    assert validate_store(out, dataset) == []


def test_a_run_that_ends_in_an_invalid_store_fails_with_the_validation_message(
    tmp_path, market, fake_labeler
):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out)
    # a stray shard (copied by hand) that the plan does not own: its images are stored twice
    (out / "gallery-00007.h5").write_bytes((out / "gallery-00000.h5").read_bytes())
    with pytest.raises(DaafError) as error:
        label(fake_labeler(), dataset, out)
    message = str(error.value)
    assert message.startswith("the labeled store does not validate: ")
    assert "stored more than once" in message or "gallery-00007.h5" in message
    assert f"`daaf annotations validate {out}` lists every problem" in message


def test_overwrite_refuses_a_folder_that_is_not_a_store(tmp_path, market, fake_labeler):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("keep me")
    with pytest.raises(DaafError, match=r"--overwrite: .*thesis is not an annotation store"):
        label(fake_labeler(), dataset, out, overwrite=True)
    assert (out / "chapter1.tex").read_text() == "keep me"


def test_a_store_without_store_json_is_refused(tmp_path, market, fake_labeler):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    label(fake_labeler(), dataset, out)
    (out / "store.json").unlink()  # as an older daaf wrote it
    with pytest.raises(DaafError, match=r"holds a store without store.json \(made by an older"):
        label(fake_labeler(), dataset, out)


def test_cli_refuses_another_shard_size_in_one_line_and_overwrites_on_request(
    tmp_path, market, fake_labeler, monkeypatch, cli
):
    monkeypatch.setattr(
        "daaf.labeling.backends.build_labeler", lambda name, **options: fake_labeler()
    )
    out = tmp_path / "store"
    args = label_args(market, out, "--workers", "0", "--device", "cpu")
    cli(*args, "--shard-size", "2")
    result = cli(*args, "--shard-size", "1", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "shard_size: 2 (store) vs 1 (this run)" in result.output
    assert "--overwrite" in result.output and "wrote" not in result.output

    result = cli(*args, "--shard-size", "1", "--overwrite")
    assert len(list(out.glob("*.h5"))) == 6 and (out / "label_report.json").exists()
    result = cli("annotations", "validate", out, "--root", market, ok=False)
    assert result.exit_code == 0 and "OK: " in result.output
    with AnnotationStore(out) as store:
        assert len(store) == 6
