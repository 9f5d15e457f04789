"""Ranking metrics, k-reciprocal re-ranking, feature extraction, protocols and pictures.

The public names below load their module on first use (see :mod:`daaf.utils.lazy`).
"""

from daaf.utils.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "attention_metrics": ["background_sensitivity", "branch_accuracy"],
        "distance": ["compute_distance"],
        "evaluate": [
            "EvalOptions",
            "Evaluation",
            "evaluate_embeddings",
            "evaluate_model",
            "query_gallery_features",
        ],
        "features": ["FeatureOptions", "extract_features"],
        "metrics": ["RankResult", "evaluate_rank"],
        "outputs": ["write_evaluation"],
        "rerank": ["RerankParams", "re_ranking", "re_ranking_features"],
        "speed": ["count_parameters", "measure_latency"],
    },
)
