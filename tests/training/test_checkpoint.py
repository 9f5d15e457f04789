"""Checkpoints and exports that do not fit: one line naming the file, never a traceback, and
nothing allocated, written or scored for them."""

import copy
import json
import shutil
import time
from pathlib import Path

import pytest
import torch

from daaf.config import Config
from daaf.models import build_model, load_inference_model
from daaf.training.export import export_model

REPO = Path(__file__).resolve().parents[2]


def tiny_config(**model) -> Config:
    cfg = Config()
    cfg.data.height, cfg.data.width = 64, 32
    cfg.model.depth, cfg.model.pretrained = 18, "none"
    for key, value in model.items():
        setattr(cfg.model, key, value)
    return cfg


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """(folder, state): a ResNet-18 BoT checkpoint of 8 classes, as ``folder/ckpt.pt``, and
    its export in ``folder/model``. It was trained on a dataset that its training script had
    registered (``register_dataset``), which this process has not."""
    folder = tmp_path_factory.mktemp("checkpoint")
    cfg = tiny_config()
    torch.manual_seed(0)
    state = {"model": build_model(cfg, 8).state_dict(), "config": cfg.to_dict(), "num_classes": 8}
    state["config"]["data"]["dataset"] = "my_cameras"
    torch.save(state, folder / "ckpt.pt")
    export_model(folder / "ckpt.pt", folder / "model")
    return folder, state


def _set(*path_and_value):
    """A change of a checkpoint: the value (last) at the path of keys before it."""
    *parents, key, value = path_and_value

    def change(state):
        for parent in parents:
            state = state[parent]
        state[key] = value

    return change


def _drop(key: str):
    return lambda state: state["model"].pop(key)


# (id, change of the good checkpoint, what the one line says)
BAD_CHECKPOINTS = [
    ("model_list", _set("model", [1, 2]), "its model is not a state dict (names -> tensors)"),
    ("classes_x", _set("num_classes", "x"), "num_classes must be a positive integer, got 'x'"),
    ("classes_negative", _set("num_classes", -5), "num_classes must be a positive integer, got -5"),
    ("config_list", _set("config", ["a"]), "its config is a list, not a mapping of sections"),
    ("extra_key", _set("model", "extra.weight", torch.zeros(2)), "1 unexpected (extra.weight)"),
    ("missing_key", _drop("head.bnneck.weight"), "1 missing (head.bnneck.weight)"),
    (
        "misshaped_key",
        _set("model", "head.bnneck.weight", torch.zeros(3)),
        "1 mis-shaped (head.bnneck.weight: (3,) in the file, (512,) expected)",
    ),
    (
        "1e11_classes",
        _set("num_classes", 10**11),
        "head.classifier.weight: (8, 512) in the file, (100000000000, 512) expected",
    ),
    # Sections the network is not built from are checked too: the file is what daaf wrote.
    (
        "optim_lr",
        _set("config", "optim", "lr", -1),
        "checkpoint config: optim.lr must be a number > 0, got -1",
    ),
    (
        "extra_section",
        _set("config", "extra", {}),
        "checkpoint config: unknown config key 'extra'; known keys: data, model, loss, optim, "
        "train",
    ),
    (
        "100000_pixels",
        _set("config", "data", "height", 100_000),
        "checkpoint config: data.height must be an integer in [1, 2048], got 100000",
    ),
    (
        "other_depth",
        _set("config", "model", "depth", 34),
        "its model does not fit the network its config",
    ),
]


