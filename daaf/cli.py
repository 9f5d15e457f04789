"""The ``daaf`` command: assembles the commands each subpackage defines in its ``commands.py``.

Command modules import torch and other heavy libraries inside the command bodies, so that
``daaf --help`` stays fast. A :class:`~daaf.errors.DaafError` becomes a one-line message (a file
name's control characters and undecodable bytes escaped) and exit code 1, never a traceback; a
:class:`~daaf.errors.ConfigError` (a bad config key or value) exits 2, as click's usage errors
do, which are shown in one line too.
"""

from __future__ import annotations

import click

from daaf import __version__
from daaf.data.annotations.commands import annotations
from daaf.data.datasets.commands import datasets
from daaf.data.synthetic.commands import synth
from daaf.demo import demo
from daaf.errors import ConfigError, DaafError
from daaf.evaluation.commands import compare, evaluate
from daaf.evaluation.visualize_command import visualize
from daaf.inference.commands import embed, search
from daaf.labeling.commands import install_backend, label
from daaf.training.commands import export, train
from daaf.utils.files import printable


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:  # no context: the one line, without the usage text
            raise click.UsageError(printable(str(exc))) from exc
        except DaafError as exc:  # a file name's newline or undecodable bytes shown escaped
            raise click.ClickException(printable(str(exc))) from exc
        except click.UsageError as exc:  # a bad option of a command: one line, still exit 2
            if exc.ctx is None:
                raise
            raise click.UsageError(
                f"{exc.format_message()} (see `{exc.ctx.command_path} --help`)"
            ) from exc


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="daaf")
def main() -> None:
    """Deep Attention Aware Feature Learning for person re-identification.

    label -> train -> export -> evaluate; `daaf demo` runs all of them on synthetic data;
    embed and search run a trained model on any images.
    """


for command in (
    label,
    train,
    export,
    evaluate,
    compare,
    embed,
    search,
    visualize,
    demo,
    synth,
    annotations,
    datasets,
    install_backend,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
