"""`daaf embed` and `daaf search` end to end on the tiny dataset; the Embedder; bad input."""

import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from daaf import __version__
from daaf.data.datasets import build_dataset
from daaf.data.images import read_rgb
from daaf.errors import DaafError
from daaf.evaluation.distance import compute_distance
from daaf.inference import Embedder, list_images, read_embeddings, search_file, top_k_blocks
from daaf.inference.store import EmbeddingWriter, feature_blocks, file_sha256, open_embeddings

MARKET = "Market-1501-v15.09.15"


def run(cli, *args):
    result = cli(*args, ok=False)
    return result


@pytest.fixture(scope="module")
def evaluated(tiny_dataset, tiny_model, tmp_path_factory, cli):
    """`daaf evaluate --flip` of the tiny model: its features.npz and per_query.csv."""
    out = tmp_path_factory.mktemp("eval") / "eval"
    cli(
        "evaluate",
        "--model",
        tiny_model,
        "--dataset",
        "market1501",
        "--root",
        tiny_dataset,
        "--flip",
        "--workers",
        "0",
        "--out",
        out,
    )
    return out


@pytest.fixture(scope="module")
def gallery_h5(tiny_dataset, tiny_model, tmp_path_factory, cli):
    out = tmp_path_factory.mktemp("gallery") / "gallery feats.h5"
    cli(
        "embed",
        "--model",
        tiny_model,
        "--images",
        tiny_dataset / MARKET / "bounding_box_test",
        "--flip",
        "--workers",
        "0",
        "--batch-size",
        "5",
        "--out",
        out,
    )
    return out


def test_embed_of_the_query_folder_gives_evaluates_features(
    tiny_dataset, tiny_model, evaluated, tmp_path, cli
):
    out = tmp_path / "query.h5"
    result = cli(
        "embed",
        "--model",
        tiny_model,
        "--images",
        tiny_dataset / MARKET / "query",
        "--flip",
        "--workers",
        "0",
        "--batch-size",
        "3",
        "--out",
        out,
    )
    assert "16 embeddings of dimension 512" in result.output
    stored = read_embeddings(out)
    queries = pd.read_csv(evaluated / "per_query.csv").query("reranked == 0")["image_path"]
    expected = np.load(evaluated / "features.npz")["query"]
    assert stored.paths == [Path(p).name for p in queries]  # evaluate's order: sorted names
    assert stored.root == (tiny_dataset / MARKET / "query").resolve().as_posix()
    np.testing.assert_allclose(stored.features, expected, atol=1e-5, rtol=0)
    attrs = stored.attrs
    assert attrs["model_sha256"] == file_sha256(tiny_model / "model_state.pt")
    assert (attrs["embedding_dim"], attrs["image_size"], attrs["flip"]) == (512, [64, 32], True)
    assert attrs["normalization"] == "none" and attrs["daaf_version"] == __version__
    assert attrs["metric"] == "cosine" and attrs["complete"] and stored.unreadable == []
    with h5py.File(out) as f:
        assert f["features"].dtype == np.float32 and f["features"].chunks is not None


