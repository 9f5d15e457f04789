"""What ``daaf search`` writes: results.csv and one rank-list picture per query, the true and
false matches marked when the images' identities are known (``--pids``)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from daaf.errors import DaafError
from daaf.evaluation.plots import GREEN, JUNK, RED, draw_rank_list, rank_tile
from daaf.utils.files import printable

MARKS = {"true match": GREEN, "false match": RED, "junk": JUNK}


def dataset_identities(name: str, root: str | Path) -> dict[str, tuple[int, int]]:
    """``{real image path: (pid, camid)}`` over every split of a registered dataset (the path
    with links resolved, as :func:`identity` looks it up)."""
    from daaf.data.datasets import SPLITS, build_dataset

    dataset = build_dataset(name, root)
    image_dir = os.path.realpath(dataset.image_dir)
    return {
        os.path.normpath(os.path.join(image_dir, s.path)): (s.pid, s.camid)
        for split in SPLITS
        for s in dataset.split(split)
    }


def identity(identities: dict[str, tuple[int, int]], path: str | Path) -> tuple[int, int] | None:
    """``(pid, camid)`` of an image of :func:`dataset_identities`, whichever way its path is
    written (relative, through a link); None if it is not one of the dataset's."""
    return identities.get(os.path.realpath(path))


def check_identities_found(
    identities: dict[str, tuple[int, int]], queries: list[Path], gallery: list[Path], dataset: str
) -> int:
    """The number of ``queries`` that are no images of ``dataset`` (their matches stay blank);
    DaafError when none of the ranked ``gallery`` images is one of its images: every match
    would be unknown, a results.csv whose match column is empty."""
    if gallery and not any(identity(identities, g) for g in gallery):
        raise DaafError(
            f"--pids {dataset}: none of the {len(set(gallery))} gallery images ranked is an "
            f"image of that dataset under --root (e.g. {printable(str(gallery[0]))}); give the "
            "dataset and root the gallery was embedded from, or leave out --pids"
        )
    return sum(identity(identities, q) is None for q in queries)


def match_kind(query: tuple[int, int] | None, item: tuple[int, int] | None) -> str:
    """true match (same identity, other camera), junk (same identity and camera: the protocol
    ignores it), false match, or "" when an identity is unknown."""
    if query is None or item is None:
        return ""
    if query[0] != item[0]:
        return "false match"
    return "junk" if query[1] == item[1] else "true match"


def write_results(
    out_dir: Path,
    queries: list[Path],
    gallery: list[Path],
    distances: np.ndarray,
    indices: np.ndarray,
    identities: dict[str, tuple[int, int]] | None = None,
    label: str = "",
) -> Path:
    """results.csv (query, rank, gallery_path, distance[, match]) and ranklists/NNNN_<stem>.png;
    ``gallery`` holds the image of each entry of ``indices``, in the same (Q, K) order, flattened."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ranklists").mkdir(exist_ok=True)
    top = indices.shape[1]
    ids = identities or {}
    header = ["query", "rank", "gallery_path", "distance"] + (["match"] if identities else [])
    with open(out_dir / "results.csv", "w", newline="", encoding="utf-8") as f:
        rows = csv.writer(f)
        rows.writerow(header)
        for q, query in enumerate(queries):
            items = gallery[q * top : (q + 1) * top]
            q_id = identity(ids, query)
            kinds = [match_kind(q_id, identity(ids, g)) for g in items]
            for r, (item, kind) in enumerate(zip(items, kinds, strict=True)):
                rows.writerow(
                    [query, r + 1, item, f"{distances[q, r]:.6g}"] + ([kind] if identities else [])
                )
            captions = [
                f"{d:.4g}" + (f"\n{k}" if k else "")
                for d, k in zip(distances[q], kinds, strict=True)
            ]
            who = f" (id {q_id[0]}, cam {q_id[1]})" if q_id else ""
            draw_rank_list(
                rank_tile(query, None),
                [rank_tile(g, MARKS.get(k)) for g, k in zip(items, kinds, strict=True)],
                out_dir / "ranklists" / f"{q:04d}_{Path(query).stem}.png",
                f"{label + ': ' if label else ''}query {Path(query).name}{who}; top {top}, distance "
                "under each rank",
                captions=captions,
                legend=3 if identities else 0,
            )
    return out_dir / "results.csv"
