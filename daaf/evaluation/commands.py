"""Command `daaf evaluate`."""

from daaf.utils.cli import not_yet_available

evaluate = not_yet_available("evaluate", "Evaluate a model on a dataset.")
