"""Command `daaf datasets`."""

from daaf.utils.cli import not_yet_available

datasets = not_yet_available("datasets", "List supported datasets and check one on disk.")
