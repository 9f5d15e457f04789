"""`daaf evaluate` end to end on a tiny dataset and an exported model; attention measurements."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from daaf.data.annotations import AnnotationStore
from daaf.data.config import DataConfig
from daaf.data.datasets import build_dataset
from daaf.data.device_batch import prepare_batch
from daaf.evaluation.attention_metrics import (
    attention_scores,
    background_sensitivity,
    branch_accuracy,
    mask_iou,
    pck,
    replace_background,
)
from daaf.evaluation.visualize import labels_in_input_frame
from daaf.models import ModelMeta, load_inference_model
from daaf.utils.safe_load import REFUSED


def test_evaluate_writes_metrics_and_pictures(
    tiny_dataset, trained_export, tmp_path, monkeypatch, cli
):
    from daaf.evaluation import plots

    titles, save_cmc = [], plots.save_cmc_curves
    monkeypatch.setattr(
        plots, "save_cmc_curves", lambda *a, **k: titles.append(k["title"]) or save_cmc(*a, **k)
    )
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--model",
        str(trained_export.model),
        "--dataset",
        "market1501",
        "--root",
        str(tiny_dataset),
        "--rerank",
        "--flip",
        "--workers",
        "0",
        "--out",
        str(out),
    ]
    cli(*args)
    rows = json.loads((out / "metrics.json").read_text())
    assert [r["ranking"] for r in rows] == ["plain", "re-ranked"]
    assert all(0 <= r["mAP"] <= 100 and r["num_valid_queries"] == 16 for r in rows)
    assert (out / "cmc.png").stat().st_size > 0 and len(
        list((out / "ranklists" / "plain").glob("*.png"))
    ) == 8
    assert "re-ranked" in (out / "metrics.csv").read_text()
    assert titles == ["CMC of model on market1501 (query vs gallery)"]  # the export folder's name
    per_query = pd.read_csv(out / "per_query.csv")
    assert list(per_query.columns) == [
        "image_path",
        "pid",
        "camid",
        "ap",
        "first_hit",
        "inp",
        "reranked",
    ]
    assert len(per_query) == 2 * 16 and per_query["ap"].between(0, 1).all()
    for flag, row in zip((0, 1), rows, strict=True):
        part = per_query[per_query["reranked"] == flag]
        assert abs(100 * part["ap"].mean() - row["mAP"]) < 1e-12
        assert abs(100 * (part["first_hit"] == 1).mean() - row["rank1"]) < 1e-12
        assert abs(100 * part["inp"].mean() - row["mINP"]) < 1e-12
    bad = cli(
        "evaluate",
        "--model",
        trained_export.run,
        "--dataset",
        "market1501",
        "--root",
        tiny_dataset,
        ok=False,
    )
    assert bad.exit_code == 1 and "no model_state.pt in this folder" in bad.output


def test_evaluate_refuses_a_model_file_that_would_run_code(tmp_path, malicious_pt, cli):
    write, marker = malicious_pt
    path = write(tmp_path / "model_state.pt")
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--model",
        str(path),
        "--dataset",
        "market1501",
        "--root",
        str(tmp_path / "no-data"),
        "--out",
        str(out),
    ]
    result = cli(*args, ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {path}: {REFUSED}"]  # before the dataset
    assert not marker.exists() and not out.exists()


def test_the_crafted_model_ts_overwrites_its_target_once_trusted(crafted_ts, tmp_path):
    """What the refusals below guard against, and what --trust-torchscript lets run."""
    write, victim = crafted_ts
    folder = write(tmp_path / "model").parent
    model, meta = load_inference_model(folder, torch.device("cpu"), trust_torchscript=True)
    model(torch.zeros(1, 3, 64, 32))
    assert victim.read_text() == "XXXXious contents" and meta.embedding_dim == 8


@pytest.mark.parametrize("given", ["model", "model/model.ts"])
def test_evaluate_loads_torchscript_only_when_told_to_trust_it(
    crafted_ts, tiny_dataset, tmp_path, given, cli
):
    write, victim = crafted_ts
    write(tmp_path / "model")
    out = tmp_path / "eval"
    args = [
        "evaluate",
        "--model",
        str(tmp_path / given),
        "--dataset",
        "market1501",
        "--root",
        str(tiny_dataset),
        "--workers",
        "0",
        "--out",
        str(out),
    ]
    result = cli(*args, ok=False)
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1
    assert result.output.startswith(f"Error: {tmp_path / given}: ")
    assert result.output.rstrip().endswith("daaf evaluate --trust-torchscript")
    assert victim.read_text() == "precious contents" and not out.exists()


def test_mask_iou_and_pck_by_hand():
    a = np.zeros((4, 4))
    a[:2] = 1  # noqa: E702
    b = np.zeros((4, 4))
    b[1:3] = 1  # noqa: E702
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    maps = np.zeros((17, 8, 8))
    maps[0, 2, 3] = 1
    maps[1, 7, 7] = 1  # noqa: E702
    kps = np.zeros((17, 3))
    kps[0] = (4, 3, 1)  # a corner of pixel (3, 2), 0.71 from its centre (the argmax's place)
    kps[1] = (0, 0, 1)  # noqa: E702
    kps[2:] = (np.nan, np.nan, 0)
    assert pck(maps, kps, tolerance=0.75) == (1, 2)
    assert pck(maps, kps, tolerance=0.7) == (0, 2)


def test_pck_maps_a_coarse_argmax_back_to_its_centre_in_input_pixels():
    """At stride 4 map pixel (3, 2) covers input pixels [12, 16) x [8, 12): its centre (14, 10)."""
    maps = np.zeros((17, 8, 4))
    maps[:, 2, 3] = 1
    kps = np.full((17, 3), (np.nan, np.nan, 0.0))
    kps[0] = (14, 10, 1)  # the centre
    kps[1] = (14.6, 10, 1)  # 0.6 input pixels beside it
    assert pck(maps, kps, tolerance=0.5, stride=4) == (1, 2)
    assert pck(maps, kps, tolerance=0.6, stride=4) == (2, 2)
    assert pck(maps, kps, tolerance=0.5) == (0, 2)  # read as input pixels: (3.5, 2.5)


class PerfectBranches(torch.nn.Module):
    """Branch outputs that are the training targets (``prepare_batch`` at ``stride``) of
    ``samples``' true masks and keypoints, handed out in order."""

    def __init__(self, store, meta, samples, stride: int) -> None:
        super().__init__()
        n, height, width = len(samples), meta.height, meta.width
        labels = [labels_in_input_frame(store.get(s.path), height, width) for s in samples]
        masks = np.stack([mask for mask, _ in labels])[:, None] * 255  # the store's uint8
        worker_batch = {
            "images": torch.zeros(n, height, width, 3, dtype=torch.uint8),
            "pids": torch.zeros(n, dtype=torch.long),
            "valid": torch.ones(n, dtype=torch.bool),
            "erasing": torch.zeros(n, 4, dtype=torch.int32),
            "masks": torch.from_numpy(masks.round().astype(np.uint8)),
            "keypoints": torch.from_numpy(np.stack([k for _, k in labels])),
        }
        cfg = DataConfig(height=height, width=width, heatmap_sigma=2.75, keypoint_score_threshold=0)
        targets = prepare_batch(worker_batch, cfg, torch.device("cpu"), stride)
        self.masks, self.heatmaps, self.given = targets["masks"], targets["heatmaps"], 0

    def branch_outputs(self, images: torch.Tensor):
        chunk = slice(self.given, self.given + len(images))
        self.given += len(images)
        return self.masks[chunk], self.heatmaps[chunk]


