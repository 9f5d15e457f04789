"""The evaluation pipeline: model + dataset -> features -> distances -> metrics files and pictures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from daaf.data.config import DataConfig
from daaf.data.datasets import ReIDDataset
from daaf.evaluation.distance import compute_distance
from daaf.evaluation.features import extract_features
from daaf.evaluation.metrics import RankResult, evaluate_rank
from daaf.evaluation.rerank import re_ranking_features
from daaf.models.meta import ModelMeta
from daaf.utils.device import resolve_device

# Partial-REID and Partial-iLIDS are reported as in the paper's Table 3.
PARTIAL_DATASETS = ("partial_reid", "partial_ilids")


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
    batch_size: int = 128,
    workers: int = 2,
    flip: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    feats = [
        extract_features(
            model,
            dataset.split(split),
            dataset.image_dir,
            meta,
            device,
            batch_size=batch_size,
            workers=workers,
            flip=flip,
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
    q, g = query_gallery_features(
        model, dataset, data_meta(cfg), device, cfg.test_batch_size, cfg.workers
    )
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


def evaluate_model(
    model: torch.nn.Module,
    meta: ModelMeta,
    dataset: ReIDDataset,
    out_dir: Path,
    device: torch.device | str,
    metric: str | None = None,
    rerank: bool = False,
    flip: bool = False,
    batch_size: int = 128,
    workers: int = 2,
    num_ranklists: int = 8,
    model_name: str = "model",
) -> pd.DataFrame:
    """Evaluate and write metrics.json, metrics.csv, per_query.csv (see :func:`per_query_table`),
    cmc.png, ranklists/, features.npz, top_matches.csv (each query's 10 nearest, junk marked),
    evaluation.json and report.html (:mod:`daaf.evaluation.report`); ``model_name`` titles the
    pictures."""
    from daaf.evaluation.plots import save_cmc_curves, save_rank_lists
    from daaf.evaluation.report import top_matches, write_evaluation_record, write_evaluation_report

    device = resolve_device(device)  # a bad name stops before the folder is made
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metric = metric or meta.metric
    q_feats, g_feats = query_gallery_features(
        model, dataset, meta, device, batch_size, workers, flip
    )
    np.savez(out_dir / "features.npz", query=q_feats, gallery=g_feats)
    rows, curves, per_query, matches = [], {}, [], []
    for use_rerank in (False, True) if rerank else (False,):
        distmat, result = rank(q_feats, g_feats, dataset, metric, use_rerank, device)
        label = "re-ranked" if use_rerank else "plain"
        rows.append(
            {
                "dataset": dataset.name,
                "ranking": label,
                "metric": metric,
                "flip": flip,
                **result.summary(),
            }
        )
        curves[label] = result.cmc
        per_query.append(per_query_table(result, dataset.query, use_rerank))
        matches.append(top_matches(distmat, result, dataset).assign(reranked=int(use_rerank)))
        save_rank_lists(
            distmat,
            result,
            dataset,
            out_dir / "ranklists" / label,
            num_ranklists,
            label=f"{model_name}, {label} ranking",
        )
    table = pd.DataFrame(rows)
    if dataset.name in PARTIAL_DATASETS:
        table = table[
            ["dataset", "ranking", "metric", "flip", "rank1", "rank3", "mAP", "num_valid_queries"]
        ]
    table.to_csv(out_dir / "metrics.csv", index=False)
    pd.concat(per_query).to_csv(out_dir / "per_query.csv", index=False)
    (out_dir / "metrics.json").write_text(json.dumps(table.to_dict(orient="records"), indent=2))
    save_cmc_curves(
        curves,
        out_dir / "cmc.png",
        title=f"CMC of {model_name} on {dataset.name} (query vs gallery)",
    )
    (out_dir / "cmc.json").write_text(json.dumps({k: v.tolist() for k, v in curves.items()}))
    pd.concat(matches).to_csv(out_dir / "top_matches.csv", index=False)
    write_evaluation_record(out_dir, dataset, model_name)
    write_evaluation_report(out_dir, table, per_query[0], matches[0], dataset, model_name)
    return table
