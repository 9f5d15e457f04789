"""Every config override the README and configs/ show works as written.

The examples are read from the files, not listed here: a `section.key=value` inside a README code
span or block, or in a config file's comments, is loaded onto configs/daaf_bot.yaml (the
README's training config) and the model and losses are built from it. Placeholders in capitals
(DATA, DIR, STORE, PATH) get real values. The README's `daaf train` command lines run on the tiny
dataset, in order (train, then --resume).
"""

import dataclasses
import re
import shlex
from pathlib import Path

import pytest
import torch
import torchvision

from daaf.config import Config, load_config
from daaf.errors import DaafError
from daaf.models import build_model
from daaf.training.losses import build_criterion

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SECTIONS = "|".join(f.name for f in dataclasses.fields(Config))
OVERRIDE = re.compile(rf"(?<![\w.])((?:{SECTIONS})\.\w+)=(\[\[.*?\]\]|\[.*?\]|[^\s`]*)")
PLACEHOLDER = re.compile(r"[A-Z][A-Z_]*(/\w+)*")
SMALL = ["model.depth=18", "model.pretrained=none"]  # before the example, which may change them
TINY = [
    "data.height=64",
    "data.width=32",
    "data.pad=2",
    "data.num_identities=4",
    "data.num_instances=2",
    "data.workers=0",
    "train.epochs=1",
    "train.iters_per_epoch=1",
    "data.pre_crop_size=null",
    *SMALL,
]


def readme_code() -> list[str]:
    """The README's code blocks and inline code spans."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", README, flags=re.S)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", README, flags=re.S))
    return blocks + spans


def config_comments() -> list[str]:
    files = sorted((REPO / "configs").rglob("*.yaml"))
    return [
        line.split("#", 1)[1] for f in files for line in f.read_text().splitlines() if "#" in line
    ]


EXAMPLES = sorted(
    {
        f"{m[1]}={m[2].rstrip('.,;:')}"  # a full stop of the surrounding sentence is not the value's
        for text in readme_code() + config_comments()
        for m in OVERRIDE.finditer(text)
    }
)


def test_the_docs_show_examples():
    assert {"model.pab_groups=7", "optim.lr=1e-4", "data.root=DATA"} <= set(EXAMPLES)


@pytest.fixture(scope="module")
def stand_ins(tiny_dataset, tmp_path_factory) -> dict[str, str]:
    """Real values for the placeholders, by key."""
    weights = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    return {
        "data.root": str(tiny_dataset),
        "data.annotations": str(tiny_dataset / "annotations"),
        "model.pretrained": str(weights),
    }


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_documented_override_loads_and_builds(example, stand_ins):
    key, value = example.split("=", 1)
    if PLACEHOLDER.fullmatch(value):
        assert key in stand_ins, f"no stand-in for the placeholder in {example}"
        example = f"{key}={stand_ins[key]}"
    cfg = load_config(REPO / "configs/daaf_bot.yaml", [*SMALL, example])
    if cfg.model.pretrained == "imagenet":  # offline, the documented error names the file
        cached = Path(torch.hub.get_dir()) / "checkpoints" / "resnet18-f37072fd.pth"
        if not cached.is_file():
            with pytest.raises(DaafError, match="resnet18-f37072fd.pth are not in"):
                build_model(cfg, 4)
            return
    model = build_model(cfg, 4)
    build_criterion(cfg, 4, model.feat_dim)
    output = model.train()(torch.randn(2, 3, 64, 32))
    assert output.features.shape == (2, model.feat_dim)
    assert (output.mask is not None) == cfg.model.hab and (
        output.parts is not None
    ) == cfg.model.pab


def readme_train_commands() -> list[list[str]]:
    lines = "\n".join(readme_code()).replace("\\\n", " ").splitlines()
    return [shlex.split(line)[1:] for line in lines if line.strip().startswith("daaf train ")]


def test_the_readme_train_commands_run_as_written(tiny_dataset, tmp_path, monkeypatch, cli):
    commands = readme_train_commands()
    assert any("--resume" in c for c in commands) and any("--resume" not in c for c in commands)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    stand_in = {
        "DATA": str(tiny_dataset),
        "DIR": str(tiny_dataset),
        "DATA/annotations": str(tiny_dataset / "annotations"),
        "STORE": str(tiny_dataset / "annotations"),
    }
    for args in commands:
        args = [re.sub(r"=(.+)$", lambda m: "=" + stand_in.get(m[1], m[1]), a) for a in args]
        args = [a if a.startswith("--") else stand_in.get(a, a) for a in args]
        result = cli(*args, *TINY, ok=False)
        assert result.exit_code == 0, (args, result.output)
        out = Path(args[args.index("--out") + 1])
        assert (out / "checkpoints" / "last.pt").is_file()
