"""The one exception type the command line shows to users without a traceback, and the helpers
that keep its messages one short line."""

from typing import Any

MAX_SHOWN = 60  # characters of a value an error message shows


class DaafError(Exception):
    """A problem the user can fix (bad path, wrong layout, missing weights, bad config key).

    The message must name the file or setting at fault and say what was expected.
    """


class ConfigError(DaafError):
    """A config key or value that is not allowed; the command line exits 2, as for a usage error."""


def shorten(text: str, limit: int = MAX_SHOWN) -> str:
    """``text`` cut to about ``limit`` characters, so that an error stays one short line."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def short_repr(value: Any) -> str:
    """``repr(value)``, shortened (a 10 MB list in an error message is no help)."""
    return shorten(repr(value))
