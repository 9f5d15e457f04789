"""The evaluation pipeline: model + dataset -> features -> distances -> metrics, as an
:class:`Evaluation` (:mod:`daaf.evaluation.outputs` writes its files and pictures)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from daaf.data.config import DataConfig
from daaf.data.datasets import ReIDDataset
from daaf.evaluation.distance import compute_distance
from daaf.evaluation.features import FeatureOptions, extract_features
from daaf.evaluation.metrics import RankResult, evaluate_rank
from daaf.evaluation.rerank import re_ranking_features
from daaf.models.meta import ModelMeta
from daaf.utils.device import resolve_device

# Partial-REID and Partial-iLIDS are reported as in the paper's Table 3: with these columns.
PARTIAL_DATASETS = ("partial_reid", "partial_ilids")
PARTIAL_COLUMNS = [
    "dataset",
    "ranking",
    "metric",
    "flip",
    "rank1",
    "rank3",
    "mAP",
    "num_valid_queries",
]


def model_label(path: Path) -> str:
    """A short model name for titles: the export or run folder's name for the standard files
    (``models/daaf_bot``, ``models/daaf_bot/model_state.pt``, ``runs/daaf_bot/checkpoints/
    last.pt`` give daaf_bot), the file's stem otherwise (``bot_seed1.pt`` gives bot_seed1)."""
    path = Path(path).resolve()
    if not (path.is_file() or path.suffix in (".pt", ".pth", ".ts")):
        return path.name
    if path.parent.name == "checkpoints":
        return path.parent.parent.name
    return path.parent.name if path.name in ("model_state.pt", "model.ts") else path.stem


def data_meta(cfg: DataConfig) -> ModelMeta:
    """The test-time input description of a training config (what export writes as meta)."""
    return ModelMeta(cfg.height, cfg.width, list(cfg.pixel_mean), list(cfg.pixel_std))


def query_gallery_features(
    model: torch.nn.Module,
    dataset: ReIDDataset,
    meta: ModelMeta,
    device: torch.device | str,
    options: FeatureOptions | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """float32 (num_query, D) and (num_gallery, D) embeddings of the dataset's query and gallery
    by the model, put in eval mode (``options``: :class:`FeatureOptions`' defaults if None)."""
    options = options or FeatureOptions()
    model.eval()
    feats = [
        extract_features(
            model,
            dataset.split(split),
            dataset.image_dir,
            meta,
            device,
            options,
            desc=f"{split} features",
        )
        for split in ("query", "gallery")
    ]
    return feats[0], feats[1]


def rank(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    dataset: ReIDDataset,
    metric: str,
    rerank: bool,
    device: torch.device | str | None = None,
) -> tuple[np.ndarray, RankResult]:
    """Distances (re-ranked when asked) and their metrics; on a CUDA ``device`` the distance
    blocks and the metrics' sorts run there (the CPU keeps NumPy's faster per-query counting)."""
    on = None if device is None else resolve_device(device)
    on = on if on is not None and on.type == "cuda" else None
    if rerank:
        distmat = re_ranking_features(q_feats, g_feats, metric=metric, device=on)
    else:
        distmat = compute_distance(q_feats, g_feats, metric, device=on)
    ids = {
        split: (
            np.array([s.pid for s in dataset.split(split)]),
            np.array([s.camid for s in dataset.split(split)]),
        )
        for split in ("query", "gallery")
    }
    result = evaluate_rank(
        distmat, ids["query"][0], ids["gallery"][0], ids["query"][1], ids["gallery"][1], device=on
    )
    return distmat, result


def evaluate_embeddings(
    model: torch.nn.Module,
    dataset: ReIDDataset,
    cfg: DataConfig,
    device: torch.device | str,
    metric: str,
) -> RankResult:
    """mAP / CMC of an eval-mode model on the dataset's query and gallery (used during training)."""
    options = FeatureOptions(batch_size=cfg.test_batch_size, workers=cfg.workers)
    q, g = query_gallery_features(model, dataset, data_meta(cfg), device, options)
    return rank(q, g, dataset, metric, rerank=False, device=device)[1]


def per_query_table(result: RankResult, queries: list, reranked: bool) -> pd.DataFrame:
    """per_query.csv's rows: image_path, pid, camid, ap (fraction), first_hit (1-based), inp,
    reranked (0/1). A query without a positive in the gallery (same identity, other camera) keeps
    its row with ap, first_hit and inp empty: it is left out of mAP, CMC and mINP, so the mean of
    the non-empty ap values is the mAP of metrics.json."""
    return pd.DataFrame(
        {
            "image_path": [s.path for s in queries],
            "pid": [s.pid for s in queries],
            "camid": [s.camid for s in queries],
            "ap": result.ap,
            "first_hit": pd.array(result.first_hit, dtype="Int64"),
            "inp": result.inp,
            "reranked": int(reranked),
        }
    )


@dataclass(frozen=True)
class EvalOptions:
    """How :func:`evaluate_model` ranks: the distance (None: the model's meta, else euclidean),
    whether a k-reciprocal re-ranking is added to the plain one, and the feature extraction."""

    metric: str | None = None
    rerank: bool = False
    features: FeatureOptions = FeatureOptions()


@dataclass
class Ranking:
    """One ranking of the query set against the gallery: (num_query, num_gallery) distances
    and their metrics."""

    reranked: bool
    distmat: np.ndarray
    result: RankResult

    @property
    def label(self) -> str:
        """``plain`` or ``re-ranked``: the ranking column of metrics.csv and a ranklists/ folder."""
        return "re-ranked" if self.reranked else "plain"


@dataclass
class Evaluation:
    """What :func:`evaluate_model` computed: the embeddings and the rankings (plain first, then
    re-ranked when asked); :func:`daaf.evaluation.outputs.write_evaluation` writes it."""

    dataset: ReIDDataset
    metric: str
    flip: bool
    query_features: np.ndarray
    gallery_features: np.ndarray
    rankings: list[Ranking]

    def metrics_table(self) -> pd.DataFrame:
        """metrics.csv's rows, one per ranking (Partial-REID and Partial-iLIDS: the paper's
        Table 3 columns only)."""
        rows = [
            {
                "dataset": self.dataset.name,
                "ranking": ranking.label,
                "metric": self.metric,
                "flip": self.flip,
                **ranking.result.summary(),
            }
            for ranking in self.rankings
        ]
        table = pd.DataFrame(rows)
        if self.dataset.name in PARTIAL_DATASETS:
            table = table[PARTIAL_COLUMNS]
        return table

    def curves(self) -> dict[str, np.ndarray]:
        """The CMC curve of each ranking, by label."""
        return {ranking.label: ranking.result.cmc for ranking in self.rankings}


def evaluate_model(
    model: torch.nn.Module,
    meta: ModelMeta,
    dataset: ReIDDataset,
    device: torch.device | str,
    options: EvalOptions = EvalOptions(),
) -> Evaluation:
    """Embed the dataset's query and gallery and rank them (plain, and re-ranked with
    ``options.rerank``); nothing is written."""
    device = resolve_device(device)
    metric = options.metric or meta.metric
    q_feats, g_feats = query_gallery_features(model, dataset, meta, device, options.features)
    rankings = []
    for reranked in (False, True) if options.rerank else (False,):
        distmat, result = rank(q_feats, g_feats, dataset, metric, reranked, device)
        rankings.append(Ranking(reranked, distmat, result))
    return Evaluation(dataset, metric, options.features.flip, q_feats, g_feats, rankings)
