"""The files of a ``daaf evaluate`` folder, written from an :class:`~daaf.evaluation.evaluate.Evaluation`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from daaf.evaluation.evaluate import Evaluation, per_query_table


def write_evaluation(
    evaluation: Evaluation, out_dir: Path, num_ranklists: int = 8, model_name: str = "model"
) -> None:
    """Write features.npz, ranklists/, metrics.csv, per_query.csv (see
    :func:`~daaf.evaluation.evaluate.per_query_table`), metrics.json, cmc.png, cmc.json,
    top_matches.csv (each query's 10 nearest, junk marked), evaluation.json and report.html
    (:mod:`daaf.evaluation.report`) into ``out_dir``; ``model_name`` titles the pictures."""
    from daaf.evaluation.report import top_matches, write_evaluation_record, write_evaluation_report

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez(
        out_dir / "features.npz",
        query=evaluation.query_features,
        gallery=evaluation.gallery_features,
    )
    _write_rank_lists(evaluation, out_dir, num_ranklists, model_name)
    dataset, table = evaluation.dataset, evaluation.metrics_table()
    per_query = [per_query_table(r.result, dataset.query, r.reranked) for r in evaluation.rankings]
    matches = [
        top_matches(r.distmat, r.result, dataset).assign(reranked=int(r.reranked))
        for r in evaluation.rankings
    ]
    table.to_csv(out_dir / "metrics.csv", index=False)
    pd.concat(per_query).to_csv(out_dir / "per_query.csv", index=False)
    (out_dir / "metrics.json").write_text(json.dumps(table.to_dict(orient="records"), indent=2))
    _write_cmc(evaluation, out_dir, model_name)
    pd.concat(matches).to_csv(out_dir / "top_matches.csv", index=False)
    write_evaluation_record(out_dir, dataset, model_name)
    write_evaluation_report(out_dir, table, per_query[0], matches[0], dataset, model_name)


def _write_rank_lists(
    evaluation: Evaluation, out_dir: Path, num_ranklists: int, model_name: str
) -> None:
    """ranklists/<ranking>/: the pictures of the best and worst queries of each ranking."""
    from daaf.evaluation.plots import save_rank_lists

    for ranking in evaluation.rankings:
        save_rank_lists(
            ranking.distmat,
            ranking.result,
            evaluation.dataset,
            out_dir / "ranklists" / ranking.label,
            num_ranklists,
            label=f"{model_name}, {ranking.label} ranking",
        )


def _write_cmc(evaluation: Evaluation, out_dir: Path, model_name: str) -> None:
    """cmc.png and cmc.json: the CMC curve of each ranking."""
    from daaf.evaluation.plots import save_cmc_curves

    curves = evaluation.curves()
    save_cmc_curves(
        curves,
        out_dir / "cmc.png",
        title=f"CMC of {model_name} on {evaluation.dataset.name} (query vs gallery)",
    )
    (out_dir / "cmc.json").write_text(json.dumps({k: v.tolist() for k, v in curves.items()}))