@pytest.fixture(scope="module")
def bad_checkpoints(good, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    for name, change, _ in BAD_CHECKPOINTS:
        state = copy.deepcopy(good[1])
        change(state)
        torch.save(state, folder / f"{name}.pt")
    return folder


COMMANDS = {
    "export": lambda model, out: ["export", model, "--out", out],
    "evaluate": lambda model, out: [
        "evaluate",
        "--model",
        model,
        "--dataset",
        "market1501",
        "--root",
        out.parent / "no-data",
        "--out",
        out,
    ],
    "visualize": lambda model, out: [
        "visualize",
        "--model",
        model,
        "--dataset",
        "market1501",
        "--root",
        out.parent / "no-data",
        "--out",
        out,
    ],
}


# export reads checkpoints its own way; evaluate and visualize share load_inference_model.
CASES = [
    (command, name, says) for name, _, says in BAD_CHECKPOINTS for command in ("export", "evaluate")
]
CASES += [("visualize", name, says) for name, _, says in BAD_CHECKPOINTS[-3:]]


@pytest.mark.parametrize(("command", "name", "says"), CASES)
def test_a_checkpoint_that_does_not_fit_is_one_line(
    bad_checkpoints, tmp_path, command, name, says, cli
):
    path, out = bad_checkpoints / f"{name}.pt", tmp_path / "out"
    start = time.perf_counter()
    result = cli(*COMMANDS[command](path, out), ok=False)
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: ") and says in lines[0]
    assert not out.exists()
    assert time.perf_counter() - start < 20  # refused before 1e11 classes or huge images exist


def _export_with(good, tmp_path, **meta):
    folder = tmp_path / "model"
    shutil.copytree(good[0] / "model", folder)
    state = torch.load(folder / "model_state.pt", weights_only=True)
    state.update(meta)
    torch.save(state, folder / "model_state.pt")
    return folder


@pytest.mark.parametrize(
    ("meta", "says"),
    [
        ({}, "its meta is {}, not the mapping daaf export writes"),
        ("x", "its meta is 'x', not the mapping daaf export writes"),
        ({"height": -5}, "meta.height must be an integer in [1, 2048], got -5"),
        ({"pixel_std": [0, 1, 1]}, "meta.pixel_std must be a list of 3 numbers > 0, got [0, 1, 1]"),
        ({"metric": "manhattan"}, "meta.metric must be one of euclidean, cosine"),
        ({"embedding_dim": -1}, "meta.embedding_dim must be a positive integer, got -1"),
        (
            {"embedding_dim": 7},
            "meta.embedding_dim is 7, but the network it describes gives "
            "embeddings of dimension 512",
        ),
        ({"depth": 50}, "meta.depth is 50, but its config and weights are model.depth 18"),
        (
            {"base": "x" * 60},
            f"meta.base is '{'x' * 39}, but its config and weights are model.base 'bot'",
        ),
    ],
)
def test_export_meta_that_is_not_daaf_s_is_one_line(good, tmp_path, meta, says, cli):
    if isinstance(meta, dict) and meta:  # one wrong value among the right ones
        whole = torch.load(good[0] / "model" / "model_state.pt", weights_only=True)["meta"]
        meta = {**whole, **meta}
    folder = _export_with(good, tmp_path, meta=meta)
    result = cli(
        "evaluate",
        "--model",
        folder,
        "--dataset",
        "market1501",
        "--root",
        tmp_path / "no-data",
        ok=False,
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {folder / 'model_state.pt'}: {says}"]


def test_an_export_whose_config_breaks_a_rule_outside_the_network_is_one_line(good, tmp_path, cli):
    config = torch.load(good[0] / "model" / "model_state.pt", weights_only=True)["config"]
    folder = _export_with(good, tmp_path, config={**config, "loss": {"triplet_margin": "x"}})
    args = ["embed", "--model", folder, "--images", tmp_path, "--out", tmp_path / "e.h5"]
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {folder / 'model_state.pt'}: checkpoint config: loss.triplet_margin must be "
        "null or a number >= 0, got 'x'"
    ]


def test_trusted_torchscript_meta_that_is_not_json_is_one_line(tmp_path, cli):
    path = tmp_path / "model.ts"
    torch.jit.save(
        torch.jit.trace(torch.nn.Flatten(), torch.zeros(1, 3, 4, 2)),
        str(path),
        _extra_files={"daaf_meta.json": "{not json"},
    )
    result = cli(
        "evaluate",
        "--model",
        path,
        "--trust-torchscript",
        "--dataset",
        "market1501",
        "--root",
        tmp_path,
        ok=False,
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {path}: its daaf_meta.json is not JSON (not written by daaf export)"
    ]


def test_a_checkpoint_of_a_registered_dataset_loads_in_a_fresh_process(good):
    """``register_dataset`` lives in the process that trained: the checkpoint only records the
    name, and exports (``good``) and loads without it."""
    from daaf.data.datasets import DATASETS

    folder, _ = good
    assert "my_cameras" not in DATASETS
    assert json.loads((folder / "model" / "export_report.json").read_text())["passed"]
    for path in (folder / "ckpt.pt", folder / "model"):
        model, meta = load_inference_model(path, torch.device("cpu"))
        assert model(torch.zeros(2, 3, 64, 32)).shape == (2, 512) and meta.height == 64
    saved = torch.load(folder / "model" / "model_state.pt", weights_only=True)
    assert saved["config"]["data"]["dataset"] == "my_cameras"


@pytest.fixture(scope="module")
def nan_checkpoint(good, tmp_path_factory):
    state = copy.deepcopy(good[1])
    for tensor in state["model"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))
    path = tmp_path_factory.mktemp("nan") / "nan.pt"
    torch.save(state, path)
    return path


def test_an_export_of_nan_weights_is_refused_and_writes_nothing(nan_checkpoint, tmp_path, cli):
    out = tmp_path / "model"
    result = cli("export", nan_checkpoint, "--out", out, ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {nan_checkpoint}: the trained model's embeddings hold 2048 non-finite values "
        "(NaN or inf) of 2048: its weights are broken (a diverged run?); nothing exported"
    ]
    assert not out.exists()


