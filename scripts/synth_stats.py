"""How hard each `daaf synth` set is before training: constant-map PCK, keypoint spread, chance mAP.

    python scripts/synth_stats.py DIR [DIR ...]   # e.g. a default and a --preset misaligned root

Per root, on its query split: the constant-map PCK (every query keypoint predicted at the
training set's per-keypoint median position; PCK@0.1 x image height over the visible
keypoints), the keypoints' spread (per-keypoint std, mean over keypoints, px), the expected mAP
of a random ranking (the chance level), and, where the root has conditions.csv, how many
queries are occluded, misaligned, cut at the head or feet, or have someone in front.
"""

from __future__ import annotations

import json
import sys

import click

from daaf.data.synthetic.stats import summarize
from daaf.errors import DaafError


@click.command()
@click.argument("roots", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per root instead of text.")
def main(roots: tuple[str, ...], as_json: bool) -> None:
    """Print the figures of every ROOT written by `daaf synth`."""
    for root in roots:
        row = summarize(root)
        if as_json:
            click.echo(json.dumps(row))
            continue
        click.echo(f"{row['root']} (preset {row['preset']}):")
        click.echo(
            f"  queries {row['queries']}, gallery {row['gallery']}, visible query keypoints {row['visible_keypoints']}"
        )
        click.echo(f"  constant-map PCK@0.1h {row['constant_map_pck']:.3f}")
        click.echo(
            f"  keypoint std x {row['keypoint_std_x']:.1f} px, y {row['keypoint_std_y']:.1f} px"
        )
        click.echo(f"  chance mAP (random ranking) {100 * row['chance_map']:.2f}%")
        if "query_occluded" in row:
            click.echo(
                "  queries: "
                + ", ".join(f"{key[6:]} {row[key]}" for key in row if key.startswith("query_"))
            )


if __name__ == "__main__":
    try:
        main()
    except DaafError as exc:
        sys.exit(f"Error: {exc}")
