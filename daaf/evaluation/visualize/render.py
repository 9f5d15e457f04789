"""What ``daaf visualize`` draws for a trained model: the paper's Fig. 5-9 as PNG files and
visualize.json, for a few images spread over a dataset split."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from daaf.data.datasets import ReIDDataset, Sample
from daaf.errors import DaafError
from daaf.evaluation import visualize as vis
from daaf.evaluation.metrics import require_finite
from daaf.models.meta import ModelMeta

GRADCAM_ONLY_NOTE = (
    "branch pictures need a training checkpoint (an export holds the base network only)"
)


@dataclass(frozen=True)
class PictureOptions:
    """Which images are drawn (``n`` spread over ``split``) and how each Grad-CAM map is made:
    ``components`` embedding components averaged (a random subset drawn with ``seed``; 0: all;
    None: gradcam.DEFAULT_COMPONENTS), over ``jitter`` x ``jitter`` input shifts (1: none;
    None: gradcam.DEFAULT_JITTER)."""

    split: str = "query"
    n: int = 8
    components: int | None = None
    seed: int = 0
    jitter: int | None = None

    def resolved(self) -> PictureOptions:
        """These options with the defaults of Grad-CAM in place of None."""
        return replace(
            self,
            components=vis.DEFAULT_COMPONENTS if self.components is None else self.components,
            jitter=vis.DEFAULT_JITTER if self.jitter is None else self.jitter,
        )


@dataclass
class Scene:
    """What every picture shows: the model (and the base model beside it), their input images
    (normalised (B, 3, H, W) on the device, and as uint8 RGB (B, H, W, 3)) and the titles'
    names: ``names`` (base, model), ``shown`` (who on what), ``where`` (dataset and split)."""

    model: torch.nn.Module
    base: torch.nn.Module | None
    meta: ModelMeta
    samples: list[Sample]
    images: torch.Tensor
    rgb: np.ndarray
    names: tuple[str, str]
    shown: str
    where: str
    group_names: list[str] | None = None


def render_all(
    model_path: Path,
    base_model_path: Path | None,
    dataset: str,
    root: Path,
    annotations: Path | None,
    out_dir: Path,
    device: torch.device | str = "auto",
    options: PictureOptions = PictureOptions(),
) -> dict:
    """Write holistic_attention.png, partial_attention.png, branch_outputs.png and shuffle.png
    (those the model allows) and visualize.json into ``out_dir``.

    ``model_path``: a training checkpoint (all pictures) or an export (Grad-CAM only);
    ``base_model_path``: the model without attention branches drawn beside it in Fig. 5 and 6;
    ``annotations``: a store whose masks and keypoints are drawn beside the branch outputs.
    Returns what visualize.json holds.
    """
    from daaf.utils.device import resolve_device

    device, options = resolve_device(device), options.resolved()
    scene = _scene(model_path, base_model_path, dataset, root, device, options)
    labels = _labeler_labels(annotations, scene)
    out_dir = Path(out_dir)
    report: dict = {
        "model": str(model_path),
        "base_model": None if scene.base is None else str(base_model_path),
        "dataset": dataset,
        "split": options.split,
        "images": [s.path for s in scene.samples],
        "gradcam_jitter": options.jitter,
        "files": [],
        "notes": [],
        "decoupling": None,
    }

    def written(name: str) -> Path:
        report["files"].append(name)
        return out_dir / name

    _attention_pictures(scene, options, written)
    _branch_pictures(scene, labels, report, written)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "visualize.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _load_models(
    model_path: Path, base_model_path: Path | None, device: torch.device
) -> tuple[torch.nn.Module, torch.nn.Module | None, ModelMeta]:
    """The model, the base model (None without one) and the model's meta; DaafError if the
    base model takes other inputs."""
    from daaf.models import load_inference_model

    model, meta = load_inference_model(Path(model_path), device)
    if base_model_path is None:
        return model, None, meta
    base, base_meta = load_inference_model(Path(base_model_path), device)
    if not base_meta.same_input(meta):
        raise DaafError(
            f"--base-model {base_model_path}: input size/normalisation differ from --model's"
        )
    return model, base, meta


def _spread_samples(data: ReIDDataset, split: str, n: int, where: str) -> list[Sample]:
    """``n`` samples of the split at evenly spaced places (all of a smaller split)."""
    pool = data.split(split)
    if not pool:
        raise DaafError(f"{where}: the {split} split is empty")
    picks = np.unique(np.linspace(0, len(pool) - 1, min(n, len(pool))).round().astype(int))
    return [pool[i] for i in picks]


def _scene(
    model_path: Path,
    base_model_path: Path | None,
    dataset: str,
    root: Path,
    device: torch.device,
    options: PictureOptions,
) -> Scene:
    """The models, the chosen images as the network sees them, and the names for the titles."""
    from daaf.data.datasets import build_dataset
    from daaf.data.images import read_rgb
    from daaf.data.transforms import eval_transform
    from daaf.evaluation.evaluate import model_label

    model, base, meta = _load_models(model_path, base_model_path, device)
    data = build_dataset(dataset, root)
    samples = _spread_samples(data, options.split, options.n, f"{dataset} at {root}")
    mean, std = meta.pixel_mean, meta.pixel_std
    images = torch.stack(
        [
            eval_transform(read_rgb(data.image_dir / s.path), meta.height, meta.width, mean, std)
            for s in samples
        ]
    ).to(device)
    model_name = model_label(Path(model_path))
    base_name = model_label(Path(base_model_path)) if base is not None else "base"
    names = (base_name + (" (base)" if base_name == model_name else ""), model_name)
    where = f"{dataset} {options.split}"
    shown = f"{' vs '.join(names) if base is not None else model_name}, {where}"
    for net, path in ((model, model_path), (base, base_model_path)):
        _require_finite_embeddings(net, images, path)
    rgb = vis.denormalize(images, mean, std)
    return Scene(model, base, meta, samples, images, rgb, names, shown, where, _group_names(model))


def _require_finite_embeddings(net: torch.nn.Module | None, images: torch.Tensor, path) -> None:
    """DaafError if ``net`` (None: nothing to check) embeds ``images`` into NaN or inf values:
    the pictures of a broken model would be drawn from garbage."""
    if net is None:
        return
    with torch.no_grad():
        embeddings = net(images).float().cpu().numpy()
    require_finite(embeddings, f"values of {path}'s embeddings", "no picture was drawn")


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


def _labeler_labels(
    annotations: Path | None, scene: Scene
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The store's masks (B, H, W) and keypoints (B, 17, 3) of the images in the network's input
    frame; (None, None) without a store; DaafError for an image it does not hold."""
    if annotations is None:
        return None, None
    from daaf.data.annotations import AnnotationStore

    height, width = scene.meta.height, scene.meta.width
    store = AnnotationStore(annotations)
    missing = store.missing([s.path for s in scene.samples])
    if missing:
        raise DaafError(f"{annotations}: no annotation for {missing[0]} ({scene.where})")
    labels = [vis.labels_in_input_frame(store.get(s.path), height, width) for s in scene.samples]
    store.close()
    return np.stack([mask for mask, _ in labels]), np.stack([kps for _, kps in labels])


