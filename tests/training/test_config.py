"""Configs: _base_ chains, dotted overrides, every field checked by type and range, and errors
that name the key, the value and what is allowed (exit 2 from `daaf train`, no run folder)."""

import dataclasses
import os
import re
import typing
from pathlib import Path

import pytest

from daaf.config import Config, config_from_dict, load_config
from daaf.data.keypoints import KEYPOINT_GROUPS
from daaf.errors import ConfigError, DaafError
from daaf.models import build_model
from daaf.utils.config_fields import checked_value

REPO = Path(__file__).resolve().parents[2]


def test_base_chain_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("model:\n  depth: 34\n  hab: true\noptim:\n  lr: 0.1\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\nmodel:\n  depth: 18\n")
    cfg = load_config(tmp_path / "child.yaml", ["optim.lr=1e-4", "model.pab_groups=[[0, 1], [2]]"])
    assert cfg.model.depth == 18 and cfg.model.hab is True
    assert cfg.optim.lr == pytest.approx(1e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.model.pab_groups == [[0, 1], [2]]
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.deph=18"], "unknown config key 'deph'"),
        (["modle.depth=18"], "unknown config key 'modle'"),
        (["optim.lr=fast"], r"optim.lr must be a number > 0, got 'fast'"),
        (["optim"], "must look like section.key=value"),
    ],
)
def test_bad_overrides_name_the_key(overrides, message):
    with pytest.raises(DaafError, match=message):
        load_config(None, overrides)


