"""Out-of-range option values stop every command while its options are read: one line naming
the option and the value, exit 2, nothing written."""

import click
import pytest

from daaf.cli import main

# The commands' required arguments, before the option under test.
VISUALIZE = ["visualize", "--model", "{tmp}", "--dataset", "market1501", "--root", "{tmp}"]
SEARCH = ["search", "--gallery", "{tmp}/g.h5", "--query", "{tmp}", "--model", "{tmp}"]
EVALUATE = ["evaluate", "--model", "{tmp}", "--dataset", "market1501", "--root", "{tmp}"]


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        (EVALUATE, "--batch-size", "0"),
        (EVALUATE, "--workers", "-1"),
        (EVALUATE, "--device", "bogus"),
        (EVALUATE, "--num-ranklists", "-1"),
        (["synth"], "--seed", "-1"),
        (["synth"], "--seed", "4294967296"),
        (["compare", "--baseline", "{tmp}", "--candidate", "{tmp}"], "--seed", "-1"),
        (["label", "--dataset", "market1501", "--root", "{tmp}"], "--device", "gpu"),
        (["label", "--dataset", "market1501", "--root", "{tmp}"], "--seed", "-1"),
        (VISUALIZE, "--device", "cuda:x"),
        (VISUALIZE, "--n", "0"),
        (VISUALIZE, "--components", "-1"),
        (VISUALIZE, "--jitter", "0"),
        (["demo"], "--device", "bogus"),
        (["demo"], "--epochs", "0"),
        (["annotations", "show", "{tmp}"], "--seed", "-1"),
        (["compare", "--baseline", "{tmp}", "--candidate", "{tmp}"], "--bootstrap", "1000000000"),
        (["compare", "--baseline", "{tmp}", "--candidate", "{tmp}"], "--bootstrap", str(10**30)),
        (EVALUATE, "--num-ranklists", "1001"),
        (["embed", "--model", "{tmp}", "--images", "{tmp}"], "--batch-size", str(10**30)),
        (["embed", "--model", "{tmp}", "--images", "{tmp}"], "--workers", "257"),
        (SEARCH, "--top", "1001"),
        (SEARCH, "--top", "0"),
        (VISUALIZE, "--n", "65"),
        (VISUALIZE, "--jitter", "9"),
        (["label", "--dataset", "market1501", "--root", "{tmp}"], "--shard-size", str(10**30)),
        (["label", "--dataset", "market1501", "--root", "{tmp}"], "--min-size", "801"),
        (["synth"], "--identities", str(10**30)),
        (["synth"], "--images-per-identity", "3"),
        (["synth"], "--occlusion", "1.5"),
        (["demo"], "--identities", "1001"),
        (["demo"], "--epochs", "121"),
        (["annotations", "show", "{tmp}"], "--n", "1025"),
    ],
)
def test_a_bad_option_value_is_one_line_and_exit_2(tmp_path, command, option, value, cli):
    out = tmp_path / "out"
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    args += ["--out", str(out) + (".png" if "show" in command else ""), option, value]
    result = cli(*args, ok=False)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: Invalid value for '{option}': "), result.output
    assert f" {value} is not" in result.output or f" '{value}' is not a device" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "--help" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_option_is_one_line_too(cli):
    result = cli("evaluate", "--dataset", "market1501", prog_name="daaf", ok=False)
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: Missing option '--model'. (see `daaf evaluate --help`)"
    )


def numeric_options():
    """(command path, option) of every int or float option of every daaf command."""
    commands = [([name], command) for name, command in main.commands.items()]
    while commands:
        path, command = commands.pop()
        if isinstance(command, click.Group):
            commands += [([*path, name], sub) for name, sub in command.commands.items()]
            continue
        for param in command.params:
            if isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
                yield " ".join(path), param


def test_every_count_size_and_repeat_option_is_bounded_on_both_sides():
    """An unbounded count ran for ever (compare --bootstrap 10^9) or ended in a traceback
    (10^30); each has a range now, which click shows in --help and checks in one line."""
    options = list(numeric_options())
    assert len(options) >= 25  # every command's counts, sizes, seeds and probabilities
    unbounded = [
        f"{path} {param.opts[0]}"
        for path, param in options
        if not isinstance(param.type, (click.IntRange, click.FloatRange))
        or param.type.min is None
        or param.type.max is None
    ]
    assert unbounded == []
    for path, param in options:
        default = param.default
        assert default is None or param.type.min <= default <= param.type.max, (path, param)