def test_search_ranks_with_evaluates_distances(
    tiny_dataset, tiny_model, evaluated, gallery_h5, tmp_path, cli
):
    feats = np.load(evaluated / "features.npz")
    query_dir = tiny_dataset / MARKET / "query"
    dataset = build_dataset("market1501", tiny_dataset)
    chosen = [0, 5, 11]  # evaluate's query order
    listed = tmp_path / "queries.txt"
    listed.write_text("".join(f"{query_dir / Path(dataset.query[q].path).name}\n" for q in chosen))
    out = tmp_path / "search out"
    cli(
        "search",
        "--gallery",
        gallery_h5,
        "--query",
        listed,
        "--model",
        tiny_model,
        "--top",
        "5",
        "--pids",
        "market1501",
        "--root",
        tiny_dataset,
        "--out",
        out,
    )
    table = pd.read_csv(out / "results.csv")
    assert list(table.columns) == ["query", "rank", "gallery_path", "distance", "match"]
    assert len(table) == 3 * 5 and list(table["rank"][:5]) == [1, 2, 3, 4, 5]
    dist = compute_distance(feats["query"][chosen], feats["gallery"], "cosine")  # evaluate's metric
    names = [Path(s.path).name for s in dataset.gallery]
    for q, (query, rows) in enumerate(table.groupby("query", sort=False)):
        assert Path(query).name == Path(dataset.query[chosen[q]].path).name
        order = np.argsort(dist[q], kind="stable")[:5]
        assert [Path(p).name for p in rows["gallery_path"]] == [names[i] for i in order]
        np.testing.assert_allclose(rows["distance"], dist[q, order], atol=1e-5)
        pid, cam = Path(query).name[:4], Path(query).name[6]
        for path, kind in zip(rows["gallery_path"], rows["match"], strict=True):
            same, same_cam = Path(path).name[:4] == pid, Path(path).name[6] == cam
            assert kind == (
                "junk" if same and same_cam else "true match" if same else "false match"
            )
    assert len(list((out / "ranklists").glob("*.png"))) == 3
    # the queries' embedding file gives the same lists as the images
    q_h5 = tmp_path / "q.h5"
    cli(
        "embed",
        "--model",
        tiny_model,
        "--images",
        listed,
        "--flip",
        "--workers",
        "0",
        "--out",
        q_h5,
    )
    cli(
        "search",
        "--gallery",
        gallery_h5,
        "--query",
        q_h5,
        "--model",
        tiny_model,
        "--top",
        "5",
        "--out",
        tmp_path / "again",
    )
    table2 = pd.read_csv(tmp_path / "again" / "results.csv")
    assert list(table2["gallery_path"]) == list(table["gallery_path"])
    np.testing.assert_allclose(table2["distance"], table["distance"], atol=1e-5)
    unflipped = tmp_path / "unflipped.h5"
    cli("embed", "--model", tiny_model, "--images", listed, "--workers", "0", "--out", unflipped)
    mixed = cli(
        "search",
        "--gallery",
        gallery_h5,
        "--query",
        unflipped,
        "--model",
        tiny_model,
        "--out",
        tmp_path / "mixed",
        ok=False,
    )
    assert mixed.exit_code == 1 and "embedded without --flip, the gallery with" in mixed.output


def test_non_ascii_and_space_paths_end_to_end(tiny_dataset, tiny_model, tmp_path, cli):
    source = tiny_dataset / MARKET / "bounding_box_test"
    folder = tmp_path / "galería de fotos" / "ä b"
    folder.mkdir(parents=True)
    for i, image in enumerate(sorted(source.iterdir())[:6]):
        shutil.copy(image, folder / f"persona {i} ü.jpg")
    listed = tmp_path / "mi lista.txt"
    listed.write_text("# query images\ngalería de fotos/ä b/persona 0 ü.jpg\n\n", encoding="utf-8")
    out = tmp_path / "salida ö" / "características.h5"
    cli("embed", "--model", tiny_model, "--images", folder, listed, "--workers", "0", "--out", out)
    stored = read_embeddings(out)
    assert stored.root == folder.resolve().as_posix()  # the list's image is in the folder too
    assert stored.paths[:2] == ["persona 0 ü.jpg", "persona 1 ü.jpg"]
    assert stored.paths[-1] == "persona 0 ü.jpg" and len(stored.paths) == 7
    search_out = tmp_path / "búsqueda final"
    cli(
        "search",
        "--gallery",
        out,
        "--query",
        folder / "persona 3 ü.jpg",
        "--model",
        tiny_model,
        "--top",
        "3",
        "--out",
        search_out,
    )
    table = pd.read_csv(search_out / "results.csv")
    assert table["gallery_path"][0] == str(folder / "persona 3 ü.jpg")  # itself, distance 0
    assert abs(table["distance"][0]) < 1e-5
    assert [p.name for p in (search_out / "ranklists").iterdir()] == ["0000_persona 3 ü.png"]


