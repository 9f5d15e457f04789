"""``daaf demo``: the whole pipeline on synthetic pedestrians, on a CPU.

1. ``daaf synth`` makes a Market-1501-layout dataset with exact masks and keypoints;
2. the COCO labeler runs when its weights are on this machine (otherwise the demo says it
   trains on the synthetic ground truth);
3. BoT and DAAF-BoT train with ``configs/demo.yaml``: same seed, same schedule;
4. both are exported and evaluated, with and without re-ranking;
5. the learned attention is measured (HAB IoU, PAB PCK, background sensitivity) and drawn;
6. ``summary.md`` / ``summary.csv`` and the curves are written, and the table is printed.

Every stage skips work whose result is already in ``--out``, so an interrupted demo resumes.
The demo writes only into a folder it made (new, empty, or holding its marker), and deletes an
incomplete ``--out/data`` only if its own marker is in it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from daaf.utils.options import DEMO_EPOCHS, DEMO_IDENTITIES, device_option, out_dir_option

if TYPE_CHECKING:
    from daaf.evaluation.compare import Comparison

STAGES = 6
PICTURE_COMPONENTS = 16  # Grad-CAM maps average 16 random components, not 256 (time ~ components)
PICTURE_IMAGES = 4  # query images per picture, not 8 (time ~ images)
RANK_LISTS = 8  # pictures of the best and worst queries per model and ranking
LATENCY_ROUNDS = {1: 50, 32: 10}  # batch size -> rounds of the two exports timed in turns
MODELS = {"BoT": ["model.hab=false", "model.pab=false"], "DAAF-BoT": []}
DEMO_KIND, DATA_KIND = "demo", "demo data"  # the kinds of daaf's marker in --out and --out/data
# What stages 4 and 5 measured, saved beside their output with the checkpoints' SHA-256: a
# resumed demo reuses them only for the same checkpoints.
STAGE_RESULTS = "demo_results.json"


def _stage(number: int, text: str, start: float) -> None:
    elapsed = int(time.monotonic() - start)
    click.secho(
        f"[{number}/{STAGES}] {text}  ({elapsed // 60}:{elapsed % 60:02d} elapsed)", bold=True
    )


def preset_path(name: str) -> Path:
    """A preset in the repository's ``configs/`` folder (installed with ``pip install -e``)."""
    path = Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml"
    if not path.is_file():
        from daaf.errors import DaafError

        raise DaafError(
            f"preset {path} not found: run daaf from a source checkout (pip install -e .)"
        )
    return path


def coco_weights_available() -> bool:
    """Both COCO labeler checkpoints are in the torch cache (the demo never downloads)."""
    from torchvision.models.detection import (
        KeypointRCNN_ResNet50_FPN_Weights,
        MaskRCNN_ResNet50_FPN_V2_Weights,
    )

    from daaf.labeling.torchvision_backend import torch_cache_dir, weight_file_name

    enums = (MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1, KeypointRCNN_ResNet50_FPN_Weights.COCO_V1)
    return all((torch_cache_dir() / weight_file_name(e)).is_file() for e in enums)


def claim_out(out: Path) -> None:
    """Make ``out`` the demo's (marked), or DaafError if it holds files of something else."""
    from daaf.errors import DaafError
    from daaf.utils.files import MARKER_NAME, claim_dir, made_by_daaf

    claim_dir(out, DEMO_KIND)
    if not made_by_daaf(out, DEMO_KIND):
        raise DaafError(
            f"--out {out} holds files that daaf demo did not write (no {MARKER_NAME} marker of a "
            "demo); the demo writes only into a new or empty folder, or one of its own"
        )