@pytest.mark.parametrize("stride", [1, 4])
def test_a_perfect_coarse_prediction_scores_full_marks_in_input_pixels(tiny_dataset, stride):
    """PCK 1 within the grid's quantisation (half a grid pixel each way: 2 x sqrt 2 input pixels
    at stride 4), and an IoU near 1 from the area-averaged mask upsampled to the input (1 exactly
    at stride 1)."""
    dataset = build_dataset("market1501", tiny_dataset)
    store, meta = (
        AnnotationStore(tiny_dataset / "annotations"),
        ModelMeta(64, 32, [0.5] * 3, [0.5] * 3),
    )
    model = PerfectBranches(store, meta, dataset.query, stride)
    quantisation = np.hypot(stride / 2, stride / 2)
    acc = branch_accuracy(
        model,
        dataset,
        store,
        meta,
        dataset.query,
        torch.device("cpu"),
        batch_size=5,
        pck_fraction=(quantisation + 1e-3) / 64,
    )
    assert acc.pck == 1.0
    assert acc.mask_iou == 1.0 if stride == 1 else 0.95 < acc.mask_iou < 1.0  # 0.977


def test_replace_background_keeps_the_person():
    rng = np.random.default_rng(0)
    image, other = rng.integers(0, 255, (2, 16, 8, 3), dtype=np.uint8)
    mask = np.zeros((16, 8), np.float32)
    mask[4:12, 2:6] = 1  # noqa: E702
    out = replace_background(image, mask, other, np.zeros((16, 8), np.float32))
    assert np.array_equal(out[4:12, 2:6], image[4:12, 2:6]) and np.array_equal(out[0], other[0])


