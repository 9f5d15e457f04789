"""The trainer: presets take a step, resume is exact, NaN stops cleanly, the CLI trains and exports."""

import gc
import glob
import json
import multiprocessing
import operator
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from daaf.config import load_config
from daaf.errors import DaafError
from daaf.models import build_model
from daaf.training.checkpoint import load_checkpoint
from daaf.training.engine import Optimizers, train_step
from daaf.training.hooks import save_checkpoint
from daaf.training.losses import build_criterion
from daaf.training.trainer import train
from daaf.utils.safe_load import REFUSED

from ..conftest import REPO, tiny_overrides

PRESETS = sorted(glob.glob(str(REPO / "configs" / "*.yaml")))
PRESETS += sorted(glob.glob(str(REPO / "configs" / "paper" / "*.yaml")))


def fake_batch(p=4, k=2, h=64, w=32):
    """A worker batch (``TrainSet``) with random images, masks and keypoints."""
    generator = torch.Generator().manual_seed(0)
    n = p * k
    keypoints = torch.rand(n, 17, 3, generator=generator) * torch.tensor([w, h, 1.0])
    return {
        "images": torch.randint(0, 256, (n, h, w, 3), generator=generator, dtype=torch.uint8),
        "pids": torch.arange(p).repeat_interleave(k),
        "masks": torch.randint(0, 256, (n, 1, h, w), generator=generator, dtype=torch.uint8),
        "keypoints": keypoints,
        "valid": torch.tensor([True] * (n - 1) + [False]),
        "erasing": torch.tensor([[4, 2, 8, 6]] * n, dtype=torch.int32),
    }


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: Path(p).stem)
def test_every_preset_builds_and_takes_a_step(preset):
    from daaf.training.schedule import build_optimizer

    # a worker batch without a store: a number, not "auto", for the heatmaps
    cfg = load_config(
        preset, ["model.depth=18", "model.pretrained=none", "data.keypoint_score_threshold=0.3"]
    )
    model = build_model(cfg, num_classes=4)
    criterion = build_criterion(cfg, 4, model.feat_dim)
    centers = criterion.center_parameters()
    optimizers = Optimizers(
        build_optimizer(model.parameters(), cfg.optim),
        torch.optim.SGD(centers, lr=cfg.loss.center_lr) if centers else None,
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    values = train_step(
        model,
        fake_batch(p=2),
        optimizers,
        criterion,
        data=cfg.data,
    )
    assert all(torch.isfinite(torch.tensor(v)) for v in values.values())
    assert values["total"] == pytest.approx(sum(v for k, v in values.items() if k != "total"))
    assert ("hab" in values) == cfg.model.hab and ("pab" in values) == cfg.model.pab
    assert ("center" in values) == bool(centers)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("backbone.") for k in changed)
    assert any(k.startswith("hab.") for k in changed) == cfg.model.hab


# loss.branch_balance -> the effective weights it logs; the balanced runs adapt (at each
# measurement) or learn their weights
WEIGHTS = {"none": [], "grad_ratio": ["hab", "pab"], "uncertainty": ["hab", "pab", "reid"]}
BALANCES = ["none", *(pytest.param(b, marks=pytest.mark.slow) for b in WEIGHTS if b != "none")]