def make_data(out: Path, identities: int) -> tuple[Path, Path]:
    """The synthetic dataset in ``out/data``; an incomplete one is deleted (if the demo's
    marker is in it) and made again."""
    from daaf.data.synthetic.generate import SynthSpec, generate_dataset
    from daaf.utils.files import check_made_by_daaf, made_by_daaf, mark_dir, remove_dir

    data = out / "data"
    if made_by_daaf(data, DATA_KIND) and (data / "annotations" / "manifest.csv").is_file():
        click.echo(f"  reusing {data}")
    else:
        if data.exists():  # an interrupted generation: the generator refuses a non-empty folder
            check_made_by_daaf(data, DATA_KIND)
            click.echo(f"  removing the incomplete {data}")
            remove_dir(data, DATA_KIND)
        mark_dir(data, DATA_KIND)
        generate_dataset(data, SynthSpec(identities=identities))
    return data, data / "annotations"


def label_data(data: Path, device, annotations: Path) -> tuple[Path, str]:
    """The store to train on and a sentence saying where its labels come from."""
    if not coco_weights_available():
        return annotations, (
            "COCO labeler weights are not on this machine: trained on the synthetic ground-truth "
            "masks and keypoints (run `daaf label` where the weights are, see README)."
        )
    from daaf.data.datasets import build_dataset
    from daaf.labeling.backends import build_labeler
    from daaf.labeling.driver import run_labeler

    store = data / "labels_coco"
    dataset = build_dataset("synthetic", data)
    run_labeler(build_labeler("torchvision"), dataset, store, device=device)
    return store, "labelled by daaf label (torchvision Mask R-CNN v2 + Keypoint R-CNN, COCO)."


def train_models(
    out: Path, data: Path, store: Path, device: str, epochs: int | None
) -> dict[str, Path]:
    from daaf.config import load_config
    from daaf.training.checkpoint import trained_epochs
    from daaf.training.trainer import LAST_CHECKPOINT, train

    checkpoints = {}
    for name, switches in MODELS.items():
        overrides = [
            f"data.root={data}",
            f"data.annotations={store}",
            f"train.device={device}",
            *switches,
        ]
        if epochs:
            overrides.append(f"train.epochs={epochs}")
        cfg = load_config(preset_path("demo"), overrides)
        run = out / "runs" / name
        last = run / "checkpoints" / LAST_CHECKPOINT
        done = last.is_file() and trained_epochs(last) >= cfg.train.epochs
        click.echo(f"  {name}: " + ("already trained" if done else f"{cfg.train.epochs} epochs"))
        checkpoints[name] = last if done else train(cfg, run, resume=last.is_file())
    return checkpoints


def checkpoint_hashes(checkpoints: dict[str, Path]) -> dict[str, str]:
    from daaf.inference.store import file_sha256

    return {name: file_sha256(path) for name, path in checkpoints.items()}


def saved_results(path: Path, hashes: dict[str, str]) -> dict[str, dict] | None:
    """The per-model results a finished stage saved in ``path``, if it measured the checkpoints
    of ``hashes``; None when the file is missing, unreadable, or from other checkpoints."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict) or saved.get("checkpoints") != hashes:
        return None
    results = saved.get("results")
    if not isinstance(results, dict) or set(results) != set(hashes):
        return None
    if not all(isinstance(r, dict) for r in results.values()):
        return None
    return results


def save_results(path: Path, hashes: dict[str, str], results: dict[str, dict]) -> None:
    """Write a stage's results last, atomically: its presence means the stage finished."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"checkpoints": hashes, "results": results}, indent=1))
    partial.replace(path)


def export_and_evaluate(
    out: Path, data: Path, checkpoints: dict[str, Path], device
) -> dict[str, dict]:
    from daaf.data.datasets import build_dataset

    dataset = build_dataset("synthetic", data)
    results = {}
    for name, checkpoint in checkpoints.items():
        record, hashes = out / "eval" / name / STAGE_RESULTS, checkpoint_hashes({name: checkpoint})
        saved = saved_results(record, hashes)
        if saved is not None:
            click.echo(f"  {name}: reusing its export and evaluation")
        else:
            saved = {name: _export_and_evaluate(out, name, checkpoint, dataset, device)}
            save_results(record, hashes, saved)
        results[name] = saved[name]
    record, hashes = out / "models" / STAGE_RESULTS, checkpoint_hashes(checkpoints)
    timed = saved_results(record, hashes)
    if timed is None:
        timed = time_exports(out, list(checkpoints), device)
        save_results(record, hashes, timed)
    for name in results:
        results[name].update(timed[name])
    return results


