"""Hand-made or damaged embedding files: `daaf search` and `daaf embed --resume` end each in one
line naming the file and what is wrong, never a traceback or a ranking of garbage."""

import os
import re

import h5py
import numpy as np
import pandas as pd
import pytest

from daaf.errors import DaafError
from daaf.inference.store import FORMAT, EmbeddingWriter, file_sha256, read_embeddings

ROWS, DIM = 4, 512


def write_file(path, tiny_model, features=None, paths=None, **attrs):
    """An embedding file made by hand as docs/embeddings.md describes it, for the tiny model;
    ``attrs`` replace its attributes (None removes one)."""
    paths = [f"img{i}.jpg" for i in range(ROWS)] if paths is None else paths
    features = np.ones((len(paths), DIM), np.float32) if features is None else features
    values = {
        "format": FORMAT,
        "format_version": 1,
        "embedding_dim": DIM,
        "metric": "cosine",
        "model_sha256": file_sha256(tiny_model / "model_state.pt"),
        "flip": False,
        "root": "",
        "rows": len(paths),
        "num_unreadable": 0,
        "done": len(paths),
        "num_inputs": len(paths),
        "complete": True,
        **attrs,
    }
    with h5py.File(path, "w") as f:
        f["features"] = features
        f.create_dataset("paths", data=paths, dtype=h5py.string_dtype())
        f.create_dataset("unreadable", (0,), h5py.string_dtype())
        f.attrs.update({k: v for k, v in values.items() if v is not None})
    return path


CASES = {
    "wrong dimension": (
        {"features": np.ones((ROWS, 256), np.float32)},
        "features of dimension 256, but its embedding_dim attribute says 512",
    ),
    "1-D": (
        {"features": np.ones(ROWS, np.float32)},
        "features are float32 of shape (4,), not a floating-point (rows, dimension) matrix",
    ),
    "3-D": (
        {"features": np.ones((ROWS, DIM, 1), np.float32)},
        "features are float32 of shape (4, 512, 1), not a floating-point (rows, dimension) matrix",
    ),
    "strings": (
        {"features": np.full((ROWS, DIM), b"x")},
        "features are |S1 of shape (4, 512), not a floating-point (rows, dimension) matrix",
    ),
    "integers": (
        {"features": np.ones((ROWS, DIM), np.int64)},
        "features are int64 of shape (4, 512), not a floating-point (rows, dimension) matrix",
    ),
    "fewer paths": (
        {"paths": ["a.jpg"] * 3, "rows": ROWS, "features": np.ones((ROWS, DIM))},
        "4 rows of features but 3 paths",
    ),
    "more paths": (
        {"paths": ["a.jpg"] * 5, "rows": ROWS, "features": np.ones((ROWS, DIM))},
        "4 rows of features but 5 paths",
    ),
    "rows 10^12": (
        {"rows": 10**12},
        "its rows attribute says 1000000000000, but it holds 4 rows of features",
    ),
    "rows -5": ({"rows": -5}, "its rows attribute says -5, but it holds 4 rows of features"),
    "rows as text": ({"rows": "4"}, "its rows attribute is '4', not a whole number"),
    "unreadable count": (
        {"num_unreadable": 3},
        "its num_unreadable attribute says 3, but it holds 0 unreadable images",
    ),
    "dimension as text": (
        {"embedding_dim": "512"},
        "its embedding_dim attribute is '512', not a whole number",
    ),
    "unknown metric": (
        {"metric": "manhattan"},
        "its metric attribute 'manhattan' is none of euclidean, cosine",
    ),
    "flip as text": ({"flip": "False"}, "its flip attribute is 'False', not true or false"),
    "root as a number": ({"root": 5}, "its root attribute is 5, not a folder name"),
}


@pytest.fixture(scope="module")
def good_query(tiny_model, tmp_path_factory):
    return write_file(tmp_path_factory.mktemp("query") / "q.h5", tiny_model)


