"""One run at a time per output folder: ``daaf train``, ``daaf label`` and ``daaf demo`` hold an
exclusive lock on their ``--out`` while they run, and a second run into it stops at once.

The lock is ``fcntl.flock`` on ``<folder>/.daaf.lock``: the operating system releases it when
the process ends, however it ends (``kill -9`` included), so a lock is never left stale. The
file is removed on release; a run that finds it already removed by the previous holder tries
again on the new one.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from daaf.errors import DaafError
from daaf.utils.files import LOCK_NAME


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _acquire(path: Path) -> int:
    """An open descriptor holding the lock on ``path``; DaafError if another process holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise DaafError(
                f"{path.parent} is in use by another daaf run (process {holder or '?'} holds "
                f"{path}); wait for it to end, or use another --out"
            ) from None
        if _same_file(fd, path):  # not a file its last holder removed while we opened it
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            return fd
        os.close(fd)


@contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold the lock on ``folder`` (created if needed; removed again on exit if it was created
    here and is still empty) in the main process; the other torchrun ranks share rank 0's (the
    lock is taken before the process group exists: the rank is torchrun's ``RANK``)."""
    if int(os.environ.get("RANK", 0)) != 0:
        yield
        return
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = _acquire(path)
    try:
        yield
    finally:
        if _same_file(fd, path):  # still ours: a run may have renamed the folder away
            path.unlink()
        os.close(fd)
        if created:
            with suppress(OSError):
                folder.rmdir()  # only if the run left it empty
