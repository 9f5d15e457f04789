"""How hard a synthetic set is before any training: a layout prior's PCK and a random ranking's mAP.

- :func:`constant_map_pck`: PCK of a model that predicts, for every image, each keypoint at its
  median position over the training set. Keypoints that barely move make this high (0.80 on
  the default preset), and then PCK cannot tell a PAB that localises from one that learned
  the layout.
- :func:`random_ranking_map`: the expected mAP of a random ranking of the gallery under the
  Market-1501 protocol: the chance level a trained model's mAP is compared with.

``scripts/synth_stats.py`` prints both for dataset roots written by ``daaf synth``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from daaf.data.annotations import AnnotationStore
from daaf.data.datasets import build_dataset
from daaf.data.synthetic.generate import CONDITIONS_NAME


def median_keypoints(keypoints: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """(17, 2) per-keypoint median (x, y) over the visible keypoints, as fractions of the image's
    (width, height); NaN for a keypoint never visible.

    keypoints: (N, 17, 3) x, y in pixels and score (0: not found); sizes: (N, 2) (height, width).
    """
    scale = np.asarray(sizes, np.float64)[:, None, ::-1]  # (N, 1, 2): width, height
    points = np.where(keypoints[..., 2:] > 0, keypoints[..., :2] / scale, np.nan)
    with warnings.catch_warnings():  # a keypoint never visible: NaN, as documented
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(points, axis=0) if len(points) else np.full((17, 2), np.nan)


def constant_map_pck(
    prior: np.ndarray, keypoints: np.ndarray, sizes: np.ndarray, fraction: float = 0.1
) -> tuple[int, int]:
    """(correct, visible): visible ``keypoints`` within ``fraction`` x image height of the
    ``prior`` position (from :func:`median_keypoints`), in each image's pixels; a keypoint the
    prior has no position for (never visible in training) counts as missed."""
    sizes = np.asarray(sizes, np.float64)
    guess = prior[None] * sizes[:, None, ::-1]  # (N, 17, 2) pixels
    visible = keypoints[..., 2] > 0
    distance = np.hypot(*np.moveaxis(keypoints[..., :2] - guess, -1, 0))
    with np.errstate(invalid="ignore"):  # NaN distances: not visible, or no prior
        hit = visible & (distance <= fraction * sizes[:, 0:1])
    return int(hit.sum()), int(visible.sum())


def expected_random_ap(gallery: int, positives: int) -> float:
    """E[AP] of a uniformly random ranking of ``gallery`` items of which ``positives`` are
    relevant: H_N / N + (R - 1) (N - H_N) / (N (N - 1)), with H_N the N-th harmonic number."""
    n, r = gallery, positives
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    return harmonic / n + ((r - 1) * (n - harmonic) / (n * (n - 1)) if n > 1 else 0.0)


def random_ranking_map(q_pids, q_camids, g_pids, g_camids) -> float:
    """Expected mAP of a random ranking, under the protocol of ``daaf.evaluation.metrics``:
    gallery items with the query's identity and camera are dropped, queries without a
    positive are skipped."""
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    aps = []
    for pid, camid in zip(q_pids, q_camids, strict=True):
        kept = ~((g_pids == pid) & (g_camids == camid))
        positives = int(((g_pids == pid) & kept).sum())
        if positives:
            aps.append(expected_random_ap(int(kept.sum()), positives))
    return float(np.mean(aps))


def split_keypoints(store: AnnotationStore, paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(N, 17, 3) keypoints and (N, 2) image sizes of ``paths``."""
    sizes = np.array([store.get(path).image_size for path in paths], np.float64).reshape(-1, 2)
    return store.keypoints(paths), sizes


def summarize(root: str | Path) -> dict:
    """The figures ``scripts/synth_stats.py`` prints for one ``daaf synth`` root."""
    root = Path(root)
    dataset = build_dataset("market1501", root)
    store = AnnotationStore(root / "annotations")
    train = split_keypoints(store, [s.path for s in dataset.train])
    query = split_keypoints(store, [s.path for s in dataset.query])
    prior = median_keypoints(*train)
    correct, visible = constant_map_pck(prior, *query)
    points = np.where(query[0][..., 2:] > 0, query[0][..., :2], np.nan)
    seen = np.isfinite(points[..., 0]).any(axis=0)  # keypoints visible in some query
    spread = np.nanstd(points[:, seen], axis=0).mean(axis=0)  # (2,): x, y
    row = {
        "root": str(root),
        "preset": store.labeler.get("preset", "default"),
        "queries": len(dataset.query),
        "gallery": len(dataset.gallery),
        "visible_keypoints": visible,
        "constant_map_pck": correct / visible if visible else float("nan"),
        "keypoint_std_x": float(spread[0]),
        "keypoint_std_y": float(spread[1]),
        "chance_map": random_ranking_map(
            [s.pid for s in dataset.query],
            [s.camid for s in dataset.query],
            [s.pid for s in dataset.gallery],
            [s.camid for s in dataset.gallery],
        ),
    }
    conditions = root / CONDITIONS_NAME
    if conditions.exists():
        table = pd.read_csv(conditions)
        queries = table[table["split"] == "query"]
        for column in ("occluded", "misaligned", "cut_head", "cut_feet"):
            row[f"query_{column}"] = int(queries[column].sum())
        row["query_people_in_front"] = int((queries["people_in_front"] > 0).sum())
    return row
