"""The one exception type the command line shows to users without a traceback."""


class DaafError(Exception):
    """A problem the user can fix (bad path, wrong layout, missing weights, bad config key).

    The message must name the file or setting at fault and say what was expected.
    """
