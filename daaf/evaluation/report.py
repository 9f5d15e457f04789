"""report.html of ``daaf evaluate`` and ``daaf compare --out DIR``: one page a person can browse.

Self-contained: pictures are files in ``report_images/`` beside the page (thumbnails are
copied there), styles are inline, nothing is fetched from the network, so the folder opens from
disk and can be moved or archived whole. Every rank-list item says in words what the coloured
frame shows: true match, false match or junk (same identity and camera, ignored by the metric).
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from daaf.data.datasets import ReIDDataset
from daaf.data.images import read_rgb_or_none
from daaf.evaluation.metrics import RankResult

IMAGES = "report_images"
TOP = 10  # gallery items per rank list in the report and top_matches.csv
SHOWN = 20  # worst and best (or most improved and most hurt) queries shown
THUMB = (128, 64)  # (height, width) of a thumbnail
COLORS = {"true match": "#1a9850", "false match": "#d73027", "junk": "#8c8c8c", "query": "#3a3a3a"}
STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1240px; margin: 0 auto; padding: 16px 20px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 6px; }
.note { color: #555; font-size: 13px; }
table.num { border-collapse: collapse; margin: 6px 0; }
table.num th, table.num td { padding: 3px 10px; border-bottom: 1px solid #e4e4e4; text-align: right; }
table.num th:first-child, table.num td:first-child { text-align: left; }
table.num th { background: #f4f4f4; }
.bar { display: inline-block; height: 10px; background: #4575b4; vertical-align: middle; }
img.plot { max-width: 100%; border: 1px solid #eee; }
.rl { margin: 10px 0 14px; } .rl .head { font-size: 13px; margin-bottom: 3px; }
.items { display: flex; gap: 4px; align-items: flex-start; flex-wrap: nowrap; }
.item { width: 72px; text-align: center; font-size: 10.5px; line-height: 1.25; }
.item img { width: 64px; height: 128px; border: 4px solid; display: block; margin: 0 auto 2px; }
.item.query { margin-right: 12px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; margin-bottom: 16px; }
.pair .items { gap: 2px; } .pair .item { width: 50px; font-size: 9.5px; }
.pair .item img { width: 42px; height: 84px; border-width: 3px; } .pair .item.query { margin-right: 6px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.legend i { display: inline-block; width: 12px; height: 12px; border: 3px solid;
            vertical-align: middle; margin-right: 4px; }
"""


class Thumbnails:
    """Copies each image once, shrunk, into ``report_images/``; gives its relative src."""

    def __init__(self, report_dir: Path) -> None:
        self.folder = Path(report_dir) / IMAGES
        self.folder.mkdir(parents=True, exist_ok=True)
        self.names: dict[str, str] = {}

    def __call__(self, path: Path) -> str:
        key = os.path.abspath(path)
        if key not in self.names:
            name = f"img{len(self.names):05d}.jpg"
            image = read_rgb_or_none(path)
            if image is None:  # a missing file still gets a (grey) picture, so no link breaks
                image = np.full((*THUMB, 3), 200, np.uint8)
            image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
            thumb = cv2.resize(image, (THUMB[1], THUMB[0]), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(self.folder / name), thumb, [cv2.IMWRITE_JPEG_QUALITY, 90])
            self.names[key] = name
        return f"{IMAGES}/{self.names[key]}"


def _esc(value) -> str:
    return html.escape(str(value))


def page(title: str, body: list[str]) -> str:
    """A whole HTML document: inline style, no script, no external resource."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>",
            *body,
            "</body></html>",
        ]
    )


def legend() -> str:
    """What the frames' colours mean, in words."""
    words = {
        "true match": "true match (same identity, other camera)",
        "false match": "false match (other identity)",
        "junk": "junk (same identity and camera: ignored by the metric)",
    }
    spans = [
        f'<span><i style="border-color:{COLORS[k]}"></i>{_esc(v)}</span>' for k, v in words.items()
    ]
    return f'<p class="legend">{"".join(spans)}</p>'