@pytest.mark.parametrize("balance", BALANCES)
def test_resume_gives_exactly_the_uninterrupted_weights(tiny_dataset, tmp_path, balance):
    overrides = tiny_overrides(
        tiny_dataset,
        "train.epochs=2",
        "train.checkpoint_period=1",
        "train.iters_per_epoch=2",
        "train.health_period=1",
        f"loss.branch_balance={balance}",
    )
    preset = REPO / "configs/daaf_bot.yaml"
    straight = load_checkpoint(train(load_config(preset, overrides), tmp_path / "a"))
    train(load_config(preset, [*overrides, "train.epochs=1"]), tmp_path / "b")
    resumed = load_checkpoint(train(load_config(preset, overrides), tmp_path / "b", resume=True))
    assert resumed["step"] == straight["step"] == 4 and resumed["epoch"] == 2
    # the decoders' optimiser group (optim.branch_weight_decay 0) resumes with its own state
    groups = straight["optimizer"]["param_groups"]
    assert [g["weight_decay"] for g in groups[:2]] == [5e-4, 0.0]
    assert resumed["optimizer"]["param_groups"] == groups
    for index, state in straight["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, resumed["optimizer"]["state"][index][key]), (index, key)
    for part in ("model", "criterion"):
        assert straight[part].keys() == resumed[part].keys()
        for name, value in straight[part].items():  # tensors; grad_ratio's weights: floats
            same = torch.equal if isinstance(value, torch.Tensor) else operator.eq
            assert same(value, resumed[part][name]), name
    assert (tmp_path / "b" / "checkpoints" / "epoch_001.pt").is_file()
    assert set(straight) >= {
        "model",
        "config",
        "num_classes",
        "optimizer",
        "center_optimizer",
        "scheduler",
        "epoch",
        "step",
        "sampler",
        "rng",
    }
    straight_log, resumed_log = (
        [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        for run in "ab"
    )
    losses = [line for line in straight_log if "total" in line]  # not the branch-health lines
    assert [line["step"] for line in losses] == [1, 2, 3, 4]
    assert {"id", "triplet", "center", "hab", "pab", "total", "lr", "images_per_s"} <= set(
        losses[0]
    )
    last = losses[-1]
    assert sorted(k for k in last if k.startswith("weight/")) == [
        f"weight/{term}" for term in WEIGHTS[balance]
    ]
    if balance != "none":  # the weights moved from lambda; the resumed run logged the same
        assert last["weight/pab"] != 0.003
        # each line logs the weights its losses were weighted with: step 1's are lambda's,
        # although the measurement after step 1 (health_period 1) already moved them
        assert losses[0]["weight/pab"] == 0.003 and losses[1]["weight/pab"] != 0.003
        resumed_last = [line for line in resumed_log if "total" in line][-1]
        assert resumed_last == {**last, "images_per_s": resumed_last["images_per_s"]}


@pytest.mark.parametrize("links", [True, False])
def test_last_checkpoint_is_the_newest_epoch_file_stored_once(tmp_path, monkeypatch, links):
    """last.pt shares epoch_XXX.pt's bytes (a hard link, or a copy where links fail), and the
    next save replaces last.pt without touching the older epoch file."""

    def no_links(*args):
        raise OSError("hard links not supported")

    if not links:
        monkeypatch.setattr("os.link", no_links)
    ckpt = tmp_path / "checkpoints"
    last = save_checkpoint({"epoch": 1, "w": torch.zeros(3)}, ckpt, 1)
    assert last == ckpt / "last.pt"
    assert (ckpt / "epoch_001.pt").samefile(last) is links
    save_checkpoint({"epoch": 2, "w": torch.ones(3)}, ckpt, 2)
    assert torch.load(ckpt / "epoch_001.pt")["epoch"] == 1
    assert torch.load(ckpt / "last.pt")["epoch"] == 2
    assert (ckpt / "last.pt").read_bytes() == (ckpt / "epoch_002.pt").read_bytes()
    assert sorted(p.name for p in ckpt.iterdir()) == ["epoch_001.pt", "epoch_002.pt", "last.pt"]


def test_the_crafted_file_runs_its_payload_when_fully_unpickled(tmp_path, malicious_pt):
    """What the refusal tests guard against: torch.load(weights_only=False) runs the payload."""
    write, marker = malicious_pt
    torch.load(write(tmp_path / "shared.pt"), weights_only=False)
    assert marker.exists()


def test_resume_refuses_a_checkpoint_that_would_run_code(tmp_path, malicious_pt, cli):
    write, marker = malicious_pt
    last = write(tmp_path / "run" / "checkpoints" / "last.pt")
    args = [
        "train",
        "--config",
        str(REPO / "configs/demo.yaml"),
        "--out",
        str(tmp_path / "run"),
        "--resume",
    ]
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {last}: {REFUSED}"]
    assert not marker.exists()
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoints"]  # nothing new


def test_nan_loss_stops_with_the_step_and_term(tiny_dataset, tmp_path):
    cfg = load_config(
        REPO / "configs/bot.yaml", tiny_overrides(tiny_dataset, "optim.lr=1e30", "train.epochs=3")
    )
    with pytest.raises(DaafError, match=r"loss term '\w+' is (nan|inf) at step [1-9]\d*;"):
        train(cfg, tmp_path / "run")


def test_the_loader_workers_end_when_training_returns(tiny_dataset, tmp_path):
    """Hooks that held the trainer kept it, and the train loader's persistent workers, alive
    until a garbage collection; at exit multiprocessing then killed them and `daaf train`
    printed "Exception ignored ... DataLoader worker is killed by signal" after a good run."""
    cfg = load_config(
        REPO / "configs/daaf_bot.yaml",
        tiny_overrides(tiny_dataset, "data.workers=2", "train.epochs=1", "train.iters_per_epoch=1"),
    )
    gc.disable()
    try:
        train(cfg, tmp_path / "run")
        assert multiprocessing.active_children() == []
    finally:
        gc.enable()


def test_branches_without_a_store_are_refused(tiny_dataset, tmp_path):
    cfg = load_config(
        REPO / "configs/daaf_bot.yaml", [*tiny_overrides(tiny_dataset), "data.annotations="]
    )
    with pytest.raises(DaafError, match="set data.annotations"):
        train(cfg, tmp_path / "run")


def test_cli_train_then_export(trained_export, tmp_path, cli):
    """``trained_export`` ran ``daaf train`` and ``daaf export`` (both exit 0, or it fails)."""
    run, export_dir = trained_export.run, trained_export.model
    assert f"checkpoint: {trained_export.checkpoint}" in trained_export.train.output
    assert load_config(run / "config.yaml").model.hab is True
    assert list((run / "tensorboard").iterdir())
    evaluation = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 < evaluation["eval/mAP"] <= 1 and 0 <= evaluation["eval/rank1"] <= 1
    assert '"passed": true' in trained_export.export.output
    assert {"model_state.pt", "model.ts", "model.onnx", "export_report.json"} <= {
        p.name for p in export_dir.iterdir()
    }
    bad = cli("train", "--config", REPO / "configs/demo.yaml", "model.nope=1", ok=False)
    assert bad.exit_code == 2 and "unknown config key 'nope'" in bad.output
    resume = cli(
        "train",
        "--config",
        REPO / "configs/demo.yaml",
        "--out",
        tmp_path / "none",
        "--resume",
        ok=False,
    )
    assert resume.exit_code == 1 and "no checkpoint at" in resume.output


@pytest.mark.slow
@pytest.mark.parametrize("balance", WEIGHTS)
def test_two_process_ddp_on_cpu(tiny_dataset, tmp_path, balance):
    """torchrun, gloo: both ranks step in lockstep on disjoint batches; rank 0 checkpoints and
    evaluates while rank 1 waits at the barrier. A balanced run averages the learned weights'
    gradients, or the measured gradient ratios, over the ranks."""
    shutil.copytree(tiny_dataset, tmp_path / "data")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "-m",
        "daaf.cli",
        "train",
        "--config",
        str(REPO / "configs/daaf_bot.yaml"),
        "--out",
        str(tmp_path / "ddp"),
        *tiny_overrides(
            tmp_path / "data",
            "train.epochs=1",
            "train.device=cpu",
            "train.iters_per_epoch=3",
            "train.eval_period=1",
            f"loss.branch_balance={balance}",
            "train.health_period=1",
        ),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert state["step"] == 3
    learned = {
        "none": None,
        "grad_ratio": "balance._extra_state",
        "uncertainty": "balance.log_vars",
    }
    if learned[balance]:
        weights = state["criterion"][learned[balance]]
        assert 0.003 not in weights.values() if balance == "grad_ratio" else weights.all()
    lines = [
        json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    ]
    lines = [line for line in lines if "health/pab/loss" not in line]
    assert len(lines) == 4  # rank 0 logs alone: 3 steps, then its evaluation
    assert lines[-1]["step"] == 3 and 0 < lines[-1]["eval/mAP"] <= 1