def time_exports(out: Path, names: list[str], device) -> dict[str, dict]:
    """ms per image at batch 1 and per batch of 32 of each export in ``out/models``, the exports
    timed in turns in one loop (daaf.evaluation.speed.interleaved_latency), so that a change of
    load on the machine cannot split two networks of the same size."""
    from daaf.evaluation.speed import interleaved_latency
    from daaf.models import load_inference_model

    loaded = {name: load_inference_model(out / "models" / name, device) for name in names}
    models = {name: model for name, (model, _) in loaded.items()}
    meta = loaded[names[0]][1]
    timed: dict[str, dict] = {name: {} for name in names}
    for batch, rounds in LATENCY_ROUNDS.items():
        shape = (batch, 3, meta.height, meta.width)
        for name, seconds in interleaved_latency(models, shape, device, rounds).items():
            timed[name][f"latency_ms_batch{batch}"] = 1000 * seconds
    return timed


def latency_note(results: dict) -> str:
    """summary.md's line on DAAF-BoT / BoT latency, from the exports' timings in turns."""
    bot, daaf = results["BoT"], results["DAAF-BoT"]
    if "latency_ms_batch1" not in bot or "latency_ms_batch1" not in daaf:
        return ""
    ratios = ", ".join(
        f"{daaf[f'latency_ms_batch{b}'] / bot[f'latency_ms_batch{b}']:.2f} at batch {b}"
        for b in LATENCY_ROUNDS
    )
    return (
        f"Latency, DAAF-BoT / BoT: {ratios} (the two exports timed in turns, "
        f"{' and '.join(str(r) for r in LATENCY_ROUNDS.values())} rounds, medians, so that a "
        "change of load on the machine reaches both alike)."
    )


def _export_and_evaluate(out: Path, name: str, checkpoint: Path, dataset, device) -> dict:
    """Export one model, evaluate it with and without re-ranking: its summary row (both
    exports are timed together afterwards, :func:`time_exports`)."""
    from daaf.evaluation.evaluate import EvalOptions, evaluate_model
    from daaf.evaluation.outputs import write_evaluation
    from daaf.evaluation.speed import count_parameters
    from daaf.models import load_inference_model
    from daaf.training.export import export_model

    export_dir = out / "models" / name
    report = export_model(checkpoint, export_dir)
    model, meta = load_inference_model(export_dir, device)
    evaluation = evaluate_model(model, meta, dataset, device, EvalOptions(rerank=True))
    write_evaluation(evaluation, out / "eval" / name, RANK_LISTS, model_name=name)
    table = evaluation.metrics_table()
    plain, reranked = table.iloc[0], table.iloc[1]
    return {
        "mAP": float(plain["mAP"]),
        "rank1": float(plain["rank1"]),
        "mINP": float(plain["mINP"]),
        "mAP_rerank": float(reranked["mAP"]),
        "rank1_rerank": float(reranked["rank1"]),
        "params": count_parameters(model),
        "trained_params": report["trained_params"],
    }