def test_unreadable_images_are_listed_and_the_run_goes_on(tiny_dataset, tiny_model, tmp_path, cli):
    folder = tmp_path / "imgs"
    folder.mkdir()
    good = sorted((tiny_dataset / MARKET / "query").iterdir())
    shutil.copy(good[0], folder / "a.jpg")
    shutil.copy(good[1], folder / "c.jpg")
    (folder / "b.jpg").write_text("not an image")
    data = good[2].read_bytes()
    (folder / "d.jpg").write_bytes(data[: len(data) // 2])  # truncated: cv2 alone would pass it
    out = tmp_path / "f.h5"
    result = cli("embed", "--model", tiny_model, "--images", folder, "--workers", "0", "--out", out)
    assert re.findall(r"unreadable: (\S+) \(", result.output) == ["b.jpg", "d.jpg"]
    assert "2 embeddings of dimension 512" in result.output and "2 unreadable" in result.output
    stored = read_embeddings(out)
    assert stored.paths == ["a.jpg", "c.jpg"] and stored.unreadable == ["b.jpg", "d.jpg"]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"\x89PNG broken")
    none = cli(
        "embed",
        "--model",
        tiny_model,
        "--images",
        bad,
        "--workers",
        "0",
        "--out",
        tmp_path / "g.h5",
        ok=False,
    )
    assert none.exit_code == 1
    assert (
        none.output.splitlines()[-1]
        == "Error: none of the 1 image(s) could be read; nothing embedded, no file written"
    )
    assert not (tmp_path / "g.h5").exists()  # a rerun once the images are fixed is not refused


def test_resume_continues_after_the_last_complete_chunk(
    tiny_dataset, tiny_model, gallery_h5, tmp_path, monkeypatch, cli
):
    out = tmp_path / "g.h5"
    original = EmbeddingWriter.append
    calls = []

    def stop_in_the_fourth_chunk(self, features, paths, unreadable, inputs):
        calls.append(len(paths))
        if len(calls) == 4:  # half a chunk on disk, then the process dies
            self.file["features"].resize(self.file["features"].shape[0] + 2, axis=0)
            raise KeyboardInterrupt
        return original(self, features, paths, unreadable, inputs)

    monkeypatch.setattr(EmbeddingWriter, "append", stop_in_the_fourth_chunk)
    args = [
        "embed",
        "--model",
        tiny_model,
        "--images",
        tiny_dataset / MARKET / "bounding_box_test",
        "--flip",
        "--workers",
        "0",
        "--batch-size",
        "5",
        "--out",
        out,
    ]
    assert cli(*args, ok=False).exit_code != 0
    assert calls == [5, 5, 5, 5]  # one chunk per batch: memory holds a batch
    with h5py.File(out) as f:
        assert (f.attrs["done"], f.attrs["rows"], bool(f.attrs["complete"])) == (15, 15, False)
    with pytest.raises(DaafError, match="incomplete .* `daaf embed --resume`"):
        read_embeddings(out)
    refused = cli(*args, ok=False)
    assert refused.exit_code == 1 and "exists: pass --resume" in refused.output
    monkeypatch.setattr(EmbeddingWriter, "append", original)
    resumed = cli(*args, "--resume")
    assert "resumed after 15 image(s)" in resumed.output
    full, part = read_embeddings(gallery_h5), read_embeddings(out)
    assert part.paths == full.paths
    np.testing.assert_allclose(part.features, full.features, atol=1e-6)
    unflipped = cli(*[a for a in args if a != "--flip"], "--resume", ok=False)
    assert unflipped.exit_code == 1
    assert "made with another model or other images (flip differ)" in unflipped.output


def test_bad_input_gives_one_line(tiny_dataset, tiny_model, other_model, gallery_h5, tmp_path, cli):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("x")
    cases = {
        "no images (.bmp, .jpeg, .jpg, .png) in this folder": [
            "embed",
            "--model",
            tiny_model,
            "--images",
            empty,
            "--out",
            tmp_path / "a.h5",
        ],
        "neither an exported model nor a daaf training checkpoint": [
            "embed",
            "--model",
            tmp_path / "junk.pt",
            "--images",
            tiny_dataset,
            "--out",
            tmp_path / "b.h5",
        ],
        "was made by another model": [
            "search",
            "--gallery",
            gallery_h5,
            "--query",
            tiny_dataset / MARKET / "query",
            "--model",
            other_model,
            "--out",
            tmp_path / "c",
        ],
        "broken.jpg (cannot be decoded": [
            "search",
            "--gallery",
            gallery_h5,
            "--query",
            tmp_path / "broken.jpg",
            "--model",
            tiny_model,
            "--out",
            tmp_path / "e",
        ],
        "not an embedding file written by `daaf embed`": [
            "search",
            "--gallery",
            tmp_path / "junk.pt",
            "--query",
            tmp_path / "broken.jpg",
            "--model",
            tiny_model,
            "--out",
            tmp_path / "f",
        ],
    }
    torch.save({"weights": torch.zeros(2)}, tmp_path / "junk.pt")
    with h5py.File(tmp_path / "junk.pt.h5", "w"):
        pass
    cases["not an embedding file written by `daaf embed`"][2] = tmp_path / "junk.pt.h5"
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    for message, args in cases.items():
        result = cli(*args, ok=False)
        assert result.exit_code == 1, (message, result.output)
        assert len(result.output.strip().splitlines()) == 1 and message in result.output, (
            result.output
        )
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "e").exists()


