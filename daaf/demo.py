"""Command `daaf demo`."""

from daaf.utils.cli import not_yet_available

demo = not_yet_available("demo", "Run the whole pipeline on synthetic data.")