def test_bad_files_are_named(tmp_path):
    (tmp_path / "typo.yaml").write_text("train:\n  epochs: 3\n  epoch: 4\n")
    with pytest.raises(DaafError, match=r"typo.yaml: train: unknown config key 'epoch'"):
        load_config(tmp_path / "typo.yaml")
    (tmp_path / "loop.yaml").write_text("_base_: loop.yaml\n")
    with pytest.raises(DaafError, match="circular _base_"):
        load_config(tmp_path / "loop.yaml")
    with pytest.raises(DaafError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_unknown_key_in_a_base_file_names_that_file(tmp_path):
    (tmp_path / "base.yaml").write_text("optim:\n  lr: 0.1\n  lr_decay: 0.5\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\noptim:\n  lr: 0.2\n")
    with pytest.raises(DaafError, match=r"base.yaml: optim: unknown config key 'lr_decay'"):
        load_config(tmp_path / "child.yaml")
    (tmp_path / "base.yaml").write_text("optim:\n  lr: 0.1\n")
    with pytest.raises(DaafError, match=r"override 'optim.lrr=1': optim: unknown config key 'lrr'"):
        load_config(tmp_path / "child.yaml", ["optim.lrr=1"])
    assert load_config(tmp_path / "child.yaml", ["optim.lr=0.3"]).optim.lr == 0.3


def test_every_default_satisfies_its_own_rules():
    for section in dataclasses.fields(Config):
        cls = typing.get_type_hints(Config)[section.name]
        for f in dataclasses.fields(cls):
            default = getattr(cls(), f.name)
            assert checked_value(cls, f.name, default, f.name, "default") == default, f.name


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("all", "all"),
        ("4", "4"),
        ("6", "6"),
        ("7", "7"),
        ("each", "each"),
        ("'6'", "6"),
        (4, "4"),
        (6, "6"),
        (7, "7"),
        ("[[0, 1, 2, 3, 4], [11, 12]]", [[0, 1, 2, 3, 4], [11, 12]]),
    ],
)
def test_every_pab_grouping_form_builds_its_groups(value, stored):
    """YAML reads model.pab_groups=7 as an int: it means the scheme "7", as in the README."""
    cfg = load_config(
        REPO / "configs/daaf_bot.yaml",
        [f"model.pab_groups={value}", "model.depth=18", "model.pretrained=none"],
    )
    assert cfg.model.pab_groups == stored
    expected = KEYPOINT_GROUPS[stored] if isinstance(stored, str) else tuple(map(tuple, stored))
    assert build_model(cfg, 4).pab.groups == expected


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.hab=maybe", "model.hab must be true or false, got 'maybe'"),
        ("train.epochs=1.5", r"train.epochs must be an integer in \[1, 1000000\], got 1.5"),
        ("data.height=128.0", r"data.height must be an integer in \[1, 2048\], got 128.0"),
        ("optim.milestones=9", "optim.milestones must be a list of integers >= 0, got 9"),
        ("data.pixel_mean=0.5", "data.pixel_mean must be a list of 3 numbers, got 0.5"),
        ("train.device=gpu", "train.device must be auto, cpu, cuda or cuda:N, got 'gpu'"),
        ("data.workers=-1", r"data.workers must be an integer in \[0, 256\], got -1"),
        ("model.base=resnet", "model.base must be one of bot, trinet, got 'resnet'"),
        ("model.depth=51", "model.depth must be one of 18, 34, 50, 101, got 51"),
        ("optim.name=rmsprop", "optim.name must be one of adam, sgd, got 'rmsprop'"),
        ("optim.schedule=cosine", "optim.schedule must be one of warmup_multistep, exponential"),
        ("loss.branch_loss=l1", "loss.branch_loss must be one of l2, mse, got 'l1'"),
        ("model.pab_target=parts", "model.pab_target must be one of keypoints, part_images"),
        ("model.decoder_stride=2", "model.decoder_stride must be one of 1, 4, got 2"),
        ("model.decoder_stride=true", "model.decoder_stride must be one of 1, 4, got True"),
        (
            "model.pab_groups=5",
            "model.pab_groups must be one of all, 4, 6, 7, each or a list of "
            "lists of integers, got 5",
        ),
        ("model.pab_groups=[[0, 1], [1]]", "model.pab_groups: a keypoint appears in more than one"),
        ("model.pab_groups=[[0, 17]]", "model.pab_groups: a custom keypoint grouping needs"),
        ("data.flip_prob=1.5", r"data.flip_prob must be a number in \[0, 1\], got 1.5"),
        ("data.pixel_std=[1, 1, 0]", "data.pixel_std must be a list of 3 numbers > 0"),
        ("data.pre_crop_size=[288]", "data.pre_crop_size must be null or a list of 2 integers"),
        ("optim.lr=0", "optim.lr must be a number > 0, got 0"),
        ("optim.lr=.inf", "optim.lr must be a number > 0, got inf"),
        ("loss.triplet_margin=soft", "loss.triplet_margin must be null or a number >= 0"),
        ("train.iters_per_epoch=0", "train.iters_per_epoch must be null or an integer in"),
        (
            "data.keypoint_score_threshold=2",
            "data.keypoint_score_threshold must be auto or a "
            r"number in \[0, 1\], got 2",
        ),
        ("data.keypoint_score_threshold=high", "data.keypoint_score_threshold must be auto or a"),
        ("data.dataset=market", "data.dataset: unknown dataset 'market'; known: "),
        ("model.pab_groups=[[0, 1]", "the value is not valid YAML"),
        # Upper bounds: values that passed, then crashed or allocated without end.
        ("train.seed=4294967296", r"train.seed must be an integer in \[0, 4294967295\]"),
        (
            "train.ddp_timeout_minutes=1e300",
            r"train.ddp_timeout_minutes must be a number in \(0, 10080\], got '1e300'",
        ),
        (
            "model.decoder_channels=100000000",
            r"model.decoder_channels must be an integer in \[1, 4096\], got 100000000",
        ),
        ("data.pre_crop_size=[288, 100000]", "data.pre_crop_size must be null or a list of 2"),
        ("data.heatmap_sigma=1e-30", r"data.heatmap_sigma must be a number in \[0.1, 2048\]"),
        (
            "train.iters_per_epoch=10000000000",
            r"train.iters_per_epoch must be null or an integer in \[1, 1000000\]",
        ),
        (
            "train.epochs=1000000000000",
            r"train.epochs must be an integer in \[1, 1000000\], got 1000000000000",
        ),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(override, message):
    with pytest.raises(ConfigError, match=rf"^override '{re.escape(override)}': {message}"):
        load_config(None, [override])


def test_accepted_special_values():
    cfg = load_config(
        None,
        [
            "data.keypoint_score_threshold=auto",
            "train.device=cuda:1",
            "optim.lr=1e-4",
            "loss.triplet_margin=null",
            "data.pre_crop_size=[288, 144]",
            "train.epochs=3",
        ],
    )
    assert cfg.data.keypoint_score_threshold == "auto" and cfg.train.device == "cuda:1"
    assert cfg.optim.lr == 1e-4 and cfg.loss.triplet_margin is None and cfg.train.epochs == 3
    assert load_config(None, ["data.keypoint_score_threshold=0"]).data.keypoint_score_threshold == 0