def attention(
    out: Path, data: Path, store: Path, checkpoints: dict[str, Path], device, results: dict
) -> None:
    """Branch accuracy of DAAF-BoT and background sensitivity of both, into ``results``, and
    the pictures."""
    from daaf.data.annotations import AnnotationStore
    from daaf.data.datasets import build_dataset
    from daaf.evaluation.attention_metrics import attention_scores
    from daaf.models import load_inference_model

    record, hashes = out / "pictures" / STAGE_RESULTS, checkpoint_hashes(checkpoints)
    scores = saved_results(record, hashes)
    if scores is not None:
        click.echo("  reusing the attention measurements and pictures")
    else:
        dataset = build_dataset("synthetic", data)
        truth = AnnotationStore(data / "annotations")
        scores = {}
        for name, checkpoint in checkpoints.items():
            model, meta = load_inference_model(checkpoint, device)
            scores[name] = attention_scores(model, dataset, truth, meta, device)
        _pictures(out, data, store, checkpoints, device)
        save_results(record, hashes, scores)
    for name, values in scores.items():
        results[name].update(values)


def _pictures(out: Path, data: Path, store: Path, checkpoints: dict[str, Path], device) -> None:
    """The paper's pictures: Grad-CAM beside the base model, branch outputs, 1x1 shuffle."""
    from daaf.evaluation.visualize.render import PictureOptions, render_all

    options = PictureOptions(n=PICTURE_IMAGES, components=PICTURE_COMPONENTS)
    render_all(
        checkpoints["DAAF-BoT"],
        checkpoints["BoT"],
        "synthetic",
        data,
        store,
        out / "pictures",
        device,
        options,
    )


