"""Pictures of an evaluation: CMC curves and rank lists (green border = match, red = not)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from daaf.data.datasets import ReIDDataset  # noqa: E402
from daaf.data.images import read_rgb_or_none  # noqa: E402
from daaf.evaluation.metrics import RankResult  # noqa: E402

TILE = (128, 64)  # (height, width) of one image in a rank list
GREEN, RED, GREY = (40, 180, 40), (220, 40, 40), (255, 255, 255)
JUNK = (150, 150, 150)


def save_cmc_curves(curves: dict[str, np.ndarray], path: Path, title: str = "CMC") -> Figure:
    """One line per labelled CMC curve (ranks 1..len); returns the (closed) figure."""
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
    return fig


def rank_tile(path: Path, border: tuple[int, int, int] | None) -> np.ndarray:
    """One rank-list image at :data:`TILE` size, framed in ``border``; black if unreadable."""
    image = read_rgb_or_none(path)
    image = np.zeros((*TILE, 3), np.uint8) if image is None else image
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
    label: str = "",
) -> list[Path]:
    """Query + top-``top`` gallery images for the ``num/2`` best and ``num/2`` worst queries by AP.

    Same-identity same-camera gallery images are excluded as in the protocol. Each picture marks
    the query, numbers the ranks, frames true matches green and others red (with a legend) and
    gives the query's AP in its title, after ``label`` (e.g. the model and ranking). Files are
    named ``<rank by AP>_<AP>_<query file stem>.png``.
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
        rank_of_query = int(np.flatnonzero(order == q)[0])
        path = out_dir / f"{rank_of_query:04d}_ap{result.ap[q]:.3f}_{Path(sample.path).stem}.png"
        title = (
            f"{label + ': ' if label else ''}{dataset.name} query {sample.path} "
            f"(id {sample.pid}, cam {sample.camid}), AP {result.ap[q]:.3f}, first true match "
            f"at rank {int(result.first_hit[q])}; {rank_of_query + 1} of {len(order)} by AP"
        )
        matches = [bool(g_pids[g] == sample.pid) for g in ranking]
        draw_rank_list(
            rank_tile(dataset.image_dir / sample.path, None),
            [
                rank_tile(dataset.image_dir / gallery[g].path, GREEN if m else RED)
                for g, m in zip(ranking, matches, strict=True)
            ],
            path,
            title,
        )
        paths.append(path)
    return paths


def draw_rank_list(
    query: np.ndarray,
    tiles: list[np.ndarray],
    path: Path,
    title: str,
    captions: list[str] | None = None,
    legend: int = 2,
) -> Figure:
    """One row: the query tile, a gap, the ranked gallery tiles; labels above (``captions``
    under each rank, e.g. its distance); below, a legend of the first ``legend`` of the frames
    (true match, other identity, junk; 0: none). Returns the (closed) figure, for tests."""
    gap = np.full((TILE[0], 12, 3), 255, np.uint8)
    canvas = np.concatenate([query, gap, *tiles], axis=1)
    width = max(canvas.shape[1] / 80 + 0.4, 2.3 * legend)  # room for the legend's entries
    height = TILE[0] / 80 + 0.9 + (0.3 if captions else 0)
    fig, ax = plt.subplots(figsize=(width, height))
    ax.imshow(canvas)
    starts = [TILE[1] + gap.shape[1] + i * TILE[1] for i in range(len(tiles))]
    labels = [f"rank {i + 1}" + (f"\n{captions[i]}" if captions else "") for i in range(len(tiles))]
    ax.set_xticks([TILE[1] / 2] + [x + TILE[1] / 2 for x in starts], ["query", *labels])
    ax.tick_params(length=0, labelsize=7, top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.get_xticklabels()[0].set_fontweight("bold")
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(textwrap.fill(title, int(fig.get_figwidth() * 14)), fontsize=7)
    handles = [
        Patch(fc="none", ec=np.array(GREEN) / 255, lw=2, label="same identity (true match)"),
        Patch(fc="none", ec=np.array(RED) / 255, lw=2, label="other identity"),
        Patch(
            fc="none",
            ec=np.array(JUNK) / 255,
            lw=2,
            label="same identity, same camera (junk, ignored)",
        ),
    ]
    if legend:
        fig.legend(
            handles=handles[:legend], loc="lower center", ncol=legend, fontsize=7, frameon=False
        )
    fig.tight_layout(rect=(0, 0.08 if legend else 0, 1, 1))
    fig.savefig(path, dpi=100, bbox_inches="tight")  # long titles and captions stay whole
    plt.close(fig)
    return fig
