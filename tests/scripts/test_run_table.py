"""scripts/run_table.py trains, exports and evaluates every row of a table into one CSV."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from daaf.config import load_config
from daaf.utils.safe_load import REFUSED

from ..conftest import load_script

REPO = Path(__file__).resolve().parents[2]
STUDY_DIR = REPO / "configs" / "study"
TINY = [
    "data.height=64",
    "data.width=32",
    "data.pad=2",
    "data.num_identities=4",
    "data.num_instances=2",
    "data.workers=0",
    "model.depth=18",
    "model.pretrained=none",
    "model.last_stride=1",
    "data.pre_crop_size=null",
    "train.epochs=1",
    "train.iters_per_epoch=1",
]


@pytest.mark.slow
def test_table5_rows_are_trained_and_collected(tiny_dataset, tmp_path):
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "run_table.py"),
        "--table",
        "5",
        "--root",
        str(tiny_dataset),
        "--annotations",
        str(tiny_dataset / "annotations"),
        "--out",
        str(tmp_path),
        *TINY,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "table5.csv")
    assert sorted(table["row"]) == [
        "table5_keypoint_group",
        "table5_keypoint_no_group",
        "table5_part_image_group",
    ]
    assert table["mAP"].between(0, 100).all()
    # A second run reuses every finished row.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "epoch 1/1" not in again.stderr


def test_a_finished_row_check_refuses_a_checkpoint_that_would_run_code(
    tiny_dataset, tmp_path, malicious_pt
):
    """Finished rows are recognised by loading OUT/ROW/checkpoints/last.pt: never with pickle."""
    write, marker = malicious_pt
    last = write(tmp_path / "table5_keypoint_group" / "checkpoints" / "last.pt")
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "run_table.py"),
        "--table",
        "5",
        "--root",
        str(tiny_dataset),
        "--annotations",
        str(tiny_dataset / "annotations"),
        "--out",
        str(tmp_path),
        *TINY,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"Error: {last}: {REFUSED}"]
    assert not marker.exists()


def run_table():
    """scripts/run_table.py as a module (it is a script, not part of the package)."""
    return load_script(REPO / "scripts" / "run_table.py")


def test_a_finished_row_is_evaluated_from_model_state_pt_never_from_model_ts(
    tiny_dataset, tmp_path, crafted_ts
):
    """An export/ folder without model_state.pt (an export that failed, or a model.ts from
    elsewhere) is exported again, and the model evaluated is read from model_state.pt."""
    from daaf.models import build_model, load_inference_model

    script = run_table()
    config = script.PAPER / "table5_keypoint_group.yaml"
    overrides = [
        f"data.root={tiny_dataset}",
        f"data.annotations={tiny_dataset / 'annotations'}",
        *TINY,
    ]
    cfg = load_config(config, overrides)
    last = tmp_path / config.stem / "checkpoints" / "last.pt"
    last.parent.mkdir(parents=True)
    state = {"model": build_model(cfg, 8).state_dict(), "config": cfg.to_dict(), "num_classes": 8}
    torch.save({**state, "epoch": cfg.train.epochs}, last)  # finished: not trained again
    write, victim = crafted_ts
    export_dir = write(tmp_path / config.stem / "export").parent
    (export_dir / "export_report.json").write_text('{"passed": true}')
    assert script.run_row(config, overrides, tmp_path) == export_dir
    model, meta = load_inference_model(export_dir, torch.device("cpu"))
    assert model(torch.zeros(1, 3, 64, 32)).shape == (1, meta.embedding_dim)
    assert victim.read_text() == "precious contents"


def test_seed_summary_gives_mean_std_and_the_paired_ci_against_the_base_row(tmp_path):
    from daaf.evaluation.compare import compare_runs

    rng = np.random.default_rng(0)
    pids = np.repeat(np.arange(10), 3)
    runs = []
    for row in ("table4_base", "table4_hab"):
        for seed in range(2):
            folder = tmp_path / f"seed{seed}" / row / "eval_market1501"
            folder.mkdir(parents=True)
            ap = rng.random(len(pids))
            pd.DataFrame(
                {
                    "image_path": [f"q/{i}.jpg" for i in range(len(pids))],
                    "pid": pids,
                    "camid": 0,
                    "ap": ap,
                    "first_hit": rng.integers(1, 4, len(pids)),
                    "inp": ap / 2,
                    "reranked": 0,
                }
            ).to_csv(folder / "per_query.csv", index=False)
            runs.append(
                {
                    "row": row,
                    "seed": seed,
                    "dataset": "market1501",
                    "ranking": "plain",
                    "mAP": 100 * ap.mean(),
                    "rank1": 50.0 + seed,
                    "eval_dir": str(folder),
                }
            )
    table = pd.DataFrame(runs)
    summary = run_table().seed_summary(table, "table4_base", resamples=200).set_index("row")
    hab = table[table["row"] == "table4_hab"]
    assert summary.loc["table4_hab", "seeds"] == 2
    assert summary.loc["table4_hab", "mAP_mean"] == pytest.approx(hab["mAP"].mean())
    assert summary.loc["table4_hab", "mAP_std"] == pytest.approx(hab["mAP"].std(ddof=1))
    assert summary.loc["table4_hab", "rank1_std"] == pytest.approx(np.std([50, 51], ddof=1))
    expected = compare_runs(list(table["eval_dir"][:2]), list(hab["eval_dir"]), resamples=200)
    m = expected.metrics["mAP"]
    assert summary.loc["table4_hab", ["delta_mAP", "ci95_low", "ci95_high", "p_le_0"]].tolist() == (
        pytest.approx([m["delta"], *m["ci95"], m["p_le_0"]])
    )
    assert pd.isna(summary.loc["table4_base", "delta_mAP"])  # the base row is not compared


@pytest.mark.slow
def test_seeds_train_every_row_per_seed_and_summarise(tiny_dataset, tmp_path):
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "run_table.py"),
        "--table",
        "5",
        "--seeds",
        "2",
        "--root",
        str(tiny_dataset),
        "--annotations",
        str(tiny_dataset / "annotations"),
        "--out",
        str(tmp_path),
        *TINY,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(tmp_path / "table5.csv")
    assert sorted(table["seed"].unique()) == [0, 1] and len(table) == 6
    for seed in (0, 1):
        config = (tmp_path / f"seed{seed}" / "table5_keypoint_no_group" / "config.yaml").read_text()
        assert f"seed: {seed}" in config
    summary = pd.read_csv(tmp_path / "table5_seeds.csv").set_index("row")
    assert (summary["seeds"] == 2).all()
    assert pd.isna(summary.loc["table5_keypoint_group", "delta_mAP"])
    other = summary.loc["table5_keypoint_no_group"]
    assert other["ci95_low"] <= other["delta_mAP"] <= other["ci95_high"]
    assert "delta mAP vs table5_keypoint_group" in result.stdout


def test_the_study_table_reads_the_study_configs():
    module = run_table()
    assert [c.stem for c in module.table_configs("study")] == [
        "study_bot",
        "study_daaf_bot",
        "study_daaf_bot_fix",
        "study_daaf_bot_pab30",
        "study_hab_only",
        "study_pab_no_reid",
        "study_pab_no_reid_mse",
        "study_pab_only",
        "study_v3_balanced_hab_only",
        "study_v3_balanced_pab_only",
        "study_v3_daaf_bot",
        "study_v3_daaf_bot_balanced",
        "study_v3_daaf_bot_recipe",
        "study_v3_hab_only",
        "study_v3_pab_only",
    ]
    branches = {
        c.stem: (cfg.model.hab, cfg.model.pab, cfg.loss.hab_weight, cfg.loss.pab_weight)
        for c in module.table_configs("study")
        for cfg in [load_config(c)]
    }
    assert branches["study_hab_only"] == (True, False, 0.003, 0.003)
    assert branches["study_pab_only"] == (False, True, 0.003, 0.003)
    assert branches["study_daaf_bot"] == (True, True, 0.003, 0.003)
    adopted = load_config(STUDY_DIR / "study_v3_daaf_bot_balanced.yaml").to_dict()
    for row, (hab, pab) in {"hab_only": (True, False), "pab_only": (False, True)}.items():
        ablation = load_config(STUDY_DIR / f"study_v3_balanced_{row}.yaml").to_dict()
        assert (ablation["model"].pop("hab"), ablation["model"].pop("pab")) == (hab, pab)
        assert ablation == {**adopted, "model": {**ablation["model"]}}
        assert {k: v for k, v in adopted["model"].items() if k not in ("hab", "pab")} == ablation[
            "model"
        ]
    fix = load_config(STUDY_DIR / "study_daaf_bot_fix.yaml")  # v2's fix row: all else the paper's
    assert (fix.model.decoder_stride, fix.loss.branch_balance, fix.loss.balance_ratio) == (
        4,
        "grad_ratio",
        0.1,
    )
    paper = load_config(STUDY_DIR / "study_daaf_bot.yaml")
    assert (fix.model.decoder_stride, fix.loss.branch_balance) != (
        paper.model.decoder_stride,
        paper.loss.branch_balance,
    )
    fix.model.decoder_stride, fix.loss.branch_balance = 1, "none"
    assert fix.to_dict() == paper.to_dict()
    # v2's diagnostic: the fix row's network on the PAB's loss alone
    alone = load_config(STUDY_DIR / "study_pab_no_reid.yaml")
    loss = alone.loss
    assert loss.id_weight == loss.triplet_weight == loss.center_weight == loss.hab_weight == 0
    assert (loss.pab_weight, loss.branch_balance, alone.model.decoder_stride) == (1, "none", 4)
    mse = load_config(STUDY_DIR / "study_pab_no_reid_mse.yaml")
    assert mse.loss.branch_loss == "mse" and alone.loss.branch_loss == "l2"
    mse.loss.branch_loss = "l2"
    assert mse.to_dict() == alone.to_dict()
    assert module.BASE_ROWS["study"] == "study_bot"
    # v2's rows keep the decoders they were trained with, whatever the defaults become
    assert (paper.model.decoder_init, paper.optim.branch_weight_decay) == ("pytorch", None)


def differences(a, b) -> dict[str, tuple]:
    """The settings two configs differ in: dotted key -> (a's value, b's value)."""
    flat_a, flat_b = a.to_dict(), b.to_dict()
    return {
        f"{section}.{key}": (value, flat_b[section][key])
        for section, values in flat_a.items()
        for key, value in values.items()
        if value != flat_b[section][key]
    }


def test_study_v3_rows_differ_from_v2_s_paper_row_only_as_they_say():
    paper = load_config(STUDY_DIR / "study_daaf_bot.yaml")
    fix = load_config(STUDY_DIR / "study_v3_daaf_bot.yaml")
    assert differences(fix, paper) == {
        "model.decoder_init": ("small_heads", "pytorch"),
        "optim.branch_weight_decay": (0.0, None),
    }
    assert differences(load_config(STUDY_DIR / "study_v3_hab_only.yaml"), fix) == {
        "model.pab": (False, True)
    }
    assert differences(load_config(STUDY_DIR / "study_v3_pab_only.yaml"), fix) == {
        "model.hab": (False, True)
    }
    assert differences(load_config(STUDY_DIR / "study_v3_daaf_bot_balanced.yaml"), fix) == {
        "data.heatmap_sigma": (8.0, 2.75),
        "model.decoder_stride": (4, 1),
        "loss.branch_loss": ("mse", "l2"),
        "loss.keypoint_weighting": ("visible", "all"),
        "loss.branch_balance": ("grad_ratio", "none"),
        "loss.balance_ratio": (0.5, 0.1),
    }
    recipe = load_config(STUDY_DIR / "study_v3_daaf_bot_recipe.yaml")
    assert differences(load_config(STUDY_DIR / "study_v3_daaf_bot_balanced.yaml"), recipe) == {
        "loss.branch_balance": ("grad_ratio", "none"),
        "loss.balance_ratio": (0.5, 0.1),
    }


def test_the_pab_controls_differ_only_in_the_pose_recipe():
    negative = load_config(STUDY_DIR / "control_pab_v2.yaml")
    alone = load_config(STUDY_DIR / "study_pab_no_reid.yaml")
    assert differences(negative, alone) == {
        "optim.warmup_epochs": (2, 6),
        "optim.milestones": ([10], [27]),
        "train.epochs": (12, 36),
    }
    assert differences(load_config(STUDY_DIR / "control_pab.yaml"), negative) == {
        "data.heatmap_sigma": (8.0, 2.75),
        "model.decoder_init": ("small_heads", "pytorch"),
        "loss.branch_loss": ("mse", "l2"),
        "loss.keypoint_weighting": ("visible", "all"),
        "optim.weight_decay": (0.0, 5e-4),
        "optim.branch_weight_decay": (0.0, None),
    }


def test_table_3_reuses_table_2_s_models():
    module = run_table()
    assert [c.name for c in module.table_configs("3")] == [
        c.name for c in module.table_configs("2")
    ]


def test_seed_summary_averages_the_attention_columns_a_row_has(tmp_path):
    table = pd.DataFrame(
        [
            {
                "row": "study_bot",
                "seed": s,
                "dataset": "synthetic",
                "ranking": "plain",
                "mAP": 20.0 + s,
                "background_sensitivity": 0.5 + s / 10,
                "hab_mask_iou": np.nan,
                "pab_pck": np.nan,
                "eval_dir": str(tmp_path),
            }
            for s in range(3)
        ]
        + [
            {
                "row": "study_daaf_bot",
                "seed": s,
                "dataset": "synthetic",
                "ranking": "plain",
                "mAP": 21.0,
                "background_sensitivity": 0.4,
                "hab_mask_iou": 0.6 + s / 10,
                "pab_pck": [0.0, 0.1, 0.5][s],
                "eval_dir": str(tmp_path),
            }
            for s in range(3)
        ]
    )
    summary = run_table().seed_summary(table, "no_such_row").set_index("row")
    assert summary.loc["study_bot", "background_sensitivity_mean"] == pytest.approx(0.6)
    assert summary.loc["study_bot", "background_sensitivity_std"] == pytest.approx(0.1)
    assert pd.isna(summary.loc["study_bot", "pab_pck_mean"])  # BoT has no branches
    assert summary.loc["study_daaf_bot", "pab_pck_mean"] == pytest.approx(0.2)
    assert summary.loc["study_daaf_bot", "hab_mask_iou_std"] == pytest.approx(0.1)
    text = run_table().format_seed_summary(summary.reset_index(), "no_such_row")
    assert "pab_pck 0.200 +- 0.265" in text and "hab_mask_iou" not in text.splitlines()[0]


def test_only_names_a_row_of_the_table(tiny_dataset, tmp_path):
    from click.testing import CliRunner

    args = [
        "--table",
        "study",
        "--only",
        "study_nope",
        "--root",
        str(tiny_dataset),
        "--annotations",
        str(tiny_dataset / "annotations"),
        "--out",
        str(tmp_path),
    ]
    result = CliRunner().invoke(run_table().main, args)
    assert result.exit_code == 2
    assert "study_nope is not a row of table study" in result.output
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_the_study_trains_only_the_named_rows_and_measures_the_attention(tmp_path):
    from daaf.data.synthetic.generate import SynthSpec, generate_dataset

    data = tmp_path / "data"
    generate_dataset(data, SynthSpec(identities=10, images_per_identity=4))  # 5 train, 5 test
    out = tmp_path / "runs"
    cmd = [
        sys.executable,
        str(REPO / "scripts" / "run_table.py"),
        "--table",
        "study",
        "--seeds",
        "2",
        "--dataset",
        "synthetic",
        "--root",
        str(data),
        "--annotations",
        str(data / "annotations"),
        "--out",
        str(out),
        *TINY,
    ]
    only = subprocess.run(
        [*cmd, "--only", "study_daaf_bot"], capture_output=True, text=True, timeout=900
    )
    assert only.returncode == 0, only.stderr[-3000:]
    assert sorted(p.name for p in (out / "seed1").iterdir()) == ["study_daaf_bot"]
    table = pd.read_csv(out / "tablestudy.csv")
    assert table["row"].unique().tolist() == ["study_daaf_bot"]
    assert table[["hab_mask_iou", "pab_pck", "background_sensitivity"]].notna().all().all()
    everything = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert everything.returncode == 0, everything.stderr[-3000:]
    summary = pd.read_csv(out / "tablestudy_seeds.csv").set_index("row")
    assert pd.isna(summary.loc["study_bot", "pab_pck_mean"])
    assert summary.loc["study_daaf_bot", "seeds"] == 2
    assert 0 <= summary.loc["study_daaf_bot", "pab_pck_mean"] <= 1
    assert pd.notna(summary.loc["study_daaf_bot", "delta_mAP"])
