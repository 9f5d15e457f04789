"""``store.json``: what a store was made with (dataset, splits, shard size, image list, labeler).

``daaf label`` writes it before the first shard and compares it on every re-run, so that a
re-run with other settings is refused instead of mixing two shard plans in one store.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

from daaf import __version__
from daaf.data.annotations.schema import READABLE_VERSIONS, SCHEMA_NAME, SCHEMA_VERSION
from daaf.data.datasets.base import Sample
from daaf.errors import DaafError
from daaf.utils.files import atomic_write

STORE_INFO_NAME = "store.json"
COMPARED = ("schema_version", "dataset", "splits", "shard_size", "mask_size", "images", "labeler")
SYNTH_BACKEND = "synthetic-ground-truth"  # the labeler of `daaf synth`'s exact annotations


def image_list_sha256(samples: dict[str, list[Sample]]) -> str:
    """SHA-256 of the lines ``split<TAB>image_path<TAB>pid<TAB>camid<LF>`` in labeling order."""
    digest = hashlib.sha256()
    for split, split_samples in samples.items():
        for s in split_samples:
            digest.update(f"{split}\t{s.path}\t{s.pid}\t{s.camid}\n".encode())
    return digest.hexdigest()


def make_store_info(
    dataset: str,
    samples: dict[str, list[Sample]],
    shard_size: int,
    mask_size: tuple[int, int],
    labeler: dict[str, Any],
) -> dict[str, Any]:
    """The ``store.json`` content of a store labeling ``samples`` (split -> samples)."""
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "dataset": dataset,
        "splits": list(samples),
        "shard_size": int(shard_size),
        "mask_size": [int(v) for v in mask_size],
        "images": {
            "count": sum(len(split) for split in samples.values()),
            "sha256": image_list_sha256(samples),
        },
        "labeler": json.loads(json.dumps(labeler, sort_keys=True)),
        "daaf_version": __version__,
    }


def read_store_info(store_dir: str | Path) -> dict[str, Any] | None:
    """The store's ``store.json``, or None if it has none; DaafError if it cannot be read."""
    path = Path(store_dir) / STORE_INFO_NAME
    if not path.exists():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DaafError(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise DaafError(f"{path} holds a JSON {type(info).__name__}, not an object")
    version = info.get("schema_version")
    if (
        info.get("schema") != SCHEMA_NAME
        or type(version) is not int
        or version not in READABLE_VERSIONS
    ):
        raise DaafError(
            f"{path} describes schema {info.get('schema')!r} version {version!r}, but this daaf "
            f"reads {SCHEMA_NAME!r} versions {', '.join(map(str, READABLE_VERSIONS))}; relabel "
            "the dataset or use a daaf release that reads that version"
        )
    missing = [key for key in COMPARED if key not in info]
    if missing:
        raise DaafError(f"{path} lacks the key(s) {', '.join(missing)}")
    return info


def write_store_info(store_dir: str | Path, info: dict[str, Any]) -> Path:
    """Write ``store.json`` atomically."""
    path = Path(store_dir) / STORE_INFO_NAME
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(info, indent=2) + "\n"))


def info_differences(stored: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"<key>: <stored> (store) vs <new> (this run)"`` for every compared setting that differs;
    the labeler is compared key by key."""
    differences = []
    for key in COMPARED:
        old_value, new_value = stored.get(key), new.get(key)
        if key == "labeler" and isinstance(old_value, dict) and isinstance(new_value, dict):
            for name in sorted(old_value.keys() | new_value.keys()):
                if old_value.get(name) != new_value.get(name):
                    differences.append(
                        f"labeler.{name}: {old_value.get(name)!r} (store) vs "
                        f"{new_value.get(name)!r} (this run)"
                    )
        elif old_value != new_value:
            differences.append(f"{key}: {old_value!r} (store) vs {new_value!r} (this run)")
    return differences


def relabel_command(
    store_dir: str | Path,
    root: str | Path,
    dataset: str,
    labeler: dict[str, Any],
    info: dict[str, Any] | None,
) -> str:
    """The command that makes the store at ``store_dir`` again from the images under ``root``
    with the settings it records (``labeler``, and ``store.json`` as ``info`` if it has one):
    ``daaf label ... --overwrite``, or ``daaf synth`` for synthetic ground truth, whose images
    and labels are made together. A ``--weights-dir`` given then must be given again."""
    if labeler.get("backend") == SYNTH_BACKEND:
        preset = f" --preset {shlex.quote(str(labeler['preset']))}" if "preset" in labeler else ""
        return (
            f"daaf synth --seed {labeler.get('seed', 0)}{preset} --out NEW_FOLDER with the "
            "--identities, --cameras and --images-per-identity that made it"
        )
    parts = ["daaf label", f"--dataset {shlex.quote(dataset)}"]
    parts += [f"--root {shlex.quote(str(root))}", f"--out {shlex.quote(str(store_dir))}"]
    if "backend" in labeler:
        parts.append(f"--backend {shlex.quote(str(labeler['backend']))}")
    if info is not None:
        parts += [f"--splits {','.join(info['splits'])}", f"--shard-size {info['shard_size']}"]
    if "min_size" in labeler:
        parts.append(f"--min-size {labeler['min_size']}")
    if labeler.get("weights") == "random":
        seeds = [w.get("seed") for w in labeler.get("weight_files", []) if isinstance(w, dict)]
        parts += ["--weights random", f"--seed {labeler.get('seed', (seeds or [0])[0])}"]
    return " ".join([*parts, "--overwrite"])
