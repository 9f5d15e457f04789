"""Out-of-range option values stop every command while its options are read: one line naming
the option and the value, exit 2, nothing written."""

import pytest
from click.testing import CliRunner

from daaf.cli import main


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        (["evaluate", "--model", "{tmp}", "--dataset", "market1501", "--root", "{tmp}"],
         "--batch-size", "0"),
        (["evaluate", "--model", "{tmp}", "--dataset", "market1501", "--root", "{tmp}"],
         "--workers", "-1"),
        (["evaluate", "--model", "{tmp}", "--dataset", "market1501", "--root", "{tmp}"],
         "--device", "bogus"),
        (["evaluate", "--model", "{tmp}", "--dataset", "market1501", "--root", "{tmp}"],
         "--num-ranklists", "-1"),
        (["synth"], "--seed", "-1"),
        (["synth"], "--seed", "4294967296"),
        (["compare", "--baseline", "{tmp}", "--candidate", "{tmp}"], "--seed", "-1"),
        (["label", "--dataset", "market1501", "--root", "{tmp}"], "--device", "gpu"),
        (["label", "--dataset", "market1501", "--root", "{tmp}"], "--seed", "-1"),
        (["visualize", "--model", "{tmp}", "--dataset", "market1501", "--root", "{tmp}"],
         "--device", "cuda:x"),
        (["visualize", "--model", "{tmp}", "--dataset", "market1501", "--root", "{tmp}"],
         "--n", "0"),
        (["visualize", "--model", "{tmp}", "--dataset", "market1501", "--root", "{tmp}"],
         "--components", "-1"),
        (["visualize", "--model", "{tmp}", "--dataset", "market1501", "--root", "{tmp}"],
         "--jitter", "0"),
        (["demo"], "--device", "bogus"),
        (["demo"], "--epochs", "0"),
        (["annotations", "show", "{tmp}"], "--seed", "-1"),
    ],
)  # fmt: skip
def test_a_bad_option_value_is_one_line_and_exit_2(tmp_path, command, option, value):
    out = tmp_path / "out"
    args = [a.replace("{tmp}", str(tmp_path)) for a in command]
    args += ["--out", str(out) + (".png" if "show" in command else ""), option, value]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: Invalid value for '{option}': "), result.output
    assert f" {value} is not" in result.output or f" '{value}' is not a device" in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "--help" in result.output and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_option_is_one_line_too():
    result = CliRunner().invoke(main, ["evaluate", "--dataset", "market1501"], prog_name="daaf")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: Missing option '--model'. (see `daaf evaluate --help`)"
    )
