"""``validate_store``: are all shards whole, current and checksummed; do they cover a dataset,
and are its images the files the store was labelled from?

Opens everything read-only and never writes: a store that fails validation is left as it was.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from daaf.data.annotations.digests import DIGEST_THREADS, file_digests
from daaf.data.annotations.info import STORE_INFO_NAME, read_store_info, relabel_command
from daaf.data.annotations.schema import (
    MANIFEST_NAME,
    SHARD_PATTERN,
    STATUS_NAMES,
    STATUS_OK,
    keypoints_off_image,
)
from daaf.data.annotations.shards import (
    ShardHeader,
    hash_datasets,
    header_mismatches,
    index_shard,
    list_shard_paths,
    open_shard,
    read_header,
    read_manifest,
)
from daaf.data.datasets.base import SPLITS, ReIDDataset, Sample
from daaf.errors import DaafError

EXAMPLES = 3  # paths named per problem
KEY_COLUMNS = ["image_path", "split", "pid", "camid", "status", "image_sha256"]
SCORE_COLUMNS = ["person_score", "mean_keypoint_score", "mask_area"]


def _examples(paths) -> str:
    paths = list(paths)
    more = f" and {len(paths) - EXAMPLES} more" if len(paths) > EXAMPLES else ""
    return ", ".join(paths[:EXAMPLES]) + more


def _check_shard(path: Path) -> tuple[ShardHeader, pd.DataFrame, list[str]]:
    """Header, manifest rows and problems of one shard; raises DaafError if it cannot be read."""
    problems = []
    try:
        with open_shard(path) as f:
            header = read_header(f, path)
            areas = []
            if header.content_sha256 != hash_datasets(f, areas, header.schema_version):
                problems.append(f"{path}: content does not match its content_sha256 (modified?)")
            rows = index_shard(f, header, np.concatenate(areas or [[]]))
            off_image = keypoints_off_image(f["keypoints"][()], f["image_size"][()])
    except OSError as exc:  # a fletcher32 or decompression error inside a dataset
        raise DaafError(f"{path}: data cannot be read (damaged file): {exc}") from exc
    if off_image.any():
        images = off_image.any(axis=1)
        problems.append(
            f"{path}: {int(off_image.sum())} keypoint(s) of {int(images.sum())} image(s) lie "
            f"outside their image and are not (NaN, NaN, 0), first in "
            f"{rows['image_path'][int(np.argmax(images))]}"
        )
    unknown = ~rows["status"].isin(list(STATUS_NAMES))
    if unknown.any():
        problems.append(
            f"{path}: {int(unknown.sum())} row(s) of status "
            f"{', '.join(map(str, sorted(set(rows['status'][unknown]))[:5]))}, which the schema "
            f"does not define ({', '.join(f'{k} {v}' for k, v in STATUS_NAMES.items())}), "
            f"first {rows['image_path'][unknown].iloc[0]}"
        )
    match = SHARD_PATTERN.match(path.name)
    if (header.split, header.shard_index) != (match["split"], int(match["index"])):
        problems.append(
            f"{path}: attributes say split {header.split!r} shard {header.shard_index}, "
            f"which does not match the file name"
        )
    return header, rows, problems


def _compare_manifest(manifest: pd.DataFrame, scanned: pd.DataFrame, path: Path) -> list[str]:
    problems = []
    listed, present = set(manifest["shard"]), set(scanned["shard"])
    for name in sorted(listed - present):
        problems.append(f"{path} lists shard {name}, which is missing or unreadable")
    for name in sorted(present - listed):
        problems.append(f"{path} does not list the rows of shard {name}")
    both = manifest[manifest["shard"].isin(present)].merge(
        scanned, on=["shard", "row"], how="outer", suffixes=("", "_shard"), indicator=True
    )
    differs = both["_merge"] != "both"
    for column in KEY_COLUMNS:  # as objects: a missing row must not turn 3 into "3.0"
        differs |= both[column].astype(object) != both[f"{column}_shard"].astype(object)
    for column in SCORE_COLUMNS:
        a, b = both[column].to_numpy(float), both[f"{column}_shard"].to_numpy(float)
        differs |= ~np.isclose(a, b, rtol=0, atol=2e-6, equal_nan=True)
    if differs.any():
        names = both["image_path"].fillna(both["image_path_shard"])[differs]
        problems.append(
            f"{path} disagrees with the shards on {int(differs.sum())} row(s), e.g. "
            f"{_examples(names)}"
        )
    return problems


def identity_mismatches(rows: pd.DataFrame, samples: list[Sample]) -> list[str]:
    """The paths of ``samples`` that the manifest ``rows`` (image_path, pid, camid) hold with
    another pid or camid than the dataset gives them: labels made for other images."""
    stored = dict(
        zip(rows["image_path"], zip(rows["pid"], rows["camid"], strict=True), strict=True)
    )
    return [
        s.path
        for s in samples
        if s.path in stored and tuple(map(int, stored[s.path])) != (s.pid, s.camid)
    ]


def image_mismatches(
    rows: pd.DataFrame, samples: list[Sample], image_dir: Path, threads: int = DIGEST_THREADS
) -> list[str]:
    """The paths of ``samples`` whose file is not the one the manifest ``rows`` (image_path,
    image_sha256) were labelled from: its SHA-256 differs, or it is gone. Rows without a digest
    are not checked (:func:`undigested`). Reads each file once, on ``threads`` threads."""
    stored = dict(zip(rows["image_path"].tolist(), rows["image_sha256"].tolist(), strict=True))
    checked = [s.path for s in samples if stored.get(s.path)]
    found = file_digests([os.path.join(image_dir, path) for path in checked], threads)
    pairs = zip(checked, found, strict=True)
    return [path for path, digest in pairs if digest is None or digest.hex() != stored[path]]


def undigested(rows: pd.DataFrame, samples: list[Sample]) -> list[str]:
    """The paths of ``samples`` labelled (status 0) in ``rows`` without an image digest, whose
    labels therefore cannot be checked against the images (every row of a schema v1 store)."""
    labelled = rows[(rows["status"] == STATUS_OK) & (rows["image_sha256"] == "")]
    paths = set(labelled["image_path"])
    return [s.path for s in samples if s.path in paths]


def check_images(
    rows: pd.DataFrame, samples: list[Sample], image_dir: Path, relabel: str
) -> tuple[str | None, str | None]:
    """(problem, note): one line naming the images of ``samples`` that are not the files their
    rows were labelled from, and one saying how many labels cannot be checked for want of a
    digest; None where there are none. Both end with the ``relabel`` command."""
    changed = image_mismatches(rows, samples, image_dir)
    problem = note = None
    if changed:
        problem = (
            f"{len(changed)} of {len(samples)} images in {image_dir} are not the files they were "
            "labelled from (SHA-256 of the file differs from the store's image_sha256: replaced, "
            f"re-cropped, or another dataset's images of the same names), e.g. "
            f"{_examples(changed)}; relabel: `{relabel}`"
        )
    unchecked = undigested(rows, samples)
    if unchecked:
        note = (
            f"{len(unchecked)} of {len(samples)} labelled images have no image digest in the "
            "store (stores of annotation schema 1 record none), so their labels cannot be checked "
            f"against the images; relabel to check them: `{relabel}`"
        )
    return problem, note


def _compare_dataset(
    scanned: pd.DataFrame, dataset: ReIDDataset, splits: tuple[str, ...] | list[str]
) -> list[str]:
    problems = []
    for split in splits:
        expected = dataset.split(split)
        rows = scanned[scanned["split"] == split]
        stored, paths = set(rows["image_path"]), {s.path for s in expected}
        missing = [s.path for s in expected if s.path not in stored]
        extra = [p for p in rows["image_path"] if p not in paths]
        wrong = identity_mismatches(rows, expected)
        if missing:
            problems.append(
                f"{split}: {len(missing)} image(s) of dataset {dataset.name!r} are not in the "
                f"store, e.g. {_examples(missing)}"
            )
        if extra:
            problems.append(
                f"{split}: {len(extra)} stored image(s) are not in dataset {dataset.name!r}, "
                f"e.g. {_examples(extra)}"
            )
        if wrong:
            problems.append(
                f"{split}: {len(wrong)} stored image(s) have another pid/camid than dataset "
                f"{dataset.name!r} reports, e.g. {_examples(wrong)}"
            )
    return problems


def _compare_info(info: dict, headers: list[ShardHeader], scanned, path: Path) -> list[str]:
    """``store.json`` against the shards: dataset, mask size, splits and number of images."""
    problems = []
    if headers and info["dataset"] != headers[0].dataset:
        problems.append(
            f"{path} names dataset {info['dataset']!r}, the shards {headers[0].dataset!r}"
        )
    if headers and info["schema_version"] != headers[0].schema_version:
        problems.append(
            f"{path} names schema version {info['schema_version']}, the shards "
            f"{headers[0].schema_version}"
        )
    if headers and tuple(info["mask_size"]) != headers[0].mask_size:
        problems.append(
            f"{path} names mask size {info['mask_size']}, the shards {headers[0].mask_size}"
        )
    if scanned is not None:
        other = sorted(set(scanned["split"]) - set(info["splits"]))
        if other:
            problems.append(f"{path} names splits {info['splits']}, the shards also {other}")
        if len(scanned) != info["images"]["count"]:
            problems.append(
                f"{path} records {info['images']['count']} images, the shards hold {len(scanned)} "
                f"(an interrupted `daaf label`? re-run it to finish the store)"
            )
    return problems


def validate_store(
    store_dir: str | Path,
    dataset: ReIDDataset | None = None,
    progress: bool = False,
    splits: tuple[str, ...] | None = None,
    notes: list[str] | None = None,
) -> list[str]:
    """Problems of the store at ``store_dir`` (``[]`` if valid); with ``dataset``, its coverage
    and images too.

    Checks that every shard opens, is whole, has a schema this daaf reads, matches its
    ``content_sha256``, that
    every keypoint lies inside its image or is (NaN, NaN, 0), that all shards name one dataset
    and mask size, that no image appears twice, that
    ``manifest.csv`` and ``store.json`` (if any) agree with the shards and, given ``dataset``,
    that every split (every split ``store.json`` names, if any) holds exactly the dataset's
    images with the same pid and camid, and that each image file is the one its row was
    labelled from (:func:`check_images`; the line saying that labels without a digest cannot be
    checked goes to ``notes``, if given). ``splits`` checks only those splits' shards and
    manifest rows, all that training reads: a store whose other splits are unfinished, or that
    has no manifest (the reader then indexes the shards themselves), passes.
    """
    store_dir = Path(store_dir)
    if not store_dir.is_dir():
        return [f"{store_dir}: annotation store folder does not exist"]
    paths = list_shard_paths(store_dir)
    if splits is not None:
        paths = [path for path in paths if SHARD_PATTERN.match(path.name)["split"] in splits]
    if not paths:
        of = f" of split {', '.join(splits)}" if splits is not None else ""
        return [f"{store_dir}: no shard files{of} (<split>-<nnnnn>.h5)"]
    problems, headers, scanned = _scan_shards(paths, progress)
    problems += header_mismatches(headers)
    if scanned is not None:
        problems += _row_problems(scanned, store_dir)
    problems += _manifest_problems(store_dir, scanned, splits)
    covered = SPLITS if splits is None else splits
    try:
        info = read_store_info(store_dir)
    except DaafError as exc:
        info = None
        problems.append(str(exc))
    if info is not None:
        counted = scanned if splits is None else None  # store.json counts every split's images
        problems += _compare_info(info, headers, counted, store_dir / STORE_INFO_NAME)
        covered = [split for split in info["splits"] if split in covered]
    if dataset is not None and scanned is not None:
        problems += _compare_dataset(scanned, dataset, covered)
        samples = [sample for split in covered for sample in dataset.split(split)]
        labeler = headers[0].labeler
        relabel = relabel_command(store_dir, dataset.image_dir, dataset.name, labeler, info)
        problem, note = check_images(scanned, samples, dataset.image_dir, relabel)
        problems += [problem] if problem else []
        if note and notes is not None:
            notes.append(note)
    return problems


def _scan_shards(
    paths: list[Path], progress: bool
) -> tuple[list[str], list[ShardHeader], pd.DataFrame | None]:
    """Problems, headers and manifest rows of the shards at ``paths`` (rows None if none reads)."""
    problems, headers, frames = [], [], []
    for path in tqdm(paths, desc="validate", unit="shard", disable=not progress):
        try:
            header, rows, shard_problems = _check_shard(path)
        except DaafError as exc:
            problems.append(str(exc))
            continue
        problems += shard_problems
        headers.append(header)
        frames.append(rows)
    scanned = pd.concat(frames, ignore_index=True) if frames else None
    return problems, headers, scanned


def _row_problems(scanned: pd.DataFrame, store_dir: Path) -> list[str]:
    """A split of which no image is labelled; images stored more than once."""
    problems = []
    for split, rows in scanned.groupby("split"):
        if not (rows["status"] == STATUS_OK).any():
            problems.append(
                f"{store_dir}: none of the {len(rows)} {split} images is labelled (status "
                f"{STATUS_OK}): "
                + ", ".join(
                    f"{n} {STATUS_NAMES.get(code, code)}"
                    for code, n in rows["status"].value_counts().sort_index().items()
                )
            )
    duplicated = scanned["image_path"][scanned["image_path"].duplicated()]
    if len(duplicated):
        problems.append(
            f"{store_dir}: {len(duplicated)} image(s) stored more than once, e.g. "
            f"{_examples(duplicated)}"
        )
    return problems


def _manifest_problems(
    store_dir: Path, scanned: pd.DataFrame | None, splits: tuple[str, ...] | None
) -> list[str]:
    """``manifest.csv`` against the shards' rows (only ``splits``' rows, if given); a missing
    manifest is a problem only when every split is checked."""
    manifest_path = store_dir / MANIFEST_NAME
    if not manifest_path.exists():
        if splits is None:
            return [
                f"{manifest_path} is missing (AnnotationWriter(...).write_manifest() rebuilds it)"
            ]
        return []
    if scanned is None:
        return []
    try:
        manifest = read_manifest(manifest_path)
        if splits is not None:  # the rows of these splits, or said to be in their shards
            mine = manifest["split"].isin(splits) | manifest["shard"].isin(scanned["shard"])
            manifest = manifest[mine]
        return _compare_manifest(manifest, scanned, manifest_path)
    except DaafError as exc:
        return [str(exc)]