def test_a_model_of_nan_weights_embeds_nothing(tiny_dataset, tiny_model, gallery_h5, tmp_path, cli):
    """Non-finite embeddings are an error naming how many, as in `daaf evaluate`: not a file
    of NaN rows that search would rank as garbage."""
    state = torch.load(tiny_model / "model_state.pt", weights_only=True)
    for tensor in state["state_dict"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))
    (tmp_path / "nan").mkdir()
    torch.save(state, tmp_path / "nan" / "model_state.pt")
    query = tiny_dataset / MARKET / "query"
    embed = cli(
        "embed",
        "--model",
        tmp_path / "nan",
        "--images",
        query,
        "--workers",
        "0",
        "--out",
        tmp_path / "nan.h5",
        ok=False,
    )
    message = (
        "Error: 8192 of 8192 values of a batch of embeddings are not finite (NaN or inf): "
        "the model's weights or its inputs are broken (a diverged training run?); none of "
        "them was kept"
    )
    assert embed.exit_code == 1 and embed.output.splitlines()[-1] == message, embed.output
    # nothing left to block the rerun with a good model: not "pass --resume", nor "made with
    # another model" once --resume is passed
    assert not (tmp_path / "nan.h5").exists()
    again = cli(
        "embed",
        "--model",
        tiny_model,
        "--images",
        query,
        "--workers",
        "0",
        "--out",
        tmp_path / "nan.h5",
        ok=False,
    )
    assert again.exit_code == 0 and "16 embeddings" in again.output, again.output
    with pytest.raises(DaafError, match="^8192 of 8192 values of a batch of embeddings"):
        Embedder(tmp_path / "nan").embed([read_rgb(p) for p in sorted(query.iterdir())])


def test_search_refuses_a_gallery_of_nan_rows_or_of_none(
    tiny_dataset, tiny_model, gallery_h5, tmp_path, cli
):
    """A gallery holding NaN rows (an older daaf, a damaged file) is an error naming how many
    distances, not a ranking; one of no rows (every image unreadable) is an error, not a
    results.csv of nothing, as gallery or as query file."""
    nan = tmp_path / "nan.h5"
    shutil.copy(gallery_h5, nan)
    with h5py.File(nan, "r+") as f:
        f["features"][2:4] = np.nan
    query = sorted((tiny_dataset / MARKET / "query").iterdir())[0]
    args = ["--query", query, "--model", tiny_model]
    result = cli("search", "--gallery", nan, *args, "--out", tmp_path / "a", ok=False)
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        "Error: 2 of 32 query-gallery distances of gallery rows 0-31 are not finite (NaN or inf): "
        "the model's weights or its inputs are broken (a diverged training run?); nothing was "
        "scored"
    ]
    empty = tmp_path / "empty.h5"  # as an older daaf left when no image could be read
    writer = EmbeddingWriter(empty, {**read_embeddings(gallery_h5).attrs, "num_inputs": 1})
    writer.append(np.zeros((0, 512), np.float32), [], [("missing.jpg", "missing")], 1)
    writer.close(complete=True)
    expected = f"Error: {empty}: holds no embeddings (none of its images could be read)"
    as_gallery = cli("search", "--gallery", empty, *args, "--out", tmp_path / "b", ok=False)
    as_query = cli(
        "search",
        "--gallery",
        gallery_h5,
        "--query",
        empty,
        "--model",
        tiny_model,
        "--out",
        tmp_path / "c",
        ok=False,
    )
    for result in (as_gallery, as_query):
        assert result.exit_code == 1 and result.output.splitlines() == [expected], result.output
    assert not any((tmp_path / name).exists() for name in "abc")