def search(cli, gallery, query, tiny_model, out):
    return cli(
        "search",
        "--gallery",
        gallery,
        "--query",
        query,
        "--model",
        tiny_model,
        "--out",
        out,
        ok=False,
    )


@pytest.mark.parametrize("case", CASES)
def test_a_hand_made_file_is_one_line_as_gallery_and_as_query(
    case, tiny_model, good_query, tmp_path, cli
):
    changes, message = CASES[case]
    bad = write_file(tmp_path / "bad.h5", tiny_model, **changes)
    for role, result in {
        "gallery": search(cli, bad, good_query, tiny_model, tmp_path / "a"),
        "query": search(cli, good_query, bad, tiny_model, tmp_path / "b"),
    }.items():
        assert result.exit_code == 1, (role, result.output)
        assert result.output.splitlines() == [f"Error: {bad}: {message}"], (role, result.output)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_hand_made_file_of_the_documented_format_is_searched(
    tiny_model, good_query, tmp_path, cli
):
    """The cases above are refused for what they change, not for being hand-made."""
    result = search(cli, good_query, good_query, tiny_model, tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "(4 queries x top 4, cosine distances)" in result.output


@pytest.mark.parametrize(("rows", "unwritten"), [(10**9, "features"), (ROWS, "paths")])
def test_rows_never_written_are_one_line_not_a_search_of_zeros(
    rows, unwritten, tiny_model, good_query, tmp_path, cli
):
    """Rows made with a shape alone store nothing: searching 10^9 of them would never end."""
    bad = write_file(tmp_path / "sparse.h5", tiny_model, rows=rows, done=rows, num_inputs=rows)
    with h5py.File(bad, "r+") as f:
        for name in ("features", "paths"):
            del f[name]
        f.create_dataset("features", (rows, DIM), np.float32, chunks=(min(rows, 1024), DIM))
        f.create_dataset("paths", (rows,), h5py.string_dtype(), chunks=(min(rows, 4096),))
        if unwritten == "paths":
            f["features"][:] = 1.0
    result = search(cli, bad, good_query, tiny_model, tmp_path / "out")
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        f"Error: {bad}: its {unwritten} hold {rows} rows, but not all of them were ever written "
        "(HDF5 would read the rest as zeros)"
    ]


def test_paths_that_are_no_text_or_not_utf8_are_one_line(tiny_model, good_query, tmp_path, cli):
    numbers = tmp_path / "numbers.h5"
    write_file(numbers, tiny_model)
    with h5py.File(numbers, "r+") as f:
        del f["paths"]
        f["paths"] = np.arange(ROWS)
    latin = tmp_path / "latin.h5"
    write_file(latin, tiny_model)
    with h5py.File(latin, "r+") as f:
        del f["paths"]
        f["paths"] = np.array([b"caf\xe9.jpg"] * ROWS)  # fixed-length bytes, Latin-1
    group = tmp_path / "group.h5"
    write_file(group, tiny_model)
    with h5py.File(group, "r+") as f:
        del f["features"]
        f.create_group("features")
    expected = {
        numbers: "paths is (4,), not a list of text (one per row)",
        latin: "a path that is not UTF-8 (invalid continuation byte)",
        group: "not an embedding file written by `daaf embed`",
    }
    for path, message in expected.items():
        result = search(cli, good_query, path, tiny_model, tmp_path / "out")
        assert result.output.splitlines() == [f"Error: {path}: {message}"], result.output
        with pytest.raises(DaafError, match=f"^{re.escape(str(path))}: {re.escape(message)}$"):
            read_embeddings(path)


def test_a_gallery_that_is_a_fifo_is_named_without_waiting(tiny_model, good_query, tmp_path, cli):
    os.mkfifo(tmp_path / "pipe.h5")
    result = search(cli, tmp_path / "pipe.h5", good_query, tiny_model, tmp_path / "out")
    assert result.output.splitlines() == [
        f"Error: {tmp_path / 'pipe.h5'}: a FIFO (named pipe), not a regular file"
    ]


