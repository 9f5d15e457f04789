"""The one exception type the command line shows to users without a traceback."""


class DaafError(Exception):
    """A problem the user can fix (bad path, wrong layout, missing weights, bad config key).

    The message must name the file or setting at fault and say what was expected.
    """


class ConfigError(DaafError):
    """A config key or value that is not allowed; the command line exits 2, as for a usage error."""