def test_a_file_another_run_creates_meanwhile_is_refused_not_truncated(monkeypatch, tmp_path):
    """Two runs into one --out at once: the file the first created after the second checked
    for it is refused in one line (it was opened with "w": an HDF5 OSError, or truncated)."""
    path = tmp_path / "feats.h5"
    attrs = {"embedding_dim": 4, "model_sha256": "a"}
    first = EmbeddingWriter(path, attrs)
    first.append(np.ones((2, 4), np.float32), ["a.jpg", "b.jpg"], [], 2)
    real_exists, checks = Path.exists, []  # the first check of `path` misses the file

    def exists(p):
        checks.append(p == path)
        return False if checks.count(True) == 1 and p == path else real_exists(p)

    monkeypatch.setattr(Path, "exists", exists)
    with pytest.raises(DaafError, match=f"^{re.escape(str(path))} exists: pass --resume"):
        EmbeddingWriter(path, attrs)
    monkeypatch.undo()
    first.close(complete=True)
    assert read_embeddings(path).paths == ["a.jpg", "b.jpg"]


def test_embedder_python_api(tiny_dataset, tiny_model, tmp_path):
    embedder = Embedder(tiny_model, device="cpu")
    paths = sorted((tiny_dataset / MARKET / "query").iterdir())[:5]
    from_files = embedder.embed(paths)
    from_arrays = embedder.embed([read_rgb(p) for p in paths])
    assert from_files.shape == (5, 512) and from_files.dtype == np.float32
    np.testing.assert_allclose(from_files, from_arrays, atol=1e-6)
    report = embedder.embed_folder(
        tiny_dataset / MARKET / "query", tmp_path / "q.h5", progress=False
    )
    assert report.rows == 16 and report.unreadable == []
    np.testing.assert_allclose(
        read_embeddings(tmp_path / "q.h5").features[:5], from_files, atol=1e-6
    )
    with pytest.raises(DaafError, match="uint8 \\(H, W, 3\\) RGB arrays, got float32"):
        embedder.embed([np.zeros((8, 4, 3), np.float32)])
    assert list_images([paths[0]]) == [paths[0]]


def test_blockwise_top_k_equals_a_full_sort():
    rng = np.random.default_rng(0)
    q, g = (
        rng.normal(size=(7, 16)).astype(np.float32),
        rng.normal(size=(103, 16)).astype(np.float32),
    )
    for metric in ("euclidean", "cosine"):
        dist = compute_distance(q, g, metric)
        blocks = ((s, g[s : s + 10]) for s in range(0, len(g), 10))
        d, i = top_k_blocks(q, blocks, 12, metric)
        order = np.argsort(dist, axis=1, kind="stable")[:, :12]
        np.testing.assert_array_equal(i, order)
        np.testing.assert_allclose(d, np.take_along_axis(dist, order, 1), atol=1e-5)
    d, i = top_k_blocks(q, [(0, g[:3])], 12, "cosine")  # a gallery smaller than --top
    assert d.shape == (7, 3)


