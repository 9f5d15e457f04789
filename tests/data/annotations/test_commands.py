"""`daaf annotations inspect | validate | show` through the real command group."""

import cv2
import numpy as np


def test_inspect_prints_counts_scores_and_random_weight_warning(tmp_path, helpers, cli):
    store = helpers.write_store(tmp_path / "store")
    result = cli("annotations", "inspect", store)
    lines = result.output.splitlines()
    assert "dataset market1501, 6 shard(s), masks 32x16" in lines[0]
    assert lines[3].split() == ["train", "5", "4", "1", "0", "0"]
    assert lines[5].split() == ["gallery", "3", "2", "0", "1", "0"]
    assert lines[6].split() == ["total", "10", "8", "1", "1", "0"]
    assert [line.split()[0] for line in lines[8:12]] == ["status", "person", "keypoint", "mask"]
    assert "WARNING" not in result.output

    random = helpers.write_store(tmp_path / "random", labeler={"weights": "random"})
    result = cli("annotations", "inspect", random, ok=False)
    assert "WARNING: 6 shard(s) were labeled with random weights" in result.output


def test_validate_exit_codes(tmp_path, store, cli):
    result = cli("annotations", "validate", store, ok=False)
    assert result.exit_code == 0 and result.output.strip().endswith(f"OK: {store}")
    data = (store / "query-00000.h5").read_bytes()
    (store / "query-00000.h5").write_bytes(data[: len(data) // 2])
    (store / "manifest.csv").unlink()
    result = cli("annotations", "validate", store, ok=False)
    assert result.exit_code == 1
    assert "query-00000.h5 cannot be opened: truncated" in result.output
    assert "manifest.csv is missing" in result.output
    assert "INVALID: 2 problem(s)" in result.output
    assert cli("annotations", "inspect", tmp_path / "nowhere", ok=False).exit_code == 1


def dark(rng, colors):
    """A flat dark 128x64 image (the store's image size)."""
    return np.full((128, 64, 3), 30, np.uint8), np.zeros((128, 64), np.float32), np.zeros((17, 3))


def test_validate_and_show_with_root(tmp_path, store, helpers, dataset_maker, cli):
    names = [path for _, path, _, _ in helpers.SAMPLES]
    root = dataset_maker(tmp_path / "data", names=names, picture=dark, annotations=False)
    result = cli("annotations", "validate", store, "--root", root)
    assert "covers dataset market1501" in result.output
    (root / "Market-1501-v15.09.15" / "query" / "0007_c2s1_000651_01.jpg").unlink()
    result = cli("annotations", "validate", store, "--root", root, ok=False)
    assert result.exit_code == 1
    assert "query: 1 stored image(s) are not in dataset 'market1501'" in result.output

    out = tmp_path / "grid.png"
    cli("annotations", "show", store, "--out", out, "--n", 3, "--root", root)
    grid = cv2.imread(str(out))
    assert np.median(grid[:256, :128]) == 30  # the dark image, not the grey canvas


def test_show_draws_a_grid_of_tiles(tmp_path, store, cli):
    out = tmp_path / "pictures" / "grid.png"
    cli("annotations", "show", store, "--out", out, "--n", 10, "--seed", 1)
    grid = cv2.imread(str(out))
    assert grid.shape == (2 * 256 + 4, 8 * 128 + 7 * 4, 3)
    tile = grid[:256, :128]
    assert (tile[250, 2] == 128).all()  # grey canvas away from the mask
    assert tile[:, :, 0].max() > 128  # mask overlay / skeleton colours are drawn
    assert (
        cli("annotations", "show", store, "--out", tmp_path / "grid.nope", ok=False).exit_code == 1
    )


def test_show_replaces_only_a_grid_it_drew(tmp_path, store, cli):
    """An existing --out that daaf did not draw (someone's figure) is refused and kept; a grid
    show drew (its PNG text says so) is drawn again."""
    figure = tmp_path / "figure.png"
    cv2.imwrite(str(figure), np.zeros((4, 4, 3), np.uint8))
    before = figure.read_bytes()
    result = cli("annotations", "show", store, "--out", figure, ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: --out {figure} exists and is not a grid daaf drew; daaf replaces only files it "
        "made: use another --out"
    ]
    assert figure.read_bytes() == before
    grid = tmp_path / "grid.png"
    cli("annotations", "show", store, "--out", grid, "--n", 2)
    cli("annotations", "show", store, "--out", grid, "--n", 3, "--seed", 2)
    assert cv2.imread(str(grid)).shape[1] == 3 * 128 + 2 * 4
