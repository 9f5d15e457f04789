"""Command `daaf annotations`."""

from daaf.utils.cli import not_yet_available

annotations = not_yet_available("annotations", "Inspect, validate and draw annotation stores.")
