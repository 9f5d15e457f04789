"""`daaf datasets list` and `daaf datasets check` through the real command group."""

import json

from daaf.data.datasets import DATASETS


def test_list_shows_every_dataset_and_layout(cli):
    result = cli("datasets", "list")
    lines = result.output.splitlines()
    names = [line.split()[0] for line in lines[1:] if not line.startswith(" ")]
    assert names == sorted(DATASETS)
    for entry in DATASETS.values():
        for layout_line in entry.layout.splitlines():
            assert layout_line in result.output
    assert "Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}" in result.output
    assert "cuhk03/cuhk03_release/cuhk-03.mat" in result.output


def test_check_json_is_exactly_the_summary(market_root, cli):
    result = cli("datasets", "check", "market1501", "--root", market_root, "--json")
    assert result.stdout == (
        '{"train": {"images": 4, "ids": 3, "cameras": 4}, '
        '"query": {"images": 2, "ids": 2, "cameras": 2}, '
        '"gallery": {"images": 3, "ids": 3, "cameras": 3}}\n'
    )
    assert json.loads(result.stdout)["gallery"]["images"] == 3
    assert result.stderr == (
        "skipped 1 file:\n  file name does not parse: 1 (e.g. bounding_box_train/IMG_1234.jpg)\n"
    )


def test_check_table(market_root, cli):
    result = cli("datasets", "check", "synthetic", "--root", market_root)
    assert result.stdout.splitlines() == [
        f"synthetic: {market_root / 'Market-1501-v15.09.15'}",
        "split      images     ids  cameras",
        "train           4       3        4",
        "query           2       2        2",
        "gallery         3       3        3",
        "skipped 1 file:",
        "  file name does not parse: 1 (e.g. bounding_box_train/IMG_1234.jpg)",
    ]


def test_check_errors_are_one_line(tmp_path, cli):
    result = cli("datasets", "check", "dukemtmc", "--root", tmp_path, ok=False)
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {tmp_path}: expected bounding_box_train, query, bounding_box_test in ROOT/DukeMTMC-reID"
    )
    result = cli("datasets", "check", "duke", "--root", tmp_path, ok=False)
    assert result.exit_code == 1
    assert "unknown dataset 'duke'; known: cuhk03_detected" in result.stderr
