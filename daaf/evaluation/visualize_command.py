"""Command ``daaf visualize``: the paper's pictures (Fig. 5-9) for a trained model."""

from __future__ import annotations

from pathlib import Path

import click

from daaf.utils.options import (
    COMPONENTS,
    JITTER,
    PICTURE_IMAGES,
    dataset_option,
    device_option,
    model_option,
    out_dir_option,
    root_option,
    seed_option,
)

PICTURES_KIND = "`daaf visualize` output"  # the kind of daaf's marker in its --out
GRADCAM_ONLY_NOTE = (
    "branch pictures need a training checkpoint (an export holds the base network only)"
)


def _group_names(model) -> list[str] | None:
    """Short names of the PAB's groups (e.g. 'ear+eye+nose', 'shoulder'), None without a PAB."""
    from daaf.data.keypoints import KEYPOINT_NAMES

    pab = getattr(model, "pab", None)
    if pab is None or len(pab.heads) == 1:
        return None
    if pab.target != "keypoints":
        return [f"stripe {i + 1}" for i in range(len(pab.heads))]
    side = lambda k: KEYPOINT_NAMES[k].removeprefix("left_").removeprefix("right_")  # noqa: E731
    return ["+".join(sorted({side(k) for k in group})) for group in pab.groups]


def render_all(
    model_path: Path,
    base_model_path: Path | None,
    dataset: str,
    root: Path,
    annotations: Path | None,
    out_dir: Path,
    device="auto",
    split: str = "query",
    n: int = 8,
    components: int | None = None,
    seed: int = 0,
    jitter: int | None = None,
) -> dict:
    """Write holistic_attention.png, partial_attention.png, branch_outputs.png and shuffle.png
    (those the model allows) and visualize.json for ``n`` images spread over ``split``.

    ``model_path``: a training checkpoint (all pictures) or an export (Grad-CAM only);
    ``base_model_path``: the model without attention branches drawn beside it in Fig. 5 and 6;
    ``components``: embedding components per Grad-CAM map (None: gradcam.DEFAULT_COMPONENTS,
    0: all); ``jitter``: input shifts per axis averaged per Grad-CAM map (None:
    gradcam.DEFAULT_JITTER, 1: none). Returns what visualize.json holds.
    """
    import json

    import numpy as np
    import torch

    from daaf.data.annotations import AnnotationStore
    from daaf.data.datasets import build_dataset
    from daaf.data.images import read_rgb
    from daaf.data.transforms import eval_transform
    from daaf.errors import DaafError
    from daaf.evaluation import visualize as vis
    from daaf.evaluation.evaluate import model_label
    from daaf.models import load_inference_model
    from daaf.utils.device import resolve_device

    device = resolve_device(device)
    components = vis.DEFAULT_COMPONENTS if components is None else components
    jitter = vis.DEFAULT_JITTER if jitter is None else jitter
    out_dir = Path(out_dir)
    model, meta = load_inference_model(Path(model_path), device)
    base = None
    if base_model_path is not None:
        base, base_meta = load_inference_model(Path(base_model_path), device)
        if not base_meta.same_input(meta):
            raise DaafError(
                f"--base-model {base_model_path}: input size/normalisation differ from --model's"
            )
    data = build_dataset(dataset, root)
    pool = data.split(split)
    if not pool:
        raise DaafError(f"{dataset} at {root}: the {split} split is empty")
    picks = np.unique(np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int))
    samples = [pool[i] for i in picks]
    height, width = meta.height, meta.width
    images = torch.stack(
        [
            eval_transform(
                read_rgb(data.image_dir / s.path),
                height,
                width,
                meta.pixel_mean,
                meta.pixel_std,
            )
            for s in samples
        ]
    ).to(device)
    rgb = vis.denormalize(images, meta.pixel_mean, meta.pixel_std)
    labeler_mask = labeler_kps = None
    if annotations is not None:
        store = AnnotationStore(annotations)
        missing = store.missing([s.path for s in samples])
        if missing:
            raise DaafError(f"{annotations}: no annotation for {missing[0]} ({dataset} {split})")
        labels = [vis.labels_in_input_frame(store.get(s.path), height, width) for s in samples]
        labeler_mask = np.stack([mask for mask, _ in labels])
        labeler_kps = np.stack([kps for _, kps in labels])
        store.close()
    report: dict = {
        "model": str(model_path),
        "base_model": None if base is None else str(base_model_path),
        "dataset": dataset,
        "split": split,
        "images": [s.path for s in samples],
        "gradcam_jitter": jitter,
        "files": [],
        "notes": [],
        "decoupling": None,
    }

    def written(name: str) -> Path:
        report["files"].append(name)
        return out_dir / name

    model_name = model_label(Path(model_path))
    base_name = model_label(Path(base_model_path)) if base is not None else "base"
    models = (base_name + (" (base)" if base_name == model_name else ""), model_name)
    shown = f"{' vs '.join(models) if base is not None else model_name}, {dataset} {split}"
    smoothing = vis.describe_jitter(jitter)
    # Fig. 5: holistic attention, base beside DAAF.
    dim = meta.embedding_dim or 0
    note = vis.describe_components(dim, components, seed) if dim else f"components={components}"
    maps = vis.holistic_attention(model, images, components, seed, jitter=jitter)
    base_maps = (
        None
        if base is None
        else vis.holistic_attention(base, images, components, seed, jitter=jitter)
    )
    vis.save_attention_figure(
        rgb,
        base_maps,
        maps,
        written("holistic_attention.png"),
        title=f"holistic attention of {shown}: Grad-CAM of the embedding on layer1 (eq. 7), "
        f"{note}; {smoothing}",
        names=models,
    )
    # Fig. 6: one map per channel group, as the PAB splits the last feature map.
    names = _group_names(model)
    groups = len(names) if names else 6
    maps = vis.partial_attention(model, images, groups, components, seed, jitter=jitter)
    base_maps = (
        None
        if base is None
        else vis.partial_attention(base, images, groups, components, seed, jitter=jitter)
    )
    detail = f"at most {components} components each, seed {seed}" if components else "exact"
    vis.save_partial_attention_figure(
        rgb,
        maps,
        written("partial_attention.png"),
        base_maps,
        names,
        title=f"partial attention of {shown}: {groups} channel groups (eq. 8, {detail}); "
        f"{smoothing}",
        model_names=models,
    )
    # Fig. 7-9: the branches, which only a training checkpoint keeps.
    if not hasattr(model, "branch_outputs"):
        report["notes"].append(GRADCAM_ONLY_NOTE)
    elif model.hab is None and model.pab is None:
        report["notes"].append("the model was trained without HAB and PAB: no branch pictures")
    else:
        hab_mask, heatmaps = vis.branch_outputs(model, images)
        vis.save_branch_figure(
            rgb,
            labeler_mask,
            labeler_kps,
            hab_mask,
            heatmaps,
            written("branch_outputs.png"),
            title=f"{model_name} on {dataset} {split}: HAB and PAB outputs at inference beside "
            "the labels",
        )
        if vis.supports_shuffle(model):
            grid = vis.shuffle_grid(model, images)
            score = vis.decoupling_score(grid, model.pab.groups, labeler_kps)
            report["decoupling"] = score
            vis.save_shuffle_figure(
                grid[0],
                written("shuffle.png"),
                rgb[0],
                names,
                title=f"{model_name} on {dataset} {split} ({samples[0].path}): 1x1 conv shuffle, "
                "rows = feature groups, columns = 1x1 convs",
            )
        else:
            report["notes"].append(
                "no 1x1 conv shuffle: the PAB is not grouped with a shared decoder"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "visualize.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


@click.command("visualize")
@model_option("Training checkpoint (all pictures) or export (Grad-CAM only).")
@click.option(
    "--base-model",
    "base_model_path",
    type=click.Path(exists=True),
    help="Model without attention branches, drawn beside --model (paper Fig. 5, 6).",
)
@dataset_option()
@root_option("Dataset root.")
@click.option(
    "--annotations",
    type=click.Path(exists=True, file_okay=False),
    help="Annotation store: the labeler's masks and keypoints beside the branch outputs.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "query", "gallery"]),
    default="query",
    show_default=True,
)
@click.option(
    "--n",
    "n",
    default=8,
    show_default=True,
    type=PICTURE_IMAGES,
    help="Images, spread over the split.",
)
@click.option(
    "--components",
    default=256,
    type=COMPONENTS,
    show_default=True,
    help="Embedding components averaged per Grad-CAM map (random subset, --seed); 0 = all, exact.",
)
@seed_option()
@click.option(
    "--jitter",
    default=2,
    type=JITTER,
    show_default=True,
    help="Grad-CAM maps averaged over JITTER x JITTER input shifts of whole layer1 cells, "
    "against the stride-2 dot grid; 1 = the plain single pass.",
)
@device_option
@out_dir_option(default="pictures")
def visualize(
    model_path,
    base_model_path,
    dataset,
    root,
    annotations,
    split,
    n,
    components,
    seed,
    jitter,
    device,
    out_dir,
) -> None:
    """Grad-CAM attention maps, HAB/PAB outputs and the 1x1 conv shuffle (paper Fig. 5-9)."""
    from daaf.utils.files import check_output_dir, marked_output

    check_output_dir(out_dir, PICTURES_KIND)
    with marked_output(out_dir, PICTURES_KIND):
        report = render_all(
            Path(model_path),
            base_model_path and Path(base_model_path),
            dataset,
            Path(root),
            annotations and Path(annotations),
            Path(out_dir),
            device,
            split,
            n,
            components,
            seed,
            jitter,
        )
    for note in report["notes"]:
        click.echo(f"note: {note}")
    score = report["decoupling"]
    if score is not None:
        near = score["nearest_diagonal"]
        click.echo(
            f"1x1 conv shuffle: {100 * near['feature_group']:.0f}% of shuffled heatmaps peak nearer "
            f"their feature group's own peak, {100 * near['conv_layer']:.0f}% nearer the conv's"
        )
    click.echo(f"written to {out_dir}/ ({', '.join(report['files'] + ['visualize.json'])})")
