"""The training split's masks decoded once into a uint8 file that every worker memory-maps.

Reading one stored mask costs an h5py read and a zlib inflate, about what decoding the JPEG
costs; a mapped row costs a copy. The file (N x H x W bytes at the store's mask size: 424 MB
for Market-1501's training split at 256x128) lives in the temporary folder (``TMPDIR``) as
``daaf-masks-<host>-<pid>-<random>.npy`` and is removed when the process that made it drops it,
exits or gets SIGTERM; one left by a killed process (SIGKILL) is removed by the next cache made
on that host once its maker is gone. Workers reopen it by path, whatever the multiprocessing
start method, and share its pages through the OS file cache; under torchrun, local rank 0 makes
one per node and the node's other ranks map it.
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
import weakref
from pathlib import Path

import numpy as np
from tqdm import tqdm

from daaf.data.annotations import AnnotationStore
from daaf.errors import DaafError
from daaf.utils import distributed
from daaf.utils.processes import exit_on_sigterm, is_alive

ROWS_PER_READ = 512
PREFIX = "daaf-masks-"
# mkstemp's random part is drawn from [a-z0-9_]
CACHE_NAME = re.compile(r"^daaf-masks-(?P<host>[A-Za-z0-9.]*)-(?P<pid>[1-9]\d*)-[a-z0-9_]+\.npy$")
NPY_MAGIC = b"\x93NUMPY"


def _host() -> str:
    """This host's name as it appears in a cache file name."""
    return re.sub(r"[^A-Za-z0-9.]", "", socket.gethostname())


def _remove(path: Path, owner: int) -> None:
    """Delete the file in the process that made it only (a forked worker inherits the hook)."""
    if os.getpid() == owner:
        path.unlink(missing_ok=True)


def sweep_stale_caches(folder: str | Path | None = None) -> list[Path]:
    """Remove the cache files in ``folder`` (default: the temporary folder) that a daaf process
    of this host and user made and that outlived it (killed with SIGKILL); returns them.

    Only a file named as :class:`MaskCache` names it, holding a .npy header, whose maker pid is
    gone, is removed: never another host's (a shared folder), a live process's or another name.
    """
    folder = Path(folder or tempfile.gettempdir())
    removed = []
    for path in folder.glob(f"{PREFIX}*.npy"):
        match = CACHE_NAME.match(path.name)
        if match is None or match["host"] != _host() or is_alive(int(match["pid"])):
            continue
        try:
            if path.stat().st_uid != os.getuid():
                continue
            with open(path, "rb") as f:
                if f.read(len(NPY_MAGIC)) != NPY_MAGIC:
                    continue
            path.unlink()
        except OSError:  # gone meanwhile, or not ours to remove
            continue
        removed.append(path)
    return removed


def _write_cache(store: AnnotationStore, names: list[str]) -> Path:
    """Decode ``names``' masks into a new cache file, removed when this process ends."""
    sweep_stale_caches()
    exit_on_sigterm()  # SIGTERM then runs the finalizer below, as an exception would
    shape = (len(names), *store.mask_size)
    fd, name = tempfile.mkstemp(prefix=f"{PREFIX}{_host()}-{os.getpid()}-", suffix=".npy")
    os.close(fd)
    path = Path(name)
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    try:  # plain writes, not a writable map: a full disk is an OSError here, not a SIGBUS
        with open(path, "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            for start in tqdm(
                range(0, len(names), ROWS_PER_READ), desc="decoding masks", leave=False
            ):
                f.write(store.masks(names[start : start + ROWS_PER_READ]).tobytes())
    except BaseException as exc:
        path.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        raise DaafError(
            f"cannot write the decoded training masks ({np.prod(shape) / 2**20:.0f} MB) to "
            f"{path}: {exc.strerror or exc}; free space there, point TMPDIR elsewhere, "
            "or set data.cache_masks=false to read them from the store"
        ) from None
    return path


class MaskCache:
    """Row ``i``: the uint8 (H, W) stored mask of ``names[i]``, equal to ``store.masks``'s.

    Under torchrun every rank must make it at the same point: local rank 0 writes the file,
    the node's other ranks wait for it and map it (a rank that cannot see the file, another
    temporary folder, writes its own).
    """

    def __init__(self, store: AnnotationStore, names: list[str]) -> None:
        leader = distributed.is_local_leader()
        made = failed = None
        if leader:
            try:
                made = _write_cache(store, names)
            except DaafError as exc:  # the other ranks wait for word either way
                failed = str(exc)
        made, failed = distributed.from_local_leader((made, failed))
        if failed is not None:
            raise DaafError(failed)
        if not leader and not Path(made).is_file():
            made, leader = _write_cache(store, names), True
        self.path = Path(made)
        if leader:
            weakref.finalize(self, _remove, self.path, os.getpid())
        self._rows: np.ndarray | None = None

    @property
    def rows(self) -> np.ndarray:
        """The read-only memory map, opened once per process."""
        if self._rows is None:
            self._rows = np.load(self.path, mmap_mode="r")
        return self._rows

    def __getitem__(self, index: int) -> np.ndarray:
        return self.rows[index]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_rows": None}  # a worker maps the file itself
