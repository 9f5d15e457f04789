"""Command `daaf synth`."""

from daaf.utils.cli import not_yet_available

synth = not_yet_available("synth", "Generate a synthetic pedestrian dataset with exact annotations.")
