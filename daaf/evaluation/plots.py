"""Pictures of an evaluation: CMC curves and rank lists (green border = match, red = not)."""

from __future__ import annotations

from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from daaf.data.datasets import ReIDDataset  # noqa: E402
from daaf.evaluation.metrics import RankResult  # noqa: E402

TILE = (128, 64)  # (height, width) of one image in a rank list
GREEN, RED, GREY = (40, 180, 40), (220, 40, 40), (255, 255, 255)


def save_cmc_curves(curves: dict[str, np.ndarray], path: Path, title: str = "CMC") -> None:
    """One line per labelled CMC curve (ranks 1..len)."""
    fig, ax = plt.subplots(figsize=(5, 4))
    for label, cmc in curves.items():
        ax.plot(np.arange(1, len(cmc) + 1), 100 * np.asarray(cmc), label=label)
    ax.set(xlabel="rank", ylabel="matching rate (%)", title=title, ylim=(0, 100.5))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _tile(path: Path, border: tuple[int, int, int] | None) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    image = (
        np.zeros((*TILE, 3), np.uint8) if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    )
    image = cv2.resize(image, (TILE[1], TILE[0]))
    if border is not None:
        cv2.rectangle(image, (0, 0), (TILE[1] - 1, TILE[0] - 1), border, 4)
    return image


def save_rank_lists(
    distmat: np.ndarray,
    result: RankResult,
    dataset: ReIDDataset,
    out_dir: Path,
    num: int,
    top: int = 10,
) -> list[Path]:
    """Query + top-``top`` gallery images for the ``num/2`` best and ``num/2`` worst queries by AP.

    Same-identity same-camera gallery images are excluded as in the protocol. Files are named
    ``<rank by AP>_<AP>_<query file stem>.png``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    query, gallery = dataset.query, dataset.gallery
    g_pids = np.array([s.pid for s in gallery])
    g_cams = np.array([s.camid for s in gallery])
    valid = np.flatnonzero(np.isfinite(result.ap))
    order = valid[np.argsort(-result.ap[valid], kind="stable")]
    chosen = (
        list(order[: num - num // 2]) + list(order[len(order) - num // 2 :])
        if num < len(order)
        else list(order)
    )
    paths = []
    for q in chosen:
        sample = query[q]
        ranking = np.argsort(distmat[q], kind="stable")
        ranking = ranking[~((g_pids[ranking] == sample.pid) & (g_cams[ranking] == sample.camid))][
            :top
        ]
        tiles = [
            _tile(dataset.image_dir / sample.path, None),
            np.full((TILE[0], 8, 3), 255, np.uint8),
        ]
        tiles += [
            _tile(dataset.image_dir / gallery[g].path, GREEN if g_pids[g] == sample.pid else RED)
            for g in ranking
        ]
        rank_of_query = int(np.flatnonzero(order == q)[0])
        path = out_dir / f"{rank_of_query:04d}_ap{result.ap[q]:.3f}_{Path(sample.path).stem}.png"
        cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths
