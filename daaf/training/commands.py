"""Commands `daaf train` and `daaf export`."""

from daaf.utils.cli import not_yet_available

train = not_yet_available("train", "Train a base or DAAF network from a YAML config.")
export = not_yet_available("export", "Export the stripped inference model from a checkpoint.")
