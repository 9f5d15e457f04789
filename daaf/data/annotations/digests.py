"""Image digests: the SHA-256 of an image file's bytes, which binds a store's rows to its images.

``daaf label`` and ``daaf synth`` record it in every row (schema v2); ``daaf annotations
validate --root`` and ``daaf train`` compare it with the files on disk. A file is opened without
blocking and hashed only if it is a regular file, so a FIFO or a device named like an image
cannot hang a check.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

from daaf.data.annotations.schema import NO_DIGEST

READ_CHUNK = 1 << 20  # bytes per read: an image takes one, a hostile huge file is streamed
DIGEST_THREADS = 4  # reading and SHA-256 release the GIL


def file_sha256(path: str | Path) -> bytes | None:
    """SHA-256 (32 bytes) of the regular file at ``path``; None if it is missing, cannot be
    read, or is not a regular file (a FIFO, device or folder is never read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        digest = hashlib.sha256()
        size = min(info.st_size + 1, READ_CHUNK)  # an image: one read, then the end
        while chunk := os.read(fd, size):
            digest.update(chunk)
        return digest.digest()
    except OSError:
        return None
    finally:
        os.close(fd)


def stored_digest(value: bytes | None) -> bytes:
    """What a row stores for ``value``: its 32 bytes, or zeros where none was taken."""
    return NO_DIGEST if value is None else value


def digest_hex(value: bytes) -> str:
    """The manifest's ``image_sha256``: lowercase hex as ``sha256sum`` prints, ``""`` if none."""
    return "" if value == NO_DIGEST else value.hex()


def file_digests(paths: Sequence[str | Path], threads: int = DIGEST_THREADS) -> list[bytes | None]:
    """:func:`file_sha256` of every path, in order, on ``threads`` threads, each hashing one
    contiguous part (a task per file would cost more than the hashing)."""
    paths = list(paths)
    parts = max(1, min(threads, len(paths)))
    if parts == 1:
        return [file_sha256(path) for path in paths]
    bounds = [len(paths) * i // parts for i in range(parts + 1)]
    chunks = [paths[start:stop] for start, stop in pairwise(bounds)]
    with ThreadPoolExecutor(parts) as pool:
        done = pool.map(lambda chunk: [file_sha256(path) for path in chunk], chunks)
        return [digest for chunk in done for digest in chunk]