def test_evaluating_nan_weights_is_an_error_not_100_percent(
    nan_checkpoint, tiny_dataset, tmp_path, cli
):
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--model",
        str(nan_checkpoint),
        "--dataset",
        "market1501",
        "--root",
        str(tiny_dataset),
        "--workers",
        "0",
        "--out",
        str(out),
    ]
    result = cli(*args, ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output  # after a progress bar
    assert result.output.splitlines()[-1:] == [
        "Error: 8192 of 8192 values of the query features are not finite (NaN or inf): the "
        "model's weights or its inputs are broken (a diverged training run?); nothing was scored"
    ]
    assert not (out / "metrics.json").exists()


# ---- daaf train --resume ----------------------------------------------------------------------

TINY = [
    "data.height=64",
    "data.width=32",
    "data.pad=2",
    "data.num_identities=4",
    "data.num_instances=2",
    "data.workers=0",
    "model.depth=18",
    "model.pretrained=none",
    "data.pre_crop_size=null",
    "train.epochs=2",
    "train.iters_per_epoch=1",
]


@pytest.fixture(scope="module")
def trained(tiny_dataset, tmp_path_factory):
    """A DAAF-BoT run stopped after its first of two epochs: its last.pt and its overrides."""
    from daaf.config import load_config
    from daaf.training.trainer import train

    run = tmp_path_factory.mktemp("run")
    overrides = [
        f"data.root={tiny_dataset}",
        f"data.annotations={tiny_dataset / 'annotations'}",
        *TINY,
    ]
    train(load_config(REPO / "configs/daaf_bot.yaml", [*overrides, "train.epochs=1"]), run)
    return run / "checkpoints" / "last.pt", overrides


def _drop_key(key):
    return lambda state: state.pop(key)


def _other_groups(state):
    group = copy.deepcopy(state["optimizer"]["param_groups"][0])
    state["optimizer"]["param_groups"].append({**group, "params": [10_000]})


RESUMES = [
    (
        "depth",
        [],
        ["model.depth=34"],
        "trained with model.depth=18, but this run asks for model.depth=34; resume with the run's "
        "own config.yaml, or train into another --out",
    ),
    (
        "hab",
        [],
        ["model.hab=false"],
        "trained with model.hab=True, but this run asks for model.hab=False",
    ),
    (
        "height",
        [],
        ["data.height=128"],
        "trained with data.height=64, but this run asks for data.height=128; resume with",
    ),  # the same run: data, losses, optimiser, seed as trained
    (
        "seed",
        [],
        ["train.seed=1", "optim.lr=0.1"],
        "trained with optim.lr=0.00035, train.seed=0, "
        "but this run asks for optim.lr=0.1, train.seed=1; resume with",
    ),
    ("epoch", _drop_key("epoch"), [], "cannot resume: no epoch in this checkpoint"),
    ("criterion", _drop_key("criterion"), [], "cannot resume: no criterion in this checkpoint"),
    ("rng", _drop_key("rng"), [], "cannot resume: no rng in this checkpoint"),
    (
        "optimizer",
        _other_groups,
        [],
        "its optimizer does not fit this run (ValueError: loaded state "
        "dict has a different number of parameter groups)",
    ),
    ("model", _set("model", [1]), [], "its model is not a state dict (names -> tensors)"),
]


@pytest.mark.parametrize(("name", "change", "extra", "says"), RESUMES, ids=[r[0] for r in RESUMES])
def test_resume_from_a_checkpoint_that_does_not_fit_is_one_line(
    trained, tmp_path, name, change, extra, says, cli
):
    last, overrides = trained
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    state = torch.load(last, weights_only=True)
    if change:
        change(state)
    torch.save(state, run / "checkpoints" / "last.pt")
    args = [
        "train",
        "--config",
        str(REPO / "configs/daaf_bot.yaml"),
        "--out",
        str(run),
        "--resume",
        *overrides,
        *extra,
    ]
    result = cli(*args, ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    last_line = result.output.splitlines()[-1]  # progress bars may come first
    assert last_line.startswith(f"Error: {run / 'checkpoints' / 'last.pt'}: ") and says in last_line
    assert not (run / "metrics.jsonl").exists()


@pytest.mark.parametrize(
    ("epoch", "says"),
    [(None, "no epoch in this checkpoint"), ("x", "epoch must be an integer >= 0, got 'x'")],
)
def test_the_finished_run_check_of_demo_and_run_table_is_one_line(good, tmp_path, epoch, says):
    """``daaf demo`` and scripts/run_table.py skip a finished run by its checkpoint's epoch."""
    from daaf.errors import DaafError
    from daaf.training.checkpoint import trained_epochs

    state = {**good[1], **({} if epoch is None else {"epoch": epoch})}
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(DaafError) as info:
        trained_epochs(tmp_path / "last.pt")
    assert str(info.value).startswith(f"{tmp_path / 'last.pt'}: {says}")
    torch.save({**state, "epoch": 3}, tmp_path / "last.pt")
    assert trained_epochs(tmp_path / "last.pt") == 3