def test_a_bad_value_in_a_file_names_the_file(tmp_path):
    (tmp_path / "bad.yaml").write_text("model:\n  hab: maybe\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: model.hab must be true or false"):
        load_config(tmp_path / "bad.yaml")


@pytest.mark.parametrize(
    "override",
    [
        "model.hab=maybe",
        "train.epochs=1.5",
        "data.height=128.0",
        "optim.milestones=9",
        "data.pixel_mean=0.5",
        "train.device=gpu",
        "data.workers=-1",
        "model.nope=1",
        "data.pre_crop_size=[10,10]",
        "optim.decay_start_iter=25000",
        "train.seed=4294967296",
    ],
)
def test_daaf_train_exits_2_with_one_line_and_no_run_folder(tmp_path, override, cli):
    out = tmp_path / "run"
    args = ["train", "--config", str(REPO / "configs/demo.yaml"), "--out", str(out), override]
    result = cli(*args, ok=False)
    assert result.exit_code == 2, result.output
    key = override.split("=")[0].split(".")[-1]
    assert result.output.startswith(f"Error: override '{override}'")  # (, other sources):
    assert key in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["data.pre_crop_size=[10, 10]"],
            r"override 'data.pre_crop_size=\[10, 10\]': "
            r"data.pre_crop_size must be at least data.height, data.width \(\[256, 128\]\), "
            r"got \[10, 10\]$",
        ),
        (
            ["data.pre_crop_size=[288, 144]", "data.width=160"],
            "override 'data.pre_crop_size=.*', "
            "override 'data.width=160': data.pre_crop_size must be at least",
        ),
        (
            ["optim.decay_start_iter=25000"],
            "override 'optim.decay_start_iter=25000': "
            r"optim.decay_end_iter must be more than optim.decay_start_iter \(25000\), got 25000$",
        ),
        (
            ["optim.decay_end_iter=100"],
            "override 'optim.decay_end_iter=100': "
            r"optim.decay_end_iter must be more than optim.decay_start_iter \(15000\), got 100$",
        ),
        (
            ["model.decoder_stride=4", "data.height=250"],
            "override 'data.height=250', override "
            "'model.decoder_stride=4': data.height and data.width must be multiples of "
            r"model.decoder_stride \(4\), got 250x128$",
        ),
    ],
)
def test_rules_between_fields_are_checked_once_everything_is_read(overrides, message):
    """A crop smaller than the image (a crash in the first batch) and a decay that ends where it
    starts (a ZeroDivisionError at decay_start_iter, hours into a run) stop before any work."""
    with pytest.raises(ConfigError, match=f"^{message}"):
        load_config(None, overrides)


def test_fields_may_be_made_consistent_in_any_order(tmp_path):
    (tmp_path / "base.yaml").write_text("data:\n  pre_crop_size: [288, 144]\n")
    (tmp_path / "tall.yaml").write_text(
        "_base_: base.yaml\ndata:\n  height: 320\n  pre_crop_size: [352, 176]\n"
    )
    cfg = load_config(
        tmp_path / "tall.yaml", ["optim.decay_end_iter=40000", "optim.decay_start_iter=30000"]
    )
    assert cfg.data.pre_crop_size == [352, 176] and cfg.optim.decay_start_iter == 30000
    assert load_config(None, ["data.pre_crop_size=[256, 128]"]).data.pre_crop_size == [256, 128]
    with pytest.raises(ConfigError, match=r"checkpoint config: optim.decay_end_iter must be more"):
        config_from_dict({"optim": {"decay_start_iter": 5, "decay_end_iter": 5}})


