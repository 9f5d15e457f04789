"""The trainer: presets run, resume is exact, NaN stops cleanly, the CLI trains and exports."""

import glob
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from daaf.cli import main
from daaf.errors import DaafError
from daaf.training.config import load_config
from daaf.training.trainer import train

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.height=64", "data.width=32", "data.pad=2", "data.num_identities=4",
        "data.num_instances=2", "data.workers=0", "model.depth=18", "model.pretrained=none",
        "train.log_period=1", "data.dataset=market1501"]  # fmt: skip


def tiny_overrides(root: Path, *extra: str) -> list[str]:
    return [f"data.root={root}", f"data.annotations={root / 'annotations'}", *TINY, *extra]


PRESETS = sorted(
    glob.glob(str(REPO / "configs" / "*.yaml"))
    + glob.glob(str(REPO / "configs" / "paper" / "*.yaml"))
)


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: Path(p).stem)
def test_every_preset_trains_a_step(preset, tiny_dataset, tmp_path):
    overrides = tiny_overrides(
        tiny_dataset, "train.epochs=1", "train.iters_per_epoch=1", "model.last_stride=1"
    )
    if "trinet" in Path(preset).read_text() or "table" in preset:
        overrides.append("data.pre_crop_size=null")
    cfg = load_config(preset, overrides)
    last = train(cfg, tmp_path / "run")
    state = torch.load(last, weights_only=False)
    assert state["epoch"] == 1 and state["step"] == 1
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") == 1


def test_resume_gives_exactly_the_uninterrupted_weights(tiny_dataset, tmp_path):
    overrides = tiny_overrides(
        tiny_dataset, "train.epochs=2", "train.checkpoint_period=1", "train.iters_per_epoch=2"
    )
    straight = torch.load(train(load_config(REPO / "configs/daaf_bot.yaml", overrides), tmp_path / "a"),
                          weights_only=False)  # fmt: skip
    first = load_config(REPO / "configs/daaf_bot.yaml", [*overrides, "train.epochs=1"])
    train(first, tmp_path / "b")
    resumed = torch.load(train(load_config(REPO / "configs/daaf_bot.yaml", overrides), tmp_path / "b", resume=True),
                         weights_only=False)  # fmt: skip
    assert resumed["step"] == straight["step"] == 4
    for name, tensor in straight["model"].items():
        assert torch.equal(tensor, resumed["model"][name]), name
    for name, tensor in straight["criterion"].items():
        assert torch.equal(tensor, resumed["criterion"][name]), name


def test_nan_loss_stops_with_the_step_and_term(tiny_dataset, tmp_path):
    cfg = load_config(
        REPO / "configs/bot.yaml", tiny_overrides(tiny_dataset, "optim.lr=1e30", "train.epochs=3")
    )
    with pytest.raises(DaafError, match=r"loss term '\w+' is (nan|inf) at step \d+"):
        train(cfg, tmp_path / "run")


def test_missing_annotations_are_listed(tiny_dataset, tmp_path):
    import shutil

    store = tmp_path / "partial"
    shutil.copytree(tiny_dataset / "annotations", store)
    manifest = (store / "manifest.csv").read_text().splitlines()
    (store / "manifest.csv").write_text("\n".join(manifest[:1] + manifest[3:]) + "\n")
    cfg = load_config(
        REPO / "configs/daaf_bot.yaml", [*tiny_overrides(tiny_dataset), f"data.annotations={store}"]
    )
    with pytest.raises(
        DaafError,
        match="does not cover the training split: 2 of 48 images missing, first: bounding_box_train/0001",
    ):
        train(cfg, tmp_path / "run")


def test_cli_train_then_export(tiny_dataset, tmp_path):
    run, export_dir = tmp_path / "run", tmp_path / "model"
    args = ["train", "--config", str(REPO / "configs/daaf_bot.yaml"), "--out", str(run),
            *tiny_overrides(tiny_dataset, "train.epochs=1", "train.iters_per_epoch=2")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "config.yaml").is_file()
    assert list((run / "tensorboard").iterdir())
    result = CliRunner().invoke(
        main, ["export", str(run / "checkpoints" / "last.pt"), "--out", str(export_dir)]
    )
    assert result.exit_code == 0, result.output
    assert '"passed": true' in result.output
    bad = CliRunner().invoke(
        main, ["train", "--config", str(REPO / "configs/demo.yaml"), "model.nope=1"]
    )
    assert bad.exit_code == 1 and "unknown config key 'nope'" in bad.output


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tiny_dataset, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m", "daaf.cli", "train",
           "--config", str(REPO / "configs/daaf_bot.yaml"), "--out", str(tmp_path / "ddp"),
           *tiny_overrides(tiny_dataset, "train.epochs=1", "train.device=cpu")]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(tmp_path / "ddp" / "checkpoints" / "last.pt", weights_only=False)
    single = load_config(
        REPO / "configs/daaf_bot.yaml", tiny_overrides(tiny_dataset, "train.epochs=1")
    )
    from daaf.data.datasets import build_dataset
    from daaf.data.sampler import PKBatchSampler

    train_split = build_dataset("market1501", tiny_dataset).train
    per_rank = len(PKBatchSampler([s.pid for s in train_split], 4, 2, world_size=2))
    assert state["step"] == per_rank
    del single