def test_attention_measurements_run_on_a_daaf_checkpoint(tiny_dataset, trained_export):
    model, meta = load_inference_model(trained_export.checkpoint, torch.device("cpu"))
    dataset = build_dataset("market1501", tiny_dataset)
    store = AnnotationStore(tiny_dataset / "annotations")
    acc = branch_accuracy(model, dataset, store, meta, dataset.query, torch.device("cpu"))
    assert 0 <= acc.mask_iou <= 1 and 0 <= acc.pck <= 1
    sens = background_sensitivity(model, dataset, store, meta, dataset.query, torch.device("cpu"))
    assert sens.swap_distance >= 0 and sens.other_id_distance > 0


def test_attention_scores_are_the_measurements_of_the_model_s_branches(
    tiny_dataset, trained_export
):
    dataset = build_dataset("market1501", tiny_dataset)
    store, cpu = AnnotationStore(tiny_dataset / "annotations"), torch.device("cpu")
    model, meta = load_inference_model(trained_export.checkpoint, cpu)
    scores = attention_scores(model, dataset, store, meta, cpu)
    acc = branch_accuracy(model, dataset, store, meta, dataset.query, cpu)
    sens = background_sensitivity(model, dataset, store, meta, dataset.query, cpu)
    assert scores == pytest.approx(
        {
            "background_swap_distance": sens.swap_distance,
            "background_sensitivity": sens.ratio,
            "hab_mask_iou": acc.mask_iou,
            "pab_pck": acc.pck,
        }
    )
    base, base_meta = load_inference_model(trained_export.model, cpu)  # the export: no branches
    assert sorted(attention_scores(base, dataset, store, base_meta, cpu)) == [
        "background_sensitivity",
        "background_swap_distance",
    ]


def test_per_query_rows_keep_queries_without_positive_empty(tmp_path):
    from daaf.data.datasets.base import Sample
    from daaf.evaluation.evaluate import per_query_table
    from daaf.evaluation.metrics import evaluate_rank

    result = evaluate_rank(
        np.array([[0.2, 0.1]]).repeat(2, 0),
        np.array([1, 9]),
        np.array([1, 2]),
        np.array([0, 0]),
        np.array([1, 1]),
        max_rank=2,
    )
    queries = [Sample("q/a.jpg", 1, 0), Sample("q/b.jpg", 9, 0)]
    per_query_table(result, queries, reranked=False).to_csv(tmp_path / "pq.csv", index=False)
    lines = (tmp_path / "pq.csv").read_text().splitlines()
    assert lines[1:] == ["q/a.jpg,1,0,0.5,2,0.5,0", "q/b.jpg,9,0,,,,0"]
    assert pd.read_csv(tmp_path / "pq.csv")["ap"].mean() == result.mAP


def test_rank_list_marks_query_ranks_ap_and_legend(tmp_path):
    from daaf.evaluation.plots import TILE, draw_rank_list

    tile = np.zeros((*TILE, 3), np.uint8)
    fig = draw_rank_list(tile, [tile] * 3, tmp_path / "r.png", "bot, plain ranking: AP 0.500")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["query", "rank 1", "rank 2", "rank 3"]
    assert "AP 0.500" in ax.get_title() and "bot" in ax.get_title()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["same identity (true match)", "other identity"]
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_model_label_names_the_run_or_export():
    from daaf.evaluation.evaluate import model_label

    assert model_label(Path("runs/daaf_bot/checkpoints/last.pt")) == "daaf_bot"
    assert model_label(Path("models/bot")) == "bot"
    assert model_label(Path("models/bot/model_state.pt")) == "bot"
    assert model_label(Path("tmp/bot_seed1.pt")) == "bot_seed1"
