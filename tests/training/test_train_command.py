"""`daaf train`: an --out that holds a run is refused without --resume; random-weight labels warn."""

import json
import logging
import shutil
from pathlib import Path

import h5py
from click.testing import CliRunner

from daaf.cli import main

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.height=64", "data.width=32", "data.pad=2", "data.num_identities=4",
        "data.num_instances=2", "data.workers=0", "model.depth=18", "model.pretrained=none",
        "train.log_period=1", "data.pre_crop_size=null", "train.iters_per_epoch=1"]  # fmt: skip


def label_with_random_weights(store: Path) -> None:
    """Mark every shard as `daaf label --weights random` marks it."""
    for shard in store.glob("*.h5"):
        with h5py.File(shard, "r+") as file:
            labeler = json.loads(file.attrs["labeler"])
            file.attrs["labeler"] = json.dumps({**labeler, "weights": "random"}, sort_keys=True)


def test_an_existing_run_is_refused_without_resume(tiny_dataset, tmp_path, caplog):
    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    label_with_random_weights(data / "annotations")
    run = tmp_path / "run"

    def daaf_train(*extra):
        args = ["train", "--config", str(REPO / "configs/daaf_bot.yaml"), "--out", str(run),
                f"data.root={data}", f"data.annotations={data / 'annotations'}", *TINY, *extra]  # fmt: skip
        return CliRunner().invoke(main, args)

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

    (run / "checkpoints").rename(tmp_path / "elsewhere")  # a run that stopped before a checkpoint
    partial = daaf_train("train.epochs=1")
    assert partial.exit_code == 1 and "(metrics.jsonl, config.yaml)" in partial.output

    (tmp_path / "elsewhere").rename(run / "checkpoints")
    resumed = daaf_train("train.epochs=1", "--resume")  # finished: nothing left to train
    assert resumed.exit_code == 0, resumed.output
    assert f"checkpoint: {last}" in resumed.output
    assert (last.read_bytes(), (run / "metrics.jsonl").read_text()) == before
