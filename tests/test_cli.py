"""The `daaf` group lists every stage's command and maps user errors to one-line messages."""

import subprocess
import sys

COMMANDS = (
    "label",
    "train",
    "export",
    "evaluate",
    "embed",
    "search",
    "demo",
    "synth",
    "annotations",
    "datasets",
)


def test_help_lists_every_command(cli):
    result = cli("--help")
    for name in COMMANDS:
        assert f"  {name} " in result.output


def test_console_script_runs_as_a_subprocess():
    result = subprocess.run(
        [sys.executable, "-m", "daaf.cli", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "daaf" in result.stdout