RESUMED = "cannot be resumed, its {} attribute says {} but it holds {}; use another --out"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"rows": 10**12}, RESUMED.format("rows", 10**12, 2)),
        ({"rows": -5}, RESUMED.format("rows", -5, 2)),
        ({"num_unreadable": 7}, RESUMED.format("num_unreadable", 7, 0)),
        (
            {"done": 1},
            "cannot be resumed, its progress attributes disagree (rows 2 + unreadable 0 "
            "for 1 of 3 inputs); use another --out",
        ),
        ({"rows": 1.5}, "its rows attribute is 1.5, not a whole number"),
    ],
)
def test_a_file_whose_progress_attributes_lie_is_not_resumed(changes, message, tmp_path):
    """--resume truncates the datasets to the progress attributes: 10^12 would have grown them
    to a sparse terabyte, -5 ended in a traceback."""
    path = tmp_path / "f.h5"
    attrs = {"embedding_dim": 4, "model_sha256": "a", "num_inputs": 3}
    first = EmbeddingWriter(path, attrs)
    first.append(np.ones((2, 4), np.float32), ["a.jpg", "b.jpg"], [], 2)
    first.close(complete=False)
    with h5py.File(path, "r+") as f:
        f.attrs.update(changes)
    with pytest.raises(DaafError) as info:
        EmbeddingWriter(path, attrs, resume=True)
    assert str(info.value) == f"{path}: {message}"
    with h5py.File(path) as f:  # untouched
        assert f["features"].shape == (2, 4) and f.attrs["done"] == changes.get("done", 2)


def test_pids_of_another_dataset_are_refused_not_an_empty_match_column(
    tiny_dataset, tiny_model, tmp_path, dataset_maker, cli
):
    """The gallery's images are the tiny dataset's: --pids with another dataset's root (same
    layout, other files) is refused in one line; the tiny dataset's root through a link finds
    them; queries from elsewhere are a warning, their matches left blank."""
    folder = tiny_dataset / "Market-1501-v15.09.15"
    gallery_names = sorted(p.name for p in (folder / "bounding_box_test").iterdir())
    gallery = write_file(
        tmp_path / "g.h5", tiny_model, paths=gallery_names, root=str(folder / "bounding_box_test")
    )
    queries = write_file(
        tmp_path / "q.h5",
        tiny_model,
        root=str(folder / "query"),
        paths=sorted(p.name for p in (folder / "query").iterdir())[:2],
    )
    other = dataset_maker(tmp_path / "other", num_ids=2, per_id=4)
    (tmp_path / "link").symlink_to(tiny_dataset)

    def pids(root, out, query=queries):
        return cli(
            "search",
            "--gallery",
            gallery,
            "--query",
            query,
            "--model",
            tiny_model,
            "--pids",
            "market1501",
            "--root",
            root,
            "--top",
            "40",
            "--out",
            out,
            ok=False,
        )

    refused = pids(other, tmp_path / "refused")
    assert refused.exit_code == 1, refused.output
    assert refused.output.splitlines() == [
        f"Error: --pids market1501: none of the {len(gallery_names)} gallery images ranked is an "
        f"image of that dataset under --root (e.g. {folder / 'bounding_box_test' / gallery_names[0]})"
        "; give the dataset and root the gallery was embedded from, or leave out --pids"
    ]
    assert not (tmp_path / "refused").exists()
    linked = pids(tmp_path / "link", tmp_path / "linked")
    assert linked.exit_code == 0, linked.output
    matches = pd.read_csv(tmp_path / "linked" / "results.csv")["match"]
    assert matches.notna().all() and set(matches) <= {"true match", "false match", "junk"}
    elsewhere = write_file(tmp_path / "e.h5", tiny_model, root=str(tmp_path), paths=["x.jpg"])
    warned = pids(tiny_dataset, tmp_path / "warned", query=elsewhere)
    assert warned.exit_code == 0, warned.output
    assert (
        "warning: 1 of 1 queries are no images of market1501 under --root: their matches "
        "are left blank" in warned.output
    )
