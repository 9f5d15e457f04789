"""A refused run leaves nothing in the next run's way, and an input that is a FIFO is named in
one line without being opened."""

import os

import pytest
import torch

from tests.data.test_images import finishes


def nan_model(tiny_model, folder):
    """An export folder of the tiny model with every floating-point weight NaN."""
    state = torch.load(tiny_model / "model_state.pt", weights_only=True)
    for tensor in state["state_dict"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))
    folder.mkdir()
    torch.save(state, folder / "model_state.pt")
    return folder


@pytest.mark.slow
def test_evaluate_refusing_a_nan_model_leaves_no_out(tiny_dataset, tiny_model, tmp_path, cli):
    """It left an --out holding only daaf's marker; now the folders it made go with it."""
    out = tmp_path / "runs" / "eval"
    args = [
        "evaluate",
        "--model",
        str(nan_model(tiny_model, tmp_path / "nan")),
        "--dataset",
        "market1501",
        "--root",
        str(tiny_dataset),
        "--workers",
        "0",
        "--out",
        str(out),
    ]
    result = cli(*args, ok=False)
    assert result.exit_code == 1, result.output
    assert "values of the query features are not finite" in result.output.splitlines()[-1]
    assert not (tmp_path / "runs").exists()


def test_compare_names_a_queries_csv_that_is_a_fifo(tmp_path, cli):
    os.mkfifo(tmp_path / "conditions.csv")
    args = [
        "compare",
        "--baseline",
        str(tmp_path),
        "--candidate",
        str(tmp_path),
        "--queries",
        f"{tmp_path / 'conditions.csv'}:occluded",
    ]
    result = finishes(lambda: cli(*args, ok=False))
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: {tmp_path / 'conditions.csv'}: a FIFO (named pipe), not a regular file"
    ]
