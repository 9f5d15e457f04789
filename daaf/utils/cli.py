"""Pieces shared by the command modules."""

from __future__ import annotations

import click


def not_yet_available(name: str, summary: str) -> click.Command:
    """A listed command whose implementation has not landed yet: says so and exits with 2."""

    @click.command(name, help=f"{summary} (not yet available)", context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        click.echo(f"daaf {name}: not yet available in this version", err=True)
        raise SystemExit(2)

    return command