def test_search_file_reading_ahead_equals_a_full_sort(gallery_h5):
    gallery = read_embeddings(gallery_h5).features
    queries = gallery[[0, 9, 30]] * 1.5 + 0.02  # raw features: norms far from 1
    for metric in ("euclidean", "cosine"):
        dist = compute_distance(queries, gallery, metric)
        order = np.argsort(dist, axis=1, kind="stable")[:, :12]
        for rows in (7, 32, 100):  # blocks not aligned to the file's chunks, one block, one short
            d, i = search_file(queries, gallery_h5, top=12, metric=metric, block_rows=rows)
            np.testing.assert_array_equal(i, order)
            # Euclidean: |g|^2 + |q|^2 - 2 g.q of rows of norm ~21 in float32, whose matmul
            # rounds by block size (to 4e-4 here, as before reading ahead)
            tolerance = {"rtol": 1e-5} if metric == "euclidean" else {"atol": 1e-5}
            np.testing.assert_allclose(d, np.take_along_axis(dist, order, 1), **tolerance)


def test_feature_blocks_alternate_two_buffers(gallery_h5):
    features = read_embeddings(gallery_h5).features
    with open_embeddings(gallery_h5) as f:
        seen = [(start, block, block.copy()) for start, block in feature_blocks(f, 7)]
    assert [start for start, _, _ in seen] == [0, 7, 14, 21, 28]
    np.testing.assert_array_equal(np.concatenate([copy for _, _, copy in seen]), features)
    blocks = [block for _, block, _ in seen]
    assert not np.shares_memory(blocks[0], blocks[1])
    assert np.shares_memory(blocks[0], blocks[2]) and np.shares_memory(blocks[1], blocks[3])


def test_rerank_of_the_shortlist_equals_rerank_of_a_gallery_it_covers(gallery_h5, tmp_path):
    from daaf.evaluation.rerank import re_ranking_features

    gallery = read_embeddings(gallery_h5)
    queries = gallery.features[:3] + 0.01
    d, i = search_file(queries, gallery_h5, top=4, metric="cosine", rerank=True, block_rows=7)
    full = re_ranking_features(queries, gallery.features, metric="cosine", progress=False)
    order = np.argsort(full, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(i, order)  # the pool (100) covers the 32-image gallery
    np.testing.assert_allclose(d, np.take_along_axis(full, order, 1), atol=1e-6)


def test_the_documented_reading_example_runs(gallery_h5, capsys):
    doc = (Path(__file__).resolve().parents[2] / "docs" / "embeddings.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", doc, re.S)
    assert len([line for line in code.splitlines() if line.strip()]) == 5
    scope: dict = {}
    exec(code.replace('"feats.h5"', repr(str(gallery_h5))), scope)
    assert scope["features"].shape == (32, 512) and len(scope["paths"]) == 32
    assert capsys.readouterr().out.split()[1:] == ["512", "cosine", "True"]


@pytest.mark.slow
def test_resume_after_kill_9(tiny_dataset, tiny_model, tmp_path, monkeypatch):
    """A real interruption: the process is killed mid-run, --resume finishes the file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    monkeypatch.setenv("HDF5_USE_FILE_LOCKING", "FALSE")  # read progress while it writes
    folder = tmp_path / "many"
    folder.mkdir()
    for copy in range(8):
        for image in sorted((tiny_dataset / MARKET / "bounding_box_test").iterdir()):
            shutil.copy(image, folder / f"{copy}_{image.name}")
    out = tmp_path / "f.h5"
    args = [
        sys.executable,
        "-m",
        "daaf.cli",
        "embed",
        "--model",
        str(tiny_model),
        "--images",
        str(folder),
        "--workers",
        "0",
        "--batch-size",
        "2",
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    done, deadline = 0, time.monotonic() + 120
    while done < 20 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        try:
            with h5py.File(out, "r") as f:
                done = int(f.attrs["done"])
        except (OSError, KeyError):
            continue
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 20 <= done < 256, done
    resumed = subprocess.run([*args, "--resume"], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after" in resumed.stdout
    stored = read_embeddings(out)
    assert stored.paths == sorted(p.name for p in folder.iterdir())  # each image once, in order
    expected = Embedder(tiny_model).embed([folder / p for p in stored.paths])
    np.testing.assert_allclose(stored.features, expected, atol=1e-5)
