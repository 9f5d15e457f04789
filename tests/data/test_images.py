"""Image decoding: truncated JPEGs are found by `datasets check --decode` and stop train/evaluate."""

import json
import os
import shutil
import socket
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from daaf.data.images import find_unreadable, image_problem, read_rgb
from daaf.errors import DaafError
from daaf.models.meta import META_FILE

REPO = Path(__file__).resolve().parents[2]
TRAIN_IMAGE = "bounding_box_train/0001_c1s1_000000_00.jpg"
QUERY_IMAGE = "query/0009_c1s1_000000_00.jpg"


def truncate(path: Path, size: int | None = None) -> None:
    """Keep the first ``size`` bytes of ``path`` (default: half of them)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if size is None else size])


@pytest.fixture
def dataset_copy(tiny_dataset, tmp_path) -> Path:
    """A copy of the tiny dataset (the session fixture must stay intact)."""
    return Path(shutil.copytree(tiny_dataset, tmp_path / "data"))


def test_truncated_jpegs_are_found_where_cv2_only_warns(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (128, 64, 3), dtype=np.uint8)
    names = ("whole.jpg", "half.jpg", "ten_bytes.jpg")
    for name in names:
        cv2.imwrite(str(tmp_path / name), image)
    truncate(tmp_path / "half.jpg")
    truncate(tmp_path / "ten_bytes.jpg", 10)
    (tmp_path / "text.jpg").write_text("not an image")
    assert cv2.imread(str(tmp_path / "half.jpg")) is not None  # why cv2 cannot be the check

    assert image_problem(tmp_path / "whole.jpg") is None
    assert image_problem(tmp_path / "half.jpg").startswith(
        "cannot be decoded: image file is truncated"
    )
    assert "cannot be decoded" in image_problem(tmp_path / "ten_bytes.jpg")
    assert image_problem(tmp_path / "gone.jpg") == "missing"
    paths = [tmp_path / name for name in (*names, "text.jpg", "gone.jpg")]
    assert [path.name for path, _ in find_unreadable(paths)] == [
        "half.jpg",
        "ten_bytes.jpg",
        "text.jpg",
        "gone.jpg",
    ]


def test_read_rgb_returns_rgb_and_names_a_bad_file(tmp_path):
    bgr = np.zeros((8, 4, 3), np.uint8)
    bgr[..., 2] = 255  # red in BGR
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    np.testing.assert_array_equal(read_rgb(tmp_path / "red.png")[0, 0], [255, 0, 0])
    with pytest.raises(DaafError, match=r"gone.png: no such image$"):
        read_rgb(tmp_path / "gone.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DaafError, match=r"text.png: missing or not a readable image$"):
        read_rgb(tmp_path / "text.png")


def finishes(call, seconds: float = 20):
    """``call()``'s result, failing the test if it has not returned within ``seconds`` (a FIFO
    opened for reading waits for a writer for ever; the thread is left blocked, as a daemon)."""
    result = {}

    def run():
        try:
            result["value"] = call()
        except Exception as exc:  # raised in the caller's thread below
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked"
    if "error" in result:
        raise result["error"]
    return result["value"]


def special_files(folder: Path) -> dict[Path, str]:
    """A FIFO, a socket, a character device (a link to /dev/zero) and a folder, each named like
    an image, with what image_problem says of each."""
    os.mkfifo(folder / "pipe.jpg")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "socket.png"))
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "folder.jpg").mkdir()
    return {
        folder / "pipe.jpg": "a FIFO (named pipe), not a regular file",
        folder / "socket.png": "a socket, not a regular file",
        folder / "zero.jpg": "a character device, not a regular file",
        folder / "folder.jpg": "a directory, not a regular file",
    }


def test_no_regular_file_is_never_opened_and_named_in_one_line(tmp_path):
    """A FIFO named like an image hung `daaf embed` for ever: cv2.imread and PIL open it and
    wait for a writer. Each kind is named, nothing blocks, and find_unreadable lists them all."""
    expected = special_files(tmp_path)
    for path, problem in expected.items():
        assert finishes(lambda path=path: image_problem(path)) == problem
        with pytest.raises(DaafError) as info:
            finishes(lambda path=path: read_rgb(path))
        assert str(info.value) == f"{path}: {problem}"
    found = finishes(lambda: find_unreadable(sorted(expected)))
    assert found == sorted(expected.items())


def test_a_name_that_is_not_utf8_is_read_and_named_printably(tmp_path):
    """cv2.imread crashed the process (segmentation fault) on a path that is not UTF-8; read_rgb
    decodes it, image_problem says daaf cannot record its name, messages show its bytes."""
    image = np.random.default_rng(0).integers(0, 256, (8, 4, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "plain.png"), image)
    odd = Path(os.fsdecode(bytes(tmp_path) + b"/\xff\xfe.png"))
    os.link(tmp_path / "plain.png", odd)
    np.testing.assert_array_equal(read_rgb(odd), read_rgb(tmp_path / "plain.png"))
    assert image_problem(odd) == "its name is not UTF-8 (rename the file)"
    odd.write_bytes(b"not an image")
    with pytest.raises(DaafError) as info:
        read_rgb(odd)
    assert str(info.value) == f"{tmp_path}/\\xff\\xfe.png: missing or not a readable image"
    str(info.value).encode("utf-8")  # printable, as the command line must print it


def test_datasets_check_decode_lists_unreadable_images(dataset_copy, cli):
    args = ["datasets", "check", "market1501", "--root", str(dataset_copy), "--decode"]
    result = cli(*args)
    assert "decoded 96 images: 0 unreadable" in result.output

    image_dir = dataset_copy / "Market-1501-v15.09.15"
    truncate(image_dir / TRAIN_IMAGE)
    truncate(image_dir / QUERY_IMAGE, 10)
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert "decoded 96 images: 2 unreadable" in result.output
    assert f"  {image_dir / TRAIN_IMAGE}: cannot be decoded: image file is truncated" in (
        result.output
    )
    assert f"  {image_dir / QUERY_IMAGE}: cannot be decoded" in result.output
    plain = cli(*args[:-1], ok=False)  # without --decode: parsing only, as before
    assert plain.exit_code == 0 and "unreadable" not in plain.output


def test_train_stops_with_one_line_naming_the_file_and_writes_nothing(dataset_copy, tmp_path, cli):
    image_dir = dataset_copy / "Market-1501-v15.09.15"
    truncate(image_dir / TRAIN_IMAGE)
    run = tmp_path / "run"
    args = [
        "train",
        "--config",
        str(REPO / "configs/demo.yaml"),
        "--out",
        str(run),
        f"data.root={dataset_copy}",
        f"data.annotations={dataset_copy / 'annotations'}",
        "data.dataset=market1501",
        "data.workers=0",
        "model.pretrained=none",
    ]
    result = cli(*args, ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert f"{image_dir / TRAIN_IMAGE} (cannot be decoded: image file is truncated" in (
        result.output
    )
    assert "datasets check market1501 --root DIR --decode" in result.output
    assert not run.exists()


def test_evaluate_stops_with_one_line_naming_the_file_and_writes_nothing(
    dataset_copy, tmp_path, cli
):
    image_dir = dataset_copy / "Market-1501-v15.09.15"
    truncate(image_dir / QUERY_IMAGE, 10)
    model = tmp_path / "model.ts"  # a loadable model (the test's own: trusted); images come after
    meta = json.dumps(
        {
            "height": 64,
            "width": 32,
            "pixel_mean": [0.5] * 3,
            "pixel_std": [0.5] * 3,
            "metric": "cosine",
            "embedding_dim": 6144,
        }
    )
    torch.jit.save(torch.jit.script(torch.nn.Flatten()), str(model), {META_FILE: meta})
    out = tmp_path / "eval"
    result = cli(
        "evaluate",
        "--model",
        model,
        "--trust-torchscript",
        "--dataset",
        "market1501",
        "--root",
        dataset_copy,
        "--out",
        out,
        ok=False,
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert f"1 image(s) of dataset market1501 cannot be decoded: {image_dir / QUERY_IMAGE}" in (
        result.output
    )
    assert not out.exists()
