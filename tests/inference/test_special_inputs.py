"""`daaf embed` and `daaf search` over paths that are no regular files (a FIFO, a device, a
socket) or whose names are odd: each image is skipped and listed, each list file or --out is
refused in one line; nothing waits, nothing is half-written."""

import os
import re
import shutil
import socket

import pytest

from daaf.inference import read_embeddings
from tests.data.test_images import finishes

MARKET = "Market-1501-v15.09.15"


def run(cli, *args):
    return finishes(lambda: cli(*args, ok=False), seconds=300)


@pytest.fixture
def hostile_folder(tiny_dataset, tmp_path):
    """Two images, one named with a newline, and five entries named like images that are no
    readable image: a FIFO, /dev/zero, a socket, a folder and a name that is not UTF-8."""
    folder = tmp_path / "images"
    folder.mkdir()
    good = sorted((tiny_dataset / MARKET / "query").iterdir())
    shutil.copy(good[0], folder / "a.jpg")
    shutil.copy(good[1], folder / "new\nline.jpg")
    shutil.copy(good[2], os.fsdecode(bytes(folder) + b"/b\xff.jpg"))
    os.mkfifo(folder / "c_pipe.jpg")
    (folder / "d_zero.jpg").symlink_to("/dev/zero")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "e_socket.png"))
    (folder / "f_folder.jpg").mkdir()
    return folder


def test_embed_lists_what_is_no_regular_file_and_embeds_the_rest(
    tiny_model, hostile_folder, tmp_path, cli
):
    """A FIFO named like an image hung `daaf embed` for ever; a name that is not UTF-8 ended in
    a traceback (the embedding file holds UTF-8), and crashed cv2.imread."""
    out = tmp_path / "f.h5"
    result = run(
        cli,
        "embed",
        "--model",
        tiny_model,
        "--images",
        hostile_folder,
        "--workers",
        "0",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    lines = re.findall(r"(?:unreadable|written): .*", result.output)  # after the progress bar
    assert lines == [
        "unreadable: b\\xff.jpg (its name is not UTF-8 (rename the file))",
        "unreadable: c_pipe.jpg (a FIFO (named pipe), not a regular file)",
        "unreadable: d_zero.jpg (a character device, not a regular file)",
        "unreadable: e_socket.png (a socket, not a regular file)",
        f"written: {out}: 2 embeddings of dimension 512, 4 unreadable image(s)",
    ]  # os.walk lists the folder f_folder.jpg as a folder: not an input
    stored = read_embeddings(out)
    assert stored.paths == ["a.jpg", "new\nline.jpg"]
    assert stored.unreadable == ["b\\xff.jpg", "c_pipe.jpg", "d_zero.jpg", "e_socket.png"]
    again = run(
        cli,
        "embed",
        "--model",
        tiny_model,
        "--images",
        hostile_folder,
        "--workers",
        "0",
        "--out",
        out,
        "--resume",
    )
    assert again.exit_code == 0 and "resumed after 6 image(s)" in again.output, again.output


def test_list_files_and_outs_that_are_no_regular_files_are_one_line(
    tiny_model, hostile_folder, tmp_path, cli
):
    lists = tmp_path / "lists"
    lists.mkdir()
    os.mkfifo(lists / "fifo.txt")
    (lists / "zero.txt").symlink_to("/dev/zero")
    (lists / "latin1.txt").write_bytes("caf\xe9.jpg\n".encode("latin-1"))
    (lists / "binary.txt").write_bytes(b"a.jpg\n\x00\x01\x02 binary\n")
    os.mkfifo(tmp_path / "pipe.h5")
    cases = {
        lists / "fifo.txt": "a FIFO (named pipe), not a regular file",
        lists / "zero.txt": "a character device, not a regular file",
        lists / "latin1.txt": "not a UTF-8 text list of images (invalid continuation byte)",
        lists / "binary.txt": "line 2 holds a NUL byte: not a text list of images",
    }
    for listed, message in cases.items():
        result = run(
            cli, "embed", "--model", tiny_model, "--images", listed, "--out", tmp_path / "out.h5"
        )
        assert result.exit_code == 1, result.output
        assert result.output.splitlines() == [f"Error: {listed}: {message}"]
    assert not (tmp_path / "out.h5").exists()
    for resume in ([], ["--resume"]):
        result = run(
            cli,
            "embed",
            "--model",
            tiny_model,
            "--images",
            hostile_folder / "a.jpg",
            "--out",
            tmp_path / "pipe.h5",
            *resume,
        )
        assert result.output.splitlines() == [
            f"Error: --out {tmp_path / 'pipe.h5'}: {tmp_path / 'pipe.h5'} is a FIFO (named "
            "pipe), not a file"
        ]


def test_search_refuses_query_images_it_cannot_read_in_one_line(
    tiny_model, hostile_folder, tmp_path, cli
):
    gallery = tmp_path / "g.h5"
    made = run(
        cli,
        "embed",
        "--model",
        tiny_model,
        "--images",
        hostile_folder / "a.jpg",
        "--workers",
        "0",
        "--out",
        gallery,
    )
    assert made.exit_code == 0, made.output
    for query, problem in {
        "c_pipe.jpg": "a FIFO (named pipe), not a regular file",
        "b\udcff.jpg": "its name is not UTF-8 (rename the file)",
    }.items():
        result = run(
            cli,
            "search",
            "--gallery",
            gallery,
            "--query",
            hostile_folder / query,
            "--model",
            tiny_model,
            "--out",
            tmp_path / "out",
        )
        shown = str(hostile_folder / query).replace("\udcff", "\\xff")
        assert result.exit_code == 1, result.output
        assert result.output.splitlines() == [f"Error: cannot read 1 image(s): {shown} ({problem})"]
    assert not (tmp_path / "out").exists()
