"""Command `daaf label`."""

from daaf.utils.cli import not_yet_available

label = not_yet_available("label", "Label a dataset with person masks and 17 keypoints.")
