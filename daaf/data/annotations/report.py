"""What a store holds, as numbers and as the table ``daaf annotations inspect`` prints."""

from __future__ import annotations

import numpy as np

from daaf.data.annotations.reader import AnnotationStore
from daaf.data.annotations.schema import STATUS_NAMES, STATUS_OK
from daaf.data.datasets.base import SPLITS

PERCENTILES = (5, 50, 95)
SCORE_COLUMNS = {
    "person score": "person_score",
    "keypoint score": "mean_keypoint_score",
    "mask area": "mask_area",
}


def _stats(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"mean": float("nan"), **{f"p{q}": float("nan") for q in PERCENTILES}}
    percentiles = np.percentile(values, PERCENTILES)
    named = {f"p{q}": float(v) for q, v in zip(PERCENTILES, percentiles, strict=True)}
    return {"mean": float(values.mean()), **named}


def random_weight_shards(store: AnnotationStore) -> list[str]:
    """The shards whose labeler ran with random weights (``daaf label --weights random``)."""
    return [
        name for name, header in store.headers.items() if header.labeler.get("weights") == "random"
    ]


def summarize_store(store: AnnotationStore) -> dict:
    """Images per split and status; score and mask-area statistics over status-0 images.

    ``mask area`` is the fraction of mask pixels >= 128; ``keypoint score`` the mean score over
    the 17 keypoints of an image. ``random_weight_shards`` lists shards whose labeler ran with
    random weights (smoke-test labels, not real annotations).
    """
    manifest = store.manifest
    splits = {}
    for split in SPLITS:
        status = manifest.loc[manifest["split"] == split, "status"]
        if len(status):
            counts = {name: int((status == code).sum()) for code, name in STATUS_NAMES.items()}
            splits[split] = {"images": int(len(status)), **counts}
    ok = manifest[manifest["status"] == STATUS_OK]
    return {
        "store": str(store.store_dir),
        "dataset": store.dataset,
        "mask_size": list(store.mask_size),
        "shards": len(store.headers),
        "splits": splits,
        "scores": {label: _stats(ok[col].to_numpy(float)) for label, col in SCORE_COLUMNS.items()},
        "random_weight_shards": random_weight_shards(store),
    }


def format_summary(summary: dict) -> str:
    """The summary as a plain-text table (plus a WARNING line for random-weight labels)."""
    height, width = summary["mask_size"]
    lines = [
        f"annotation store {summary['store']}: dataset {summary['dataset']}, "
        f"{summary['shards']} shard(s), masks {height}x{width}",
        "",
        f"{'split':<10}{'images':>8}" + "".join(f"{name:>15}" for name in STATUS_NAMES.values()),
    ]
    totals = dict.fromkeys(["images", *STATUS_NAMES.values()], 0)
    for split, counts in summary["splits"].items():
        lines.append(
            f"{split:<10}{counts['images']:>8}"
            + "".join(f"{counts[name]:>15}" for name in STATUS_NAMES.values())
        )
        totals = {key: totals[key] + counts[key] for key in totals}
    lines.append(
        f"{'total':<10}{totals['images']:>8}"
        + "".join(f"{totals[name]:>15}" for name in STATUS_NAMES.values())
    )
    lines += [
        "",
        f"{'status ok':<16}" + "".join(f"{key:>8}" for key in ("mean", "p5", "p50", "p95")),
    ]
    for label, stats in summary["scores"].items():
        lines.append(f"{label:<16}" + "".join(f"{value:>8.3f}" for value in stats.values()))
    shards = summary["random_weight_shards"]
    if shards:
        lines += [
            "",
            f"WARNING: {len(shards)} shard(s) were labeled with random weights "
            f"({', '.join(shards[:3])}{' ...' if len(shards) > 3 else ''}): "
            "these are NOT real annotations",
        ]
    return "\n".join(lines)
