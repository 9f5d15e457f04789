"""What a ``daaf label`` run may do with the store already in its ``--out``.

Same settings as the store's ``store.json``: resume. Other settings: refuse before any work,
naming each difference. ``--overwrite``: build the new store in a hidden sibling folder and put
it in place of the old one only once it is complete and valid.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from daaf.data.annotations.info import STORE_INFO_NAME, info_differences, read_store_info
from daaf.data.annotations.schema import MANIFEST_NAME
from daaf.data.annotations.shards import list_shard_paths
from daaf.errors import DaafError


def _holds_a_store(folder: Path) -> bool:
    return any((folder / name).exists() for name in (STORE_INFO_NAME, MANIFEST_NAME)) or bool(
        list_shard_paths(folder)
    )


def check_rerun(store_dir: Path, info: dict, overwrite: bool) -> None:
    """Refuse, before any work, a run whose settings differ from those of the store there.

    ``overwrite`` is refused only for a folder that is neither empty nor a store (it would be
    deleted as a whole). Reads only.
    """
    ways = "use another --out, or --overwrite to replace the store once the new one is complete"
    if not store_dir.is_dir():
        return
    if overwrite:
        if any(store_dir.iterdir()) and not _holds_a_store(store_dir):
            raise DaafError(
                f"--overwrite: {store_dir} is not an annotation store (no {STORE_INFO_NAME}, "
                f"{MANIFEST_NAME} or shards) and is not empty; refusing to replace it"
            )
        return
    stored = read_store_info(store_dir)
    if stored is None:
        if _holds_a_store(store_dir):
            raise DaafError(
                f"{store_dir} holds a store without {STORE_INFO_NAME} (made by an older daaf), so "
                f"its settings cannot be compared with this run's; {ways}"
            )
        return
    differences = info_differences(stored, info)
    if differences:
        raise DaafError(
            f"{store_dir / STORE_INFO_NAME} was made with other settings: "
            f"{'; '.join(differences)}; {ways}"
        )


def overwrite_dir(store_dir: Path) -> Path:
    """Where ``--overwrite`` builds the new store: a hidden sibling of ``store_dir``."""
    store_dir = store_dir.resolve()
    return store_dir.with_name(f".{store_dir.name}.overwrite")


def replace_store(new_dir: Path, store_dir: Path) -> None:
    """Put the complete store ``new_dir`` in place of ``store_dir`` (two renames), delete the old."""
    store_dir = store_dir.resolve()
    old_dir = store_dir.with_name(f".{store_dir.name}.replaced")
    shutil.rmtree(old_dir, ignore_errors=True)
    if store_dir.exists():
        os.replace(store_dir, old_dir)
    os.replace(new_dir, store_dir)
    shutil.rmtree(old_dir, ignore_errors=True)
