"""Ranking metrics, k-reciprocal re-ranking, feature extraction, protocols and pictures.

The public names below load their module on first use (see :mod:`daaf.utils.lazy`).
"""

from daaf.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "attention_metrics": ["background_sensitivity", "branch_accuracy"],
        "distance": ["compute_distance"],
        "evaluate": ["evaluate_embeddings", "evaluate_model", "query_gallery_features"],
        "features": ["extract_features"],
        "metrics": ["RankResult", "evaluate_rank"],
        "rerank": ["re_ranking", "re_ranking_features"],
        "speed": ["count_parameters", "measure_latency"],
    },
)
