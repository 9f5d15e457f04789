"""Command ``daaf evaluate``."""

from __future__ import annotations

from pathlib import Path

import click

from daaf.utils.options import (
    BOOTSTRAP,
    RANK_LISTS,
    batch_size_option,
    dataset_option,
    device_option,
    model_option,
    out_dir_option,
    root_option,
    seed_option,
    workers_option,
)


@click.command("evaluate")
@model_option("Export folder, its model_state.pt, or a training checkpoint.")
@click.option(
    "--trust-torchscript",
    is_flag=True,
    help="Also load a TorchScript model.ts: it runs code of its own, so only for a file you trust.",
)
@dataset_option()
@root_option("Dataset root.")
@click.option(
    "--rerank", is_flag=True, help="Also report k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3)."
)
@click.option("--flip", is_flag=True, help="Average each embedding with its mirror image's.")
@click.option(
    "--metric",
    type=click.Choice(["euclidean", "cosine"]),
    default=None,
    help="Distance (default: the model's, cosine for BoT, euclidean for TriNet).",
)
@batch_size_option(128)
@workers_option()
@device_option
@click.option(
    "--num-ranklists",
    type=RANK_LISTS,
    default=8,
    show_default=True,
    help="Rank-list pictures (best and worst queries).",
)
@out_dir_option(default="eval")
def evaluate(
    model_path,
    trust_torchscript,
    dataset,
    root,
    rerank,
    flip,
    metric,
    batch_size,
    workers,
    device,
    num_ranklists,
    out_dir,
) -> None:
    """mAP, CMC and mINP of a model on a dataset's query/gallery; metrics files and pictures.

    per_query.csv has one row per query and ranking: image_path, pid, camid, ap (0-1),
    first_hit (1-based rank of the first true match), inp, reranked (0/1). A query without a
    positive in the gallery keeps empty ap, first_hit and inp and is left out of the means, so
    the mean ap of the reranked=0 rows is metrics.json's mAP (in percent there).
    """
    from daaf.data.datasets import build_dataset
    from daaf.data.images import check_dataset_images
    from daaf.evaluation.evaluate import EvalOptions, evaluate_model, model_label
    from daaf.evaluation.features import FeatureOptions
    from daaf.evaluation.outputs import write_evaluation
    from daaf.models import load_inference_model
    from daaf.utils.device import resolve_device
    from daaf.utils.files import check_output_dir, marked_output

    check_output_dir(out_dir, EVALUATION_KIND)
    torch_device = resolve_device(device)
    model, meta = load_inference_model(  # refuses unsafe files first
        Path(model_path), torch_device, trust_torchscript=trust_torchscript
    )
    data = build_dataset(dataset, root)
    check_dataset_images(data, ("query", "gallery"))  # before the output folder is created
    features = FeatureOptions(batch_size=batch_size, workers=workers, flip=flip)
    options = EvalOptions(metric=metric, rerank=rerank, features=features)
    with marked_output(out_dir, EVALUATION_KIND):
        evaluation = evaluate_model(model, meta, data, torch_device, options)
        write_evaluation(evaluation, Path(out_dir), num_ranklists, model_label(Path(model_path)))
    table = evaluation.metrics_table()
    click.echo(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    click.echo(
        f"written to {out_dir}/ (report.html, metrics.json, metrics.csv, per_query.csv, "
        "top_matches.csv, cmc.png, ranklists/)"
    )


class _SeveralFolders(click.Command):
    """Lets ``--baseline`` and ``--candidate`` take several folders after one flag
    (``--baseline A B``), as ``--baseline A --baseline B``."""

    several = ("--baseline", "--candidate")

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        spelled, flag = [], None
        for arg in args:
            if arg.startswith("-"):
                flag = arg if arg in self.several else None
            elif flag is not None and spelled[-1] != flag:
                spelled.append(flag)
            spelled.append(arg)
        return super().parse_args(ctx, spelled)


FOLDERS = click.Path(exists=True, file_okay=False)
EVALUATION_KIND, COMPARISON_KIND = "`daaf evaluate` output", "`daaf compare` output"


def _query_conditions(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> list:
    """``--queries`` parsed: a malformed one is a usage error (exit 2), before any file is read."""
    from daaf.errors import DaafError
    from daaf.evaluation.compare import QueryCondition

    try:
        return [QueryCondition.parse(value) for value in values]
    except DaafError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("compare", cls=_SeveralFolders)
@click.option(
    "--baseline",
    "baseline_dirs",
    multiple=True,
    required=True,
    type=FOLDERS,
    metavar="DIR [DIR ...]",
    help="Evaluation folder(s) of the baseline; several = seeds.",
)
@click.option(
    "--candidate",
    "candidate_dirs",
    multiple=True,
    required=True,
    type=FOLDERS,
    metavar="DIR [DIR ...]",
    help="Evaluation folder(s) of the candidate; several = seeds.",
)
@click.option(
    "--bootstrap", type=BOOTSTRAP, default=10000, show_default=True, help="Bootstrap resamples."
)
@seed_option("Seed of the resampling.")
@click.option(
    "--queries",
    "conditions",
    multiple=True,
    metavar="CSV:COLUMN[=VALUE]",
    callback=_query_conditions,
    help="Compare only the queries whose image_path has COLUMN = VALUE (1 if not "
    "given) in CSV, e.g. DATA/conditions.csv:occluded=1; repeated: all must hold.",
)
@click.option("--json", "as_json", is_flag=True, help="End with one line of JSON (percent).")
@out_dir_option("Also write report.html and bootstrap.png into this folder.")
def compare(baseline_dirs, candidate_dirs, bootstrap, seed, conditions, as_json, out_dir) -> None:
    """Paired candidate - baseline of mAP, Rank-1 and mINP from `daaf evaluate` folders, with a
    95% CI from an identity-level bootstrap (resample query identities, 2.5-97.5 percentiles).

    With --queries, only the queries that meet every condition are compared and resampled, and
    the table, JSON and report say which: "queries: CSV COLUMN=VALUE: KEPT of ALL"."""
    import json

    from daaf.evaluation import compare as comparing
    from daaf.utils.files import check_output_dir, marked_output

    if out_dir:
        check_output_dir(out_dir, COMPARISON_KIND)
    queries, label = comparing.select_queries(conditions) if conditions else (None, "")
    result = comparing.compare_runs(
        list(baseline_dirs),
        list(candidate_dirs),
        bootstrap,
        seed,
        queries=queries,
        queries_label=label,
    )
    click.echo(comparing.format_table(result, baseline_dirs, candidate_dirs, seed))
    if out_dir:
        from daaf.evaluation.report import write_comparison

        title = comparing.comparison_title(result, baseline_dirs, candidate_dirs)
        with marked_output(out_dir, COMPARISON_KIND):
            report = write_comparison(
                Path(out_dir), result, baseline_dirs, candidate_dirs, seed, title
            )
        click.echo(f"written: {report}, {Path(out_dir) / 'bootstrap.png'}")
    if as_json:
        click.echo(json.dumps(result.to_json()))
