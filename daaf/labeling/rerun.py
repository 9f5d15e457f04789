"""What a ``daaf label`` run may do with the store already in its ``--out``.

Same settings as the store's ``store.json``: resume. Other settings: refuse before any work,
naming each difference. ``--overwrite``: build the new store in a hidden sibling folder
(``.<store>.overwrite``, resumed by the next ``--overwrite`` when interrupted) and put it in
place of the old one only once it is complete and valid.

daaf replaces only a store it can tell it made: one holding daaf's marker
(:data:`~daaf.utils.files.MARKER_NAME`, written into every store daaf creates) or, for a store
made by a daaf older than the marker, a readable daaf ``store.json`` (a file only daaf's
labeling writes, with the schema name and the settings it compares); and only if the folder
holds nothing but the files a store is made of. The dataset's own folders are never an
``--out``. The swap is two renames; a run that finds it interrupted between them finishes it
before anything else.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from daaf.data.annotations.info import (
    STORE_INFO_NAME,
    info_differences,
    read_store_info,
    write_store_info,
)
from daaf.data.annotations.schema import MANIFEST_NAME, SCHEMA_NAME, SHARD_PATTERN, STORE_KIND
from daaf.data.annotations.shards import list_shard_paths
from daaf.data.datasets import SPLITS, ReIDDataset
from daaf.errors import DaafError
from daaf.utils.files import (
    MARKER_NAME,
    claim_dir,
    made_by_daaf,
    mark_dir,
    remove_dir,
    user_entries,
)

REPORT_NAME = "label_report.json"
_TEMPORARY = re.compile(r"^(?P<name>.+)\.tmp-\d+$")  # left by a killed atomic_write


def _holds_a_store(folder: Path) -> bool:
    return any((folder / name).exists() for name in (STORE_INFO_NAME, MANIFEST_NAME)) or bool(
        list_shard_paths(folder)
    )


def _is_store_file(name: str) -> bool:
    match = _TEMPORARY.match(name)
    name = match["name"] if match else name
    return name in (STORE_INFO_NAME, MANIFEST_NAME, REPORT_NAME) or bool(SHARD_PATTERN.match(name))


def _made_by_daaf(store_dir: Path) -> bool:
    """Marked, or (made before the marker) holding a readable daaf ``store.json``."""
    if made_by_daaf(store_dir, STORE_KIND):
        return True
    try:
        info = read_store_info(store_dir)
    except DaafError:
        return False
    return info is not None and info.get("schema") == SCHEMA_NAME


def replace_problem(store_dir: Path) -> str | None:
    """Why ``store_dir`` may not be replaced as a whole, or None if it may."""
    if not _made_by_daaf(store_dir):
        return (
            f"{store_dir} is not an annotation store daaf made (no {MARKER_NAME} marker, no daaf "
            f"{STORE_INFO_NAME})"
        )
    foreign = [p.name for p in user_entries(store_dir) if not _is_store_file(p.name)]
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        return f"{store_dir} holds files daaf did not write ({', '.join(foreign[:3])}{more})"
    return None


def check_store_out(store_dir: Path, dataset: ReIDDataset) -> None:
    """DaafError if the store folder is, or holds, a folder of the dataset's images: a store is
    a folder of its own (``--out DATA/annotations`` beside ``DATA``'s image folders is fine)."""
    store_dir = Path(store_dir).resolve()
    image_dir = Path(dataset.image_dir).resolve()
    folders = {os.path.dirname(s.path) for split in SPLITS for s in dataset.split(split)}
    for folder in sorted(image_dir / name for name in folders | {""}):
        if folder == store_dir or store_dir in folder.parents:
            raise DaafError(
                f"--out {store_dir} holds the dataset's images ({folder}); label into a folder of "
                "its own, e.g. DATA/annotations"
            )


def check_rerun(store_dir: Path, info: dict, overwrite: bool) -> None:
    """Refuse, before any work, a run whose settings differ from those of the store there.

    ``overwrite`` is refused for a folder that is neither empty nor a store daaf made and holds
    only store files (it would be replaced as a whole). Reads only.
    """
    ways = "use another --out, or --overwrite to replace the store once the new one is complete"
    if not store_dir.is_dir():
        return
    if overwrite:
        problem = replace_problem(store_dir) if user_entries(store_dir) else None
        if problem:
            raise DaafError(f"--overwrite: {problem}; refusing to replace it")
        return
    stored = read_store_info(store_dir)
    if stored is None:
        if _holds_a_store(store_dir):
            hint = ways if replace_problem(store_dir) is None else "use another --out"
            raise DaafError(
                f"{store_dir} holds a store without {STORE_INFO_NAME} (made by an older daaf), so "
                f"its settings cannot be compared with this run's; {hint}"
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


def replaced_dir(store_dir: Path) -> Path:
    """Where the old store waits, during a swap, to be deleted: a hidden sibling."""
    store_dir = store_dir.resolve()
    return store_dir.with_name(f".{store_dir.name}.replaced")


def start_store(build_dir: Path, info: dict, overwrite: bool) -> None:
    """Make ``build_dir`` ready for shards: created and marked if new, ``store.json`` written.

    An ``--overwrite`` build left by an interrupted run resumes when it was started with the
    same settings; otherwise it is deleted first (only if daaf's marker is in it).
    """
    if overwrite and build_dir.exists():
        try:
            same = made_by_daaf(build_dir, STORE_KIND) and not info_differences(
                read_store_info(build_dir) or {}, info
            )
        except DaafError:  # an unreadable store.json: start again
            same = False
        if not same:
            remove_dir(build_dir, STORE_KIND)
        else:
            print(
                f"daaf label: resuming the interrupted --overwrite in {build_dir}", file=sys.stderr
            )
    claim_dir(build_dir, STORE_KIND)
    write_store_info(build_dir, info)


def replace_store(new_dir: Path, store_dir: Path) -> None:
    """Put the complete store ``new_dir`` in place of ``store_dir`` and delete the old one.

    Two renames (store -> ``.<store>.replaced``, new -> store); a crash between them is
    finished by :func:`finish_replace` on the next run. A store made before daaf marked its
    stores gets the marker first, so that the renamed old store can be recognised.
    """
    store_dir = store_dir.resolve()
    old_dir = replaced_dir(store_dir)
    if store_dir.exists():
        problem = replace_problem(store_dir) if user_entries(store_dir) else None
        if problem:  # checked again: the labeling may have taken hours
            raise DaafError(f"--overwrite: {problem}; the new store is left in {new_dir}")
        mark_dir(store_dir, STORE_KIND)  # an empty folder, or a store made before the marker
        os.replace(store_dir, old_dir)
    os.replace(new_dir, store_dir)
    if old_dir.exists():
        remove_dir(old_dir, STORE_KIND)


def finish_replace(store_dir: Path) -> None:
    """Finish a swap of :func:`replace_store` that a crash interrupted, so that no store is lost:
    the new store goes in place if the old one was already moved aside; then the old one goes."""
    store_dir = store_dir.resolve()
    old_dir, new_dir = replaced_dir(store_dir), overwrite_dir(store_dir)
    if not old_dir.exists():
        return
    if not made_by_daaf(old_dir, STORE_KIND):
        raise DaafError(
            f"{old_dir} is in the way of replacing {store_dir} and was not made by daaf (no "
            f"{MARKER_NAME} marker); move it away yourself"
        )
    if not store_dir.exists():
        source = new_dir if made_by_daaf(new_dir, STORE_KIND) else old_dir
        os.replace(source, store_dir)
        print(f"daaf label: finished the interrupted replacement of {store_dir}", file=sys.stderr)
    if old_dir.exists():
        remove_dir(old_dir, STORE_KIND)