def _both(
    scene: Scene, attention: Callable, *args, **kwargs
) -> tuple[np.ndarray, np.ndarray | None]:
    """``attention`` maps of the model's, then the base model's (None without one)."""
    maps = attention(scene.model, scene.images, *args, **kwargs)
    if scene.base is None:
        return maps, None
    return maps, attention(scene.base, scene.images, *args, **kwargs)


def _attention_pictures(
    scene: Scene, options: PictureOptions, written: Callable[[str], Path]
) -> None:
    """Fig. 5 (holistic attention, base beside DAAF) and Fig. 6 (one map per channel group, as
    the PAB splits the last feature map)."""
    components, seed, jitter = options.components, options.seed, options.jitter
    smoothing = vis.describe_jitter(jitter)
    dim = scene.meta.embedding_dim or 0
    note = vis.describe_components(dim, components, seed) if dim else f"components={components}"
    maps, base_maps = _both(scene, vis.holistic_attention, components, seed, jitter=jitter)
    vis.save_attention_figure(
        scene.rgb,
        base_maps,
        maps,
        written("holistic_attention.png"),
        title=f"holistic attention of {scene.shown}: Grad-CAM of the embedding on layer1 "
        f"(eq. 7), {note}; {smoothing}",
        names=scene.names,
    )
    groups = len(scene.group_names) if scene.group_names else 6
    maps, base_maps = _both(scene, vis.partial_attention, groups, components, seed, jitter=jitter)
    detail = f"at most {components} components each, seed {seed}" if components else "exact"
    vis.save_partial_attention_figure(
        scene.rgb,
        maps,
        written("partial_attention.png"),
        base_maps,
        scene.group_names,
        title=f"partial attention of {scene.shown}: {groups} channel groups (eq. 8, {detail}); "
        f"{smoothing}",
        model_names=scene.names,
    )


def _branch_pictures(
    scene: Scene,
    labels: tuple[np.ndarray | None, np.ndarray | None],
    report: dict,
    written: Callable[[str], Path],
) -> None:
    """Fig. 7-9: the branches' outputs beside the labels, and the 1x1 conv shuffle with its
    decoupling score (into ``report``), which only a training checkpoint allows."""
    model, model_name = scene.model, scene.names[1]
    if not hasattr(model, "branch_outputs"):
        report["notes"].append(GRADCAM_ONLY_NOTE)
        return
    if model.hab is None and model.pab is None:
        report["notes"].append("the model was trained without HAB and PAB: no branch pictures")
        return
    labeler_mask, labeler_kps = labels
    hab_mask, heatmaps = vis.branch_outputs(model, scene.images)
    vis.save_branch_figure(
        scene.rgb,
        labeler_mask,
        labeler_kps,
        hab_mask,
        heatmaps,
        written("branch_outputs.png"),
        title=f"{model_name} on {scene.where}: HAB and PAB outputs at inference beside the labels",
    )
    if not vis.supports_shuffle(model):
        report["notes"].append("no 1x1 conv shuffle: the PAB is not grouped with a shared decoder")
        return
    grid = vis.shuffle_grid(model, scene.images)
    report["decoupling"] = vis.decoupling_score(grid, model.pab.groups, labeler_kps)
    vis.save_shuffle_figure(
        grid[0],
        written("shuffle.png"),
        scene.rgb[0],
        scene.group_names,
        title=f"{model_name} on {scene.where} ({scene.samples[0].path}): 1x1 conv shuffle, "
        "rows = feature groups, columns = 1x1 convs",
    )