def loss_curves(out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in MODELS:
        log = pd.read_json(out / "runs" / name / "metrics.jsonl", lines=True)
        ax.plot(log["step"], log["total"], label=f"{name} total")
        for term in ("hab", "pab"):
            if term in log:
                ax.plot(log["step"], log[term], "--", label=f"{name} {term}")
    ax.set(xlabel="iteration", ylabel="loss", title="training losses", yscale="log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "loss_curves.png", dpi=120)
    plt.close(fig)


def cmc_curves(out: Path) -> None:
    from daaf.evaluation.plots import save_cmc_curves

    curves = {
        f"{name} {kind}": cmc
        for name in MODELS
        for kind, cmc in json.loads((out / "eval" / name / "cmc.json").read_text()).items()
    }
    save_cmc_curves(curves, out / "cmc_curves.png", title="CMC on synthetic query/gallery")


def markdown_table(rows: dict[str, dict], columns: dict[str, str]) -> str:
    """A Markdown table: one row per model, ``columns`` maps result keys to headers."""
    keys = [k for k in columns if any(k in r for r in rows.values())]
    lines = [
        "| model | " + " | ".join(columns[k] for k in keys) + " |",
        "|---" * (len(keys) + 1) + "|",
    ]
    for name, row in rows.items():
        cells = [
            f"{row[k]:.4g}" if isinstance(row.get(k), float) else str(row.get(k, "")) for k in keys
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def difference_note(result: Comparison) -> str:
    """summary.md's paragraph on DAAF-BoT - BoT: the paired mAP difference, its 95% CI, and
    what the interval does not cover (training noise: one run per model)."""
    from daaf.evaluation.compare import difference_sentence

    return " ".join(
        [
            difference_sentence(result, "BoT", "DAAF-BoT"),
            "The interval covers which test identities were drawn, not training noise: each model",
            "was trained once, and the same demo run on two machines gave mAPs up to 4.3 points apart.",
            "To claim an effect, train several seeds (scripts/run_table.py --seeds N) and run",
            "`daaf compare --baseline EVAL ... --candidate EVAL ...` on their evaluation folders.",
        ]
    )


def compare_models(out: Path) -> Comparison:
    """The paired comparison of DAAF-BoT's evaluation with BoT's; its report.html and
    bootstrap.png are written into ``out/compare``."""
    from daaf.evaluation.compare import compare_runs
    from daaf.evaluation.report import write_comparison

    baseline, candidate = [out / "eval" / "BoT"], [out / "eval" / "DAAF-BoT"]
    result = compare_runs(baseline, candidate)
    write_comparison(out / "compare", result, baseline, candidate, 0, "DAAF-BoT - BoT")
    return result


def branch_note(results: dict, health: dict[str, float]) -> str:
    """summary.md's paragraph on whether DAAF-BoT's branches learned: PAB PCK on the queries
    beside the constant map's, and each branch's last training measurement, judged as
    ``daaf train``'s warning judges it."""
    from daaf.evaluation.attention_metrics import LOCALISES_MARGIN
    from daaf.training.branch_health import DOCS

    row, lines = results.get("DAAF-BoT", {}), []
    if "pab_pck" in row and "constant_map_pck" in row:
        pck, constant = row["pab_pck"], row["constant_map_pck"]
        localises = pck >= constant + LOCALISES_MARGIN
        lines.append(
            f"- PAB PCK {pck:.3f} on the queries; a constant map (every keypoint at its median "
            f"place in the training set) scores {constant:.3f} on them: "
            + ("it localises keypoints" if localises else "no sign that it localises keypoints")
            + f" (the PAB's positive control asks for {LOCALISES_MARGIN:g} above the constant map)."
        )
    lines += [health_line(branch, health) for branch in ("hab", "pab")]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    return "\n".join(
        [
            "## Did the branches learn?",
            "",
            *lines,
            "",
            f"{DOCS} says what to try when one does not.",
        ]
    )


def health_line(branch: str, health: dict[str, float]) -> str:
    """One line on ``branch``'s last branch-health measurement and its verdict, or ""."""
    from daaf.training.branch_health import (
        ACCURACY_MARGIN,
        TOLERANCE,
        accuracy_keys,
        not_learning,
    )

    verdict = not_learning(branch, health)
    if verdict is None:
        return ""
    name = branch.upper()
    accuracy, constant = (health.get(key) for key in accuracy_keys(branch))
    loss, zero = health.get(f"health/{branch}/loss"), health.get(f"health/{branch}/zero_map_loss")
    losses = f"loss {loss:.4g}, the all-zero map's {zero:.4g}"
    if accuracy is not None and constant is not None:
        metric = "IoU" if branch == "hab" else "PCK"
        measured = f"{metric} {accuracy:.3f} against a constant map's {constant:.3f} ({losses})"
        rule = f"more than {ACCURACY_MARGIN:g} above the constant map"
    else:
        measured, rule = losses, f"{100 * TOLERANCE:.0f}% below the all-zero map"
    judged = "not learning" if verdict else "learning"
    return (
        f"- {name} on its last measured training batch (step {health['step']}): {measured}: "
        f"{judged}, by the test of `daaf train`'s warning ({rule})."
    )


SUMMARY_COLUMNS = {  # result key -> summary.md's column header
    "mAP": "mAP",
    "rank1": "Rank-1",
    "mAP_rerank": "mAP (RR)",
    "rank1_rerank": "Rank-1 (RR)",
    "mINP": "mINP",
    "params": "params",
    "latency_ms_batch1": "ms/img (b=1)",
    "latency_ms_batch32": "ms/batch (b=32)",
    "hab_mask_iou": "HAB IoU",
    "pab_pck": "PAB PCK",
    "constant_map_pck": "PCK of a constant map",
    "background_sensitivity": "bg sensitivity",
}
SUMMARY_NOTES = [
    "- mAP / Rank-1 in %, single query, Market-1501 protocol; RR = k-reciprocal re-ranking.",
    "- params and latency: the exported model (TorchScript-free eager module) on this device.",
    "- HAB IoU: HAB mask vs true mask on the query set; PAB PCK: heatmap argmax within 0.1 x image height.",
    "- bg sensitivity: embedding change when the background is replaced, / change to another person.",
]


def write_summary(out: Path, results: dict, label_note: str) -> str:
    """summary.csv and summary.md from ``results`` and the per-query results in out/eval/<model>
    (with the comparison's files, :func:`compare_models`); returns the table and the
    DAAF-BoT - BoT paragraph for the terminal."""
    import pandas as pd

    from daaf.training.branch_health import last_measurement

    table = pd.DataFrame.from_dict(results, orient="index")
    table.index.name = "model"
    table.to_csv(out / "summary.csv", float_format="%.4f")
    markdown = markdown_table(results, SUMMARY_COLUMNS)
    difference = difference_note(compare_models(out))
    latency = latency_note(results)
    branches = branch_note(results, last_measurement(out / "runs" / "DAAF-BoT" / "metrics.jsonl"))
    text = summary_markdown(label_note, markdown, latency, difference, branches)
    (out / "summary.md").write_text(text + "\n")
    return "\n\n".join(filter(None, [markdown, latency, difference, branches]))


def summary_markdown(
    label_note: str, markdown: str, latency: str, difference: str, branches: str
) -> str:
    """summary.md's text around its parts: the results table, the latency line, the
    DAAF-BoT - BoT paragraph and the branches' paragraph (the last two may be empty)."""
    return "\n".join(
        [
            "# daaf demo: BoT vs DAAF-BoT on synthetic pedestrians",
            "",
            "Measured on this machine by `daaf demo`; synthetic data, tiny ResNet-18 from scratch,",
            "so the numbers say whether the pipeline works, not what the paper reports.",
            "",
            f"Labels: {label_note}",
            "",
            markdown,
            "",
            *([latency, ""] if latency else []),
            *SUMMARY_NOTES,
            "",
            "## Is DAAF-BoT better here?",
            "",
            difference,
            "",
            *([branches, ""] if branches else []),
            "Reports to browse: [BoT](eval/BoT/report.html), [DAAF-BoT](eval/DAAF-BoT/report.html)"
            " (metrics, CMC, worst and best rank lists) and [DAAF-BoT vs BoT](compare/report.html)"
            " (paired differences, the queries that changed most).",
            "",
            "Pictures: loss_curves.png, cmc_curves.png, eval/*/ranklists/, pictures/.",
        ]
    )


@click.command("demo")
@out_dir_option(default="runs/demo")
@device_option
@click.option(
    "--identities",
    type=DEMO_IDENTITIES,
    default=100,
    show_default=True,
    help="Synthetic identities (half train, half test).",
)
@click.option("--epochs", type=DEMO_EPOCHS, default=None, help="Override the demo preset's epochs.")
def demo(out_dir: str, device: str, identities: int, epochs: int | None) -> None:
    """Run the whole pipeline on synthetic data and write summary.md."""
    from daaf.utils.device import resolve_device
    from daaf.utils.files import check_output_path
    from daaf.utils.lock import folder_lock

    start = time.monotonic()
    out = Path(out_dir)
    check_output_path(out)
    with folder_lock(out):
        claim_out(out)
        _run(out, resolve_device(device), identities, epochs, start)


def _run(out: Path, torch_device, identities: int, epochs: int | None, start: float) -> None:
    from daaf.data.synthetic.stats import summarize

    _stage(1, "synthetic pedestrians", start)
    data, truth = make_data(out, identities)
    _stage(2, "labels", start)
    store, note = label_data(data, torch_device, truth)
    click.echo(f"  {note}")
    _stage(3, "training BoT and DAAF-BoT (configs/demo.yaml)", start)
    checkpoints = train_models(out, data, store, str(torch_device), epochs)
    _stage(4, "export and evaluation (with and without re-ranking)", start)
    results = export_and_evaluate(out, data, checkpoints, torch_device)
    _stage(5, "attention: branch accuracy, background sensitivity, pictures", start)
    attention(out, data, store, checkpoints, torch_device, results)
    results["DAAF-BoT"]["constant_map_pck"] = summarize(data)["constant_map_pck"]
    _stage(6, "summary", start)
    loss_curves(out)
    cmc_curves(out)
    click.echo(write_summary(out, results, note))
    click.echo(
        f"\nwritten: {out / 'summary.md'}, {out / 'summary.csv'}, loss_curves.png, cmc_curves.png"
    )
