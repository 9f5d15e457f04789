"""`daaf train`: an --out that holds a run is refused without --resume, one stopped before its
first checkpoint starts again, a busy --out is refused; random-weight labels warn."""

import json
import logging
import os
import shutil
from pathlib import Path

import h5py

from daaf.errors import DaafError
from daaf.training import engine
from daaf.utils.lock import folder_lock

REPO = Path(__file__).resolve().parents[2]
TINY = [
    "data.height=64",
    "data.width=32",
    "data.pad=2",
    "data.num_identities=4",
    "data.num_instances=2",
    "data.workers=0",
    "model.depth=18",
    "model.pretrained=none",
    "train.log_period=1",
    "data.pre_crop_size=null",
    "train.iters_per_epoch=1",
]


def label_with_random_weights(store: Path) -> None:
    """Mark every shard as `daaf label --weights random` marks it."""
    for shard in store.glob("*.h5"):
        with h5py.File(shard, "r+") as file:
            labeler = json.loads(file.attrs["labeler"])
            file.attrs["labeler"] = json.dumps({**labeler, "weights": "random"}, sort_keys=True)


def test_an_existing_run_is_refused_without_resume(tiny_dataset, tmp_path, caplog, cli):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    label_with_random_weights(data / "annotations")
    run = tmp_path / "run"

    def daaf_train(*extra):
        args = [
            "train",
            "--config",
            str(REPO / "configs/daaf_bot.yaml"),
            "--out",
            str(run),
            f"data.root={data}",
            f"data.annotations={data / 'annotations'}",
            *TINY,
            *extra,
        ]
        return cli(*args, ok=False)

    with caplog.at_level(logging.WARNING, logger="daaf.training.trainer"):
        assert daaf_train("train.epochs=1").exit_code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "labeled with random weights (3 of 3 shards)" in warnings[0]
    assert str(data / "annotations") in warnings[0]

    last = run / "checkpoints" / "last.pt"
    before = (last.read_bytes(), (run / "metrics.jsonl").read_text())
    again = daaf_train("train.epochs=1")
    assert again.exit_code == 1
    assert again.output.strip() == (
        f"Error: {run} already holds a run (checkpoints, metrics.jsonl, config.yaml): continue it "
        "with --resume, or train into another --out"
    )
    assert (last.read_bytes(), (run / "metrics.jsonl").read_text()) == before

    (run / "checkpoints").rename(tmp_path / "elsewhere")  # stopped before a checkpoint, and
    (run / ".daaf").rename(tmp_path / "marker")  # made by a daaf older than the run marker
    partial = daaf_train("train.epochs=1")
    assert partial.exit_code == 1
    assert partial.output.strip() == (
        f"Error: {run} holds run files (metrics.jsonl, config.yaml) without a checkpoint, and no "
        ".daaf marker says daaf made them: train into another --out"
    )

    (tmp_path / "elsewhere").rename(run / "checkpoints")
    resumed = daaf_train("train.epochs=1", "--resume")  # finished: nothing left to train
    assert resumed.exit_code == 0, resumed.output
    assert f"checkpoint: {last}" in resumed.output
    assert (last.read_bytes(), (run / "metrics.jsonl").read_text()) == before


def daaf_train(cli, run: Path, data: Path, *extra: str):
    args = [
        "train",
        "--config",
        str(REPO / "configs/daaf_bot.yaml"),
        "--out",
        str(run),
        f"data.root={data}",
        f"data.annotations={data / 'annotations'}",
        *TINY,
        *extra,
    ]
    return cli(*args, ok=False)


def test_a_run_stopped_before_its_first_checkpoint_starts_again(
    tiny_dataset, tmp_path, monkeypatch, cli
):
    """Ctrl-C, or a crash on a bad value, in the first epoch: no checkpoint to --resume from,
    so a plain re-run starts from the beginning, its logs replacing the stopped run's."""
    run, bot = tmp_path / "run", ("model.hab=false", "model.pab=false", "train.epochs=1")
    real_step = engine.train_step

    def stopping_at(stop_step, stop):
        def train_step(*args, step, **kwargs):
            if step == stop_step:
                raise stop
            return real_step(*args, step=step, **kwargs)

        return train_step

    def steps():
        return [json.loads(line)["step"] for line in open(run / "metrics.jsonl")]

    with monkeypatch.context() as patch:
        patch.setattr(engine, "train_step", stopping_at(1, KeyboardInterrupt()))
        stopped = daaf_train(cli, run, tiny_dataset, *bot, "train.iters_per_epoch=2")
        assert stopped.exit_code == 1 and not (run / "checkpoints").exists() and steps() == [1]
        resumed = daaf_train(cli, run, tiny_dataset, *bot, "--resume")
        assert resumed.exit_code == 1 and "start without --resume" in resumed.output
        patch.setattr(engine, "train_step", stopping_at(0, DaafError("a bad value")))
        crashed = daaf_train(cli, run, tiny_dataset, *bot, "train.iters_per_epoch=2")
        assert crashed.output.splitlines()[-1] == "Error: a bad value" and steps() == []
    again = daaf_train(cli, run, tiny_dataset, *bot, "train.iters_per_epoch=2")
    assert again.exit_code == 0, again.output
    assert steps() == [1, 2] and (run / "checkpoints" / "last.pt").is_file()


def test_a_second_train_into_a_busy_out_is_refused_in_one_line(tiny_dataset, tmp_path, cli):
    run = tmp_path / "run"
    with folder_lock(run):  # another daaf train, still running
        result = daaf_train(cli, run, tiny_dataset, "train.epochs=1")
        assert result.exit_code == 1
        assert result.output.strip().splitlines() == [
            f"Error: {run} is in use by another daaf run (process {os.getpid()} holds "
            f"{run / '.daaf.lock'}); wait for it to end, or use another --out"
        ]
        assert sorted(p.name for p in run.iterdir()) == [".daaf.lock"]  # nothing written
    assert not run.exists()  # the lock's folder goes with it when nothing was written