def test_a_huge_value_gives_a_short_line():
    """A huge pab_groups once gave a 12 MB error line; values and overrides are cut short."""
    groups = "[[0, 1], [" + ", ".join(["1"] * 2000) + "]]"
    for override in (f"model.pab_groups={groups}", f"data.height={groups}", f"{groups}"):
        with pytest.raises(ConfigError) as error:
            load_config(None, [override])
        assert len(str(error.value)) < 400 and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("model:\n  depth: 18\n".encode("utf-16"), "not a UTF-8 text file"),
        (bytes(range(256)), "not a UTF-8 text file"),
        (b"model: [\x01\n", "not valid YAML: "),
        (b"_base_: 5\n", "_base_ must be the path of a YAML file .*, got 5$"),
        (b"_base_: [a.yaml]\n", "_base_ must be the path of a YAML file"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply to be a daaf config$"),
        # 1.6 MB of 150,000 pab_groups: refused by its size, before PyYAML parses it
        (
            b"model:\n  pab_groups: [" + b"[0, 1, 2], " * 150_000 + b"[3]]\n",
            r"1,650,\d+ bytes is not a daaf config \(at most 1,048,576 bytes\)$",
        ),
    ],
)
def test_unreadable_config_files_give_one_line(tmp_path, content, message):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: {message}") as error:
        load_config(path)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "optim:\n  lr: 0.1\n  gamma: 0.2\n  lr: 0.3\n",
            "key 'lr' is given twice in one mapping, at lines 2 and 4",
        ),
        (
            "optim: {lr: 0.1}\ntrain: {epochs: 3}\noptim: {gamma: 0.5}\n",
            "key 'optim' is given twice in one mapping, at lines 1 and 3",
        ),
        (
            "model:\n  trinet_dims: [8, 4]\n  depth: 18\n  depth: 34\n",
            "key 'depth' is given twice in one mapping, at lines 3 and 4",
        ),
        ("optim: {lr: 0.1, lr: 0.2}\n", "key 'lr' is given twice in one mapping, at lines 1 and 1"),
        ("1: a\ntrue: b\n", "key True is given twice in one mapping, at lines 1 and 2"),
    ],
)
def test_a_key_given_twice_is_refused_with_both_lines(tmp_path, content, message):
    """PyYAML keeps the later of two equal keys silently: the run would train with one of two
    values the file gives."""
    path = tmp_path / "twice.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=f"^{re.escape(str(path))}: {message}; keep one$"):
        load_config(path)


def test_a_key_twice_in_a_base_file_names_the_base_and_merge_keys_still_override(tmp_path):
    (tmp_path / "base.yaml").write_text("train:\n  epochs: 3\n  epochs: 4\n")
    (tmp_path / "child.yaml").write_text("_base_: base.yaml\n")
    with pytest.raises(ConfigError, match=r"base.yaml: key 'epochs' is given twice.*lines 2 and 3"):
        load_config(tmp_path / "child.yaml")
    # A << merge brings keys that the mapping may set again: YAML's own override, not a slip.
    (tmp_path / "anchors.yaml").write_text(
        "_base_: base_ok.yaml\noptim:\n  <<: {lr: 0.3, gamma: 0.5}\n  lr: 0.4\n"
    )
    (tmp_path / "base_ok.yaml").write_text("train:\n  epochs: 3\n")
    cfg = load_config(tmp_path / "anchors.yaml")
    assert (cfg.optim.lr, cfg.optim.gamma, cfg.train.epochs) == (0.4, 0.5, 3)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "a directory, not a regular file"),
        (lambda p: os.mkfifo(p), r"a FIFO \(named pipe\), not a regular file"),
        (
            lambda p: p.write_bytes(b""),
            r"empty: no settings in it \(a config is a mapping of sections\)",
        ),
        (
            lambda p: p.write_text("# all commented out\n#train:\n#  epochs: 3\n\n"),
            "empty: no settings in it",
        ),
    ],
)
def test_a_config_or_base_that_is_no_regular_file_or_empty_gets_its_own_message(
    tmp_path, make, message
):
    """Not 'does not exist' for what exists, no wait on a FIFO, and no defaults from a file
    that sets nothing."""
    target = tmp_path / "target.yaml"
    make(target)
    (tmp_path / "child.yaml").write_text("_base_: target.yaml\n")
    for path in (target, tmp_path / "child.yaml"):
        with pytest.raises(ConfigError, match=f"^{re.escape(str(target))}:? {message}"):
            load_config(path)


def test_a_device_as_config_is_named_as_one():
    with pytest.raises(ConfigError, match="^/dev/null: a character device, not a regular file$"):
        load_config("/dev/null")
