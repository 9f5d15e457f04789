"""The training split's masks decoded once into a uint8 file that every worker memory-maps.

Reading one stored mask costs an h5py read and a zlib inflate, about what decoding the JPEG
costs; a mapped row costs a copy. The file (N x H x W bytes at the store's mask size: 424 MB
for Market-1501's training split at 256x128) lives in the temporary folder (``TMPDIR``) and is
removed when the process that made it drops it or exits. Workers reopen it by path, whatever
the multiprocessing start method, and share its pages through the OS file cache; each
training process (each DDP rank) makes its own.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from pathlib import Path

import numpy as np
from tqdm import tqdm

from daaf.data.annotations import AnnotationStore
from daaf.errors import DaafError

ROWS_PER_READ = 512


def _remove(path: Path, owner: int) -> None:
    """Delete the file in the process that made it only (a forked worker inherits the hook)."""
    if os.getpid() == owner:
        path.unlink(missing_ok=True)


class MaskCache:
    """Row ``i``: the uint8 (H, W) stored mask of ``names[i]``, equal to ``store.masks``'s."""

    def __init__(self, store: AnnotationStore, names: list[str]) -> None:
        shape = (len(names), *store.mask_size)
        fd, path = tempfile.mkstemp(prefix="daaf-masks-", suffix=".npy")
        os.close(fd)
        self.path = Path(path)
        weakref.finalize(self, _remove, self.path, os.getpid())
        header = {"descr": "|u1", "fortran_order": False, "shape": shape}
        try:  # plain writes, not a writable map: a full disk is an OSError here, not a SIGBUS
            with open(self.path, "wb") as f:
                np.lib.format.write_array_header_1_0(f, header)
                for start in tqdm(
                    range(0, len(names), ROWS_PER_READ), desc="decoding masks", leave=False
                ):
                    f.write(store.masks(names[start : start + ROWS_PER_READ]).tobytes())
        except OSError as exc:
            raise DaafError(
                f"cannot write the decoded training masks ({np.prod(shape) / 2**20:.0f} MB) to "
                f"{self.path}: {exc.strerror or exc}; free space there, point TMPDIR elsewhere, "
                "or set data.cache_masks=false to read them from the store"
            ) from None
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
