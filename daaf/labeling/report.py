"""``label_report.json`` and the table ``daaf label`` prints: what the store holds, how fast."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from daaf.data.annotations import AnnotationStore
from daaf.data.annotations.schema import STATUS_LABELER_ERROR, STATUS_OK, STATUS_UNREADABLE
from daaf.data.annotations.schema import STATUS_NAMES as SCHEMA_STATUS_NAMES
from daaf.labeling.driver import LabelRun
from daaf.labeling.rerun import REPORT_NAME
from daaf.utils.files import atomic_write

# the schema's status names as JSON keys: ok, no_person, unreadable, labeler_error
STATUS_NAMES = {code: name.replace(" ", "_") for code, name in SCHEMA_STATUS_NAMES.items()}
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
PRINTED_IMAGES = 20  # unreadable and failed images named in the printed table (all in the JSON)


def _distribution(values: pd.Series) -> dict[str, float]:
    values = values.dropna().to_numpy(np.float64)
    if values.size == 0:
        return {"count": 0}
    summary = {"count": int(values.size), "mean": float(values.mean()), "min": float(values.min())}
    summary.update({f"p{round(q * 100)}": float(np.quantile(values, q)) for q in QUANTILES})
    summary["max"] = float(values.max())
    return summary


def build_report(manifest: pd.DataFrame, run: LabelRun, labeler: dict[str, Any]) -> dict[str, Any]:
    """Images per split and status, the unreadable files by path, the images the labeler raised
    on with its error (None if an earlier run labeled them), person-score and mask-area
    distributions (status 0), speed."""
    splits = {}
    for split, rows in manifest.groupby("split", sort=False):
        counts = rows["status"].value_counts()
        splits[split] = {"images": len(rows)} | {
            name: int(counts.get(code, 0)) for code, name in STATUS_NAMES.items()
        }
    ok = manifest[manifest["status"] == STATUS_OK]
    return {
        "labeler": labeler,
        "splits": splits,
        "unreadable": manifest.loc[manifest["status"] == STATUS_UNREADABLE, "image_path"].tolist(),
        "labeler_errors": [
            {"image_path": path, "error": run.errors.get(path)}
            for path in manifest.loc[manifest["status"] == STATUS_LABELER_ERROR, "image_path"]
        ],
        "person_score": _distribution(ok["person_score"]),
        "mask_area": _distribution(ok["mask_area"]),
        "shards_written": run.shards_written,
        "shards_skipped": run.shards_skipped,
        "images_labeled": run.images_labeled,
        "seconds": round(run.seconds, 3),
        "images_per_second": round(run.images_labeled / run.seconds, 3)
        if run.seconds > 0
        else None,
    }


def store_report(out_dir: str | Path, run: LabelRun, labeler: dict[str, Any]) -> dict[str, Any]:
    """:func:`build_report` of the store in ``out_dir``, from its manifest."""
    with AnnotationStore(out_dir) as store:
        return build_report(store.manifest, run, labeler)


def write_report(report: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``label_report.json`` into the store atomically."""
    text = json.dumps(report, indent=2) + "\n"
    return atomic_write(Path(out_dir) / REPORT_NAME, lambda tmp: tmp.write_text(text))


def _image_list(title: str, status: int, entries: list[str]) -> list[str]:
    """Lines naming the first ``PRINTED_IMAGES`` images of a status that were not labeled."""
    if not entries:
        return []
    lines = [f"{title} ({len(entries)}, status {status}, not labeled):"]
    lines += [f"  {entry}" for entry in entries[:PRINTED_IMAGES]]
    if len(entries) > PRINTED_IMAGES:
        lines.append(f"  ... and {len(entries) - PRINTED_IMAGES} more (all in label_report.json)")
    return lines


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of :func:`build_report`'s figures."""
    header = f"{'split':<10}{'images':>9}" + "".join(
        f"{name:>15}" for name in STATUS_NAMES.values()
    )
    lines = [header, "-" * len(header)]
    for split, row in report["splits"].items():
        lines.append(
            f"{split:<10}{row['images']:>9}"
            + "".join(f"{row[n]:>15}" for n in STATUS_NAMES.values())
        )
    lines += _image_list("unreadable images", STATUS_UNREADABLE, report["unreadable"])
    lines += _image_list(
        "labeler errors",
        STATUS_LABELER_ERROR,
        [
            f"{entry['image_path']}: {entry['error'] or 'raised in an earlier run'}"
            for entry in report["labeler_errors"]
        ],
    )
    for key in ("person_score", "mask_area"):
        dist = report[key]
        if dist["count"]:
            lines.append(
                f"{key:<13} mean {dist['mean']:.3f}  p5 {dist['p5']:.3f}  "
                f"median {dist['p50']:.3f}  p95 {dist['p95']:.3f}"
            )
    rate = report["images_per_second"]
    lines.append(
        f"labeled {report['images_labeled']} images in {report['seconds']:.1f} s"
        + (f" ({rate:.2f} images/s)" if rate else "")
        + f"; shards written {report['shards_written']}, "
        + f"skipped (already complete) {report['shards_skipped']}"
    )
    return "\n".join(lines)