def table_html(frame: pd.DataFrame, digits: int = 2) -> str:
    """A numeric table (floats with ``digits`` decimals)."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float) else str(v) for v in row]
        rows.append("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="num"><tr>{head}</tr>{"".join(rows)}</table>'


def ranklist_html(head: str, query: Path, items: pd.DataFrame, thumbs: Thumbnails) -> str:
    """One rank list: ``head`` (already HTML), the query, then its top items (columns
    gallery_path as an image file, distance, match), each framed and captioned."""
    cells = [
        f'<div class="item query"><img src="{thumbs(query)}" alt="query" '
        f'style="border-color:{COLORS["query"]}"><b>query</b></div>'
    ]
    for rank, row in enumerate(items.itertuples(), start=1):
        color = COLORS.get(row.match, "#cccccc")
        cells.append(
            f'<div class="item"><img src="{thumbs(Path(row.gallery_path))}" alt="rank {rank}, '
            f'{_esc(row.match)}" style="border-color:{color}">rank {rank}<br><b style="color:{color}">'
            f"{_esc(row.match)}</b><br>{row.distance:.4g}</div>"
        )
    return f'<div class="rl"><div class="head">{head}</div><div class="items">{"".join(cells)}</div></div>'


def top_matches(
    distmat: np.ndarray, result: RankResult, dataset: ReIDDataset, top: int = TOP
) -> pd.DataFrame:
    """Every query's ``top`` nearest gallery images, junk included and marked: image_path, rank,
    gallery_path (relative to the dataset's image folder), distance, match."""
    g_pids = np.array([s.pid for s in dataset.gallery])
    g_cams = np.array([s.camid for s in dataset.gallery])
    k = min(top, distmat.shape[1])
    nearest = np.argpartition(distmat, k - 1, axis=1)[:, :k]
    order = np.lexsort((nearest, np.take_along_axis(distmat, nearest, 1)), axis=1)
    nearest = np.take_along_axis(nearest, order, 1)
    rows = []
    for q, sample in enumerate(dataset.query):
        for r, g in enumerate(nearest[q]):
            same = g_pids[g] == sample.pid
            kind = (
                ("junk" if g_cams[g] == sample.camid else "true match") if same else "false match"
            )
            rows.append((sample.path, r + 1, dataset.gallery[g].path, float(distmat[q, g]), kind))
    return pd.DataFrame(rows, columns=["image_path", "rank", "gallery_path", "distance", "match"])


def _ranklist_section(
    title: str,
    chosen: list[int],
    per_query: pd.DataFrame,
    matches: pd.DataFrame,
    image_dir: Path,
    thumbs: Thumbnails,
) -> list[str]:
    out = [f"<h3>{_esc(title)}</h3>"]
    groups = dict(tuple(matches.groupby("image_path", sort=False)))
    for place, q in enumerate(chosen, start=1):
        row = per_query.iloc[q]
        items = groups[row.image_path].assign(
            gallery_path=lambda t: [image_dir / p for p in t.gallery_path]
        )
        head = (
            f"{place}. <b>{_esc(row.image_path)}</b> (id {row.pid}, cam {row.camid}): "
            f"AP {row.ap:.3f}, first true match at rank {int(row.first_hit)}"
        )
        out.append(ranklist_html(head, image_dir / row.image_path, items, thumbs))
    return out


def write_evaluation_report(
    out_dir: Path,
    table: pd.DataFrame,
    per_query: pd.DataFrame,
    matches: pd.DataFrame,
    dataset: ReIDDataset,
    model_name: str,
) -> Path:
    """report.html: metrics, CMC curve (cmc.png), AP by query camera, and the rank lists of the
    :data:`SHOWN` worst and best queries of the plain ranking (``per_query`` and ``matches``:
    its rows of per_query.csv and top_matches.csv)."""
    thumbs = Thumbnails(out_dir)
    valid = per_query[per_query["ap"].notna()]
    by_ap = valid.sort_values("ap", kind="stable")
    worst = [per_query.index.get_loc(i) for i in by_ap.index[:SHOWN]]
    best = [per_query.index.get_loc(i) for i in by_ap.index[::-1][:SHOWN]]
    cams = valid.groupby("camid")["ap"].agg(["count", "mean"]).reset_index()
    top = max(cams["mean"].max(), 1e-9)  # the best camera's bar is 200 px
    cam_rows = "".join(
        f"<tr><td>{_esc(r.camid)}</td><td>{int(r.count)}</td><td>{100 * r.mean:.2f}</td>"
        f'<td style="text-align:left"><span class="bar" style="width:{200 * r.mean / top:.0f}px"></span></td></tr>'
        for r in cams.itertuples()
    )
    skipped = len(per_query) - len(valid)
    body = [
        f"<h1>{_esc(model_name)} on {_esc(dataset.name)}</h1>",
        f'<p class="note">{len(per_query)} queries ({skipped} without a true match in the gallery, '
        f"left out of the metrics), {len(dataset.gallery)} gallery images. Written by "
        "<code>daaf evaluate</code>; the numbers are in metrics.csv and per_query.csv.</p>",
        "<h2>Metrics (percent)</h2>",
        table_html(table),
        "<h2>CMC curve</h2>",
        '<img class="plot" src="cmc.png" alt="CMC curve">',
        "<h2>AP by query camera</h2>",
        '<table class="num"><tr><th>camera</th><th>queries</th><th>mAP</th><th></th></tr>'
        f"{cam_rows}</table>",
        f"<h2>Rank lists (plain ranking, top {TOP})</h2>",
        legend(),
        *_ranklist_section(
            f"The {len(worst)} worst queries by AP",
            worst,
            per_query,
            matches,
            dataset.image_dir,
            thumbs,
        ),
        *_ranklist_section(
            f"The {len(best)} best queries by AP",
            best,
            per_query,
            matches,
            dataset.image_dir,
            thumbs,
        ),
    ]
    path = Path(out_dir) / "report.html"
    path.write_text(page(f"{model_name} on {dataset.name}", body), encoding="utf-8")
    return path


def write_evaluation_record(out_dir: Path, dataset: ReIDDataset, model_name: str) -> None:
    """evaluation.json: what a comparison report needs to show this folder's rank lists."""
    record = {
        "dataset": dataset.name,
        "image_dir": os.path.abspath(dataset.image_dir),
        "model": model_name,
    }
    (Path(out_dir) / "evaluation.json").write_text(json.dumps(record, indent=2))


@dataclass
class _Side:
    """What one side's first evaluation folder holds for rank lists (None parts: not there)."""

    eval_dir: Path
    image_dir: Path | None
    matches: pd.DataFrame | None
    per_query: pd.DataFrame

    @classmethod
    def read(cls, eval_dir: Path) -> _Side:
        per_query = pd.read_csv(eval_dir / "per_query.csv").query("reranked == 0")
        matches_file, record_file = eval_dir / "top_matches.csv", eval_dir / "evaluation.json"
        if not (matches_file.is_file() and record_file.is_file()):
            return cls(eval_dir, None, None, per_query)
        matches = pd.read_csv(matches_file)
        image_dir = Path(json.loads(record_file.read_text())["image_dir"])
        return cls(eval_dir, image_dir, matches[matches["reranked"] == 0], per_query)

    def ranklist(self, image_path: str, thumbs: Thumbnails, name: str) -> str:
        """This side's rank list of a query, or a note saying why there is none."""
        if self.matches is None:
            return (
                f'<p class="note">{_esc(name)}: no top_matches.csv in {_esc(self.eval_dir)} '
                "(evaluated by an older daaf; evaluate again to see rank lists)</p>"
            )
        items = self.matches[self.matches["image_path"] == image_path]
        items = items.assign(gallery_path=[self.image_dir / p for p in items["gallery_path"]])
        row = self.per_query[self.per_query["image_path"] == image_path].iloc[0]
        head = (
            f"<b>{_esc(name)}</b>: AP {row.ap:.3f}, first true match at rank {int(row.first_hit)}"
        )
        return ranklist_html(head, self.image_dir / image_path, items, thumbs)


def write_comparison(
    out_dir: Path,
    result,
    baseline_dirs: list[Path],
    candidate_dirs: list[Path],
    seed: int,
    title: str,
) -> Path:
    """bootstrap.png (the bootstrap's histograms, titled ``title``) and report.html of a
    comparison into ``out_dir``; returns the report's path."""
    from daaf.evaluation.compare import save_bootstrap_plot

    save_bootstrap_plot(result, Path(out_dir) / "bootstrap.png", title)
    return write_comparison_report(out_dir, result, baseline_dirs, candidate_dirs, seed)


def write_comparison_report(
    out_dir: Path,
    result,
    baseline_dirs: list[Path],
    candidate_dirs: list[Path],
    seed: int,
    bootstrap_png: str = "bootstrap.png",
) -> Path:
    """report.html of ``daaf compare --out DIR``: the paired differences and their CIs, the
    bootstrap histograms, and the :data:`SHOWN` queries the candidate improved and hurt most,
    with the first baseline and first candidate run's rank lists side by side."""
    from daaf.evaluation.compare import runs_label

    thumbs = Thumbnails(out_dir)
    delta = (result.per_query["candidate"] - result.per_query["baseline"]).sort_values(
        kind="stable"
    )
    improved = delta[delta > 0][::-1][:SHOWN]
    hurt = delta[delta < 0][:SHOWN]
    sides = _Side.read(Path(baseline_dirs[0])), _Side.read(Path(candidate_dirs[0]))
    several = max(len(baseline_dirs), len(candidate_dirs)) > 1
    body = [
        "<h1>Candidate vs baseline</h1>",
        f'<p class="note">baseline: {_esc(runs_label(baseline_dirs))} ({len(baseline_dirs)} run(s))<br>'
        f"candidate: {_esc(runs_label(candidate_dirs))} ({len(candidate_dirs)} run(s))<br>"
        f"{_esc(result.subset_line()) + '<br>' if result.subset else ''}"
        f"{result.queries} queries of {result.identities} identities; 95% CI from "
        f"{len(result.bootstrap)} identity-level bootstrap resamples (seed {seed}). "
        "Written by <code>daaf compare</code>.</p>",
        "<h2>Paired differences (percent points)</h2>",
        table_html(_difference_rows(result)),
        "<h2>Bootstrap distributions</h2>",
        f'<img class="plot" src="{_esc(bootstrap_png)}" alt="bootstrap histograms">',
        f"<h2>Queries that changed most (AP, top {TOP} of each side)</h2>",
        '<p class="note">AP differences are averaged over the runs of each side; the rank lists are '
        f"those of the first run of each side{' (several runs per side)' if several else ''}.</p>",
        legend(),
        *_changed_section("Most improved by the candidate", improved, sides, thumbs),
        *_changed_section("Most hurt by the candidate", hurt, sides, thumbs),
    ]
    path = Path(out_dir) / "report.html"
    path.write_text(page("daaf compare", body), encoding="utf-8")
    return path


def _difference_rows(result) -> pd.DataFrame:
    """The report's table of paired differences: one row per metric."""
    return pd.DataFrame(
        [
            {
                "metric": name,
                "baseline": m["baseline"],
                "candidate": m["candidate"],
                "delta": m["delta"],
                "95% CI": f"[{m['ci95'][0]:+.2f}, {m['ci95'][1]:+.2f}]",
                "P(delta <= 0)": f"{m['p_le_0']:.3f}",
            }
            for name, m in result.metrics.items()
        ]
    )


def _changed_section(
    title: str, chosen: pd.Series, sides: tuple[_Side, _Side], thumbs: Thumbnails
) -> list[str]:
    """A heading and, for each chosen query (AP difference by image_path), the baseline's and
    the candidate's rank lists side by side."""
    base, cand = sides
    out = [f"<h3>{_esc(title)} ({len(chosen)})</h3>"]
    if not len(chosen):
        out.append('<p class="note">none</p>')
    for place, (image_path, d) in enumerate(chosen.items(), start=1):
        out += [
            f'<div class="head">{place}. <b>{_esc(image_path)}</b>: AP {d:+.1f} points</div>',
            '<div class="pair">',
            base.ranklist(image_path, thumbs, "baseline"),
            cand.ranklist(image_path, thumbs, "candidate"),
            "</div>",
        ]
    return out
