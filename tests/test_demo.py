"""``daaf demo`` end to end on a tiny synthetic dataset (one epoch per model)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from daaf.demo import DATA_KIND, DEMO_KIND, write_summary
from daaf.models import ModelMeta
from daaf.utils.files import mark_dir
from daaf.utils.lock import folder_lock
from daaf.utils.safe_load import REFUSED

META = ModelMeta(8, 4, [0.0] * 3, [1.0] * 3)  # the fake exports' input size


def write_eval(folder, ap, copies=5):
    """An evaluation folder holding a per_query.csv of ``copies`` x 8 queries of 4 identities
    (20 identities by default, as many as compare needs before it reads its interval)."""
    folder.mkdir(parents=True)
    ap = ap * copies
    pd.DataFrame(
        {
            "image_path": [f"q/{i}.jpg" for i in range(len(ap))],
            "pid": [i // 2 for i in range(len(ap))],
            "camid": 0,
            "ap": ap,
            "first_hit": [1 if a > 0.5 else 2 for a in ap],
            "inp": ap,
            "reranked": 0,
        }
    ).to_csv(folder / "per_query.csv", index=False)


def test_summary_states_the_difference_and_whether_its_interval_includes_zero(tmp_path):
    results = {"BoT": {"mAP": 50.0}, "DAAF-BoT": {"mAP": 51.0}}
    write_eval(tmp_path / "noise" / "eval" / "BoT", [0.2, 0.9, 0.4, 0.6, 0.3, 0.8, 0.5, 0.7])
    write_eval(tmp_path / "noise" / "eval" / "DAAF-BoT", [0.9, 0.2, 0.6, 0.4, 0.8, 0.3, 0.7, 0.5])
    printed = write_summary(tmp_path / "noise", results, "synthetic ground truth")
    text = (tmp_path / "noise" / "summary.md").read_text()
    assert "mAP DAAF-BoT - BoT: +0.00 points, 95% CI [" in text
    assert "the interval includes 0, so no evidence of a difference" in text
    assert "not training noise" in text and "--seeds" in text and "95% CI" in printed
    for link in ("eval/BoT/report.html", "eval/DAAF-BoT/report.html", "compare/report.html"):
        assert f"]({link})" in text
    assert (tmp_path / "noise" / "compare" / "report.html").is_file()
    # Every identity better by 0.3 in AP: the interval excludes 0.
    write_eval(tmp_path / "gain" / "eval" / "BoT", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.3, 0.2])
    write_eval(tmp_path / "gain" / "eval" / "DAAF-BoT", [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.6, 0.5])
    write_summary(tmp_path / "gain", results, "synthetic ground truth")
    text = (tmp_path / "gain" / "summary.md").read_text()
    assert "+30.00 points, 95% CI [+30.00, +30.00]" in text
    assert "evidence that DAAF-BoT ranks these queries better" in text
    # The same gain on 4 identities: too few to claim anything.
    write_eval(tmp_path / "few" / "eval" / "BoT", [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.3, 0.2], 1)
    write_eval(tmp_path / "few" / "eval" / "DAAF-BoT", [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.6, 0.5], 1)
    write_summary(tmp_path / "few", results, "synthetic ground truth")
    text = (tmp_path / "few" / "summary.md").read_text()
    assert "over 4 test identities): too few for a 95% interval" in text
    assert "evidence that" not in text


def test_summary_says_whether_each_branch_learned(tmp_path):
    """PAB PCK on the queries beside the constant map's, judged by the positive control's bar;
    each branch's last training measurement judged as daaf train's warning judges it: by its
    accuracy beside a constant map's where it has one, else by its loss."""
    from daaf.demo import branch_note
    from daaf.training.branch_health import last_measurement

    metrics = tmp_path / "metrics.jsonl"
    rows = [
        {"step": 20, "total": 3.0},
        {
            "step": 40,
            "health/hab/loss": 9.0,
            "health/hab/zero_map_loss": 10.0,
            "health/pab/loss": 3.0,
            "health/pab/zero_map_loss": 3.0,
        },
        {
            "step": 60,
            "health/hab/loss": 5.0,
            "health/hab/zero_map_loss": 10.0,
            "health/hab/iou": 0.61,
            "health/hab/constant_iou": 0.4,
            "health/pab/loss": 2.9,
            "health/pab/zero_map_loss": 3.0,
            "health/pab/pck": 0.28,
            "health/pab/constant_pck": 0.25,
        },
        {"step": 70, "total": 2.0},
    ]
    metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    health = last_measurement(metrics)
    assert health["step"] == 60 and health["health/pab/loss"] == 2.9
    results = {"BoT": {"mAP": 5.0}, "DAAF-BoT": {"pab_pck": 0.041, "constant_map_pck": 0.802}}
    note = branch_note(results, health)
    assert "PAB PCK 0.041 on the queries; a constant map" in note and "scores 0.802" in note
    assert "no sign that it localises keypoints" in note
    assert (
        "- HAB on its last measured training batch (step 60): IoU 0.610 against a constant map's "
        "0.400 (loss 5, the all-zero map's 10): learning" in note
    )
    assert (
        "PCK 0.280 against a constant map's 0.250 (loss 2.9, the all-zero map's 3): not learning"
        in note
    )
    assert "docs/training.md, section 'A branch that does not learn'" in note
    localising = branch_note({"DAAF-BoT": {"pab_pck": 0.45, "constant_map_pck": 0.25}}, {})
    assert "it localises keypoints" in localising
    loss_only = branch_note(
        {}, {"step": 40, "health/pab/loss": 3.3, "health/pab/zero_map_loss": 3.0}
    )
    assert "(step 40): loss 3.3, the all-zero map's 3: not learning" in loss_only
    assert "(5% below the all-zero map)" in loss_only
    assert last_measurement(tmp_path / "missing.jsonl") == {}
    assert branch_note({"BoT": {}}, {}) == ""  # nothing measured, nothing said


def fake_exports(monkeypatch, costs: dict[str, float]) -> list[tuple[str, int]]:
    """Exports whose forward pass moves a fake clock by ``costs[name]`` seconds an image, times
    a load of 5 that comes halfway through each batch size's calls; returns the calls made."""
    import daaf.evaluation.speed as speed
    import daaf.models as models
    from daaf.demo import LATENCY_ROUNDS

    now, calls = [0.0], []

    class Export(torch.nn.Module):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def forward(self, images: torch.Tensor) -> None:
            batch = images.shape[0]
            done = sum(size == batch for _, size in calls)
            load = 5 if done >= LATENCY_ROUNDS[batch] + 2 else 1  # 2 models, 2 warm-up rounds
            calls.append((self.name, batch))
            now[0] += costs[self.name] * batch * load

    monkeypatch.setattr(speed, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    monkeypatch.setattr(
        models, "load_inference_model", lambda folder, device: (Export(folder.name), META)
    )
    return calls


def test_the_exports_are_timed_in_turns_and_the_summary_gives_their_ratio(tmp_path, monkeypatch):
    """A load that comes halfway splits two models timed one after the other (10x for a pair 2x
    apart); timed in turns, their ratio is their own."""
    import daaf.models as models
    from daaf.demo import LATENCY_ROUNDS, time_exports
    from daaf.evaluation.speed import measure_latency

    calls = fake_exports(monkeypatch, {"BoT": 0.001, "DAAF-BoT": 0.002})
    timed = time_exports(tmp_path, ["BoT", "DAAF-BoT"], "cpu")
    one = [name for name, batch in calls if batch == 1]
    assert len(one) == 2 * (LATENCY_ROUNDS[1] + 2)
    assert one[:6] == ["BoT", "DAAF-BoT", "DAAF-BoT", "BoT", "BoT", "DAAF-BoT"]
    assert all({one[i], one[i + 1]} == {"BoT", "DAAF-BoT"} for i in range(0, len(one), 2))
    assert timed["BoT"]["latency_ms_batch1"] == pytest.approx(5.0)  # 1 ms x load 5, the median
    assert timed["DAAF-BoT"]["latency_ms_batch32"] == pytest.approx(2 * 32 * 5)

    calls.clear()  # the same exports timed one after the other: the load splits them
    bot, daaf_bot = (models.load_inference_model(tmp_path / name, "cpu")[0] for name in timed)
    first = measure_latency(bot, (1, 3, 8, 4), "cpu", repeats=LATENCY_ROUNDS[1])
    second = measure_latency(daaf_bot, (1, 3, 8, 4), "cpu", repeats=LATENCY_ROUNDS[1])
    assert second / first == pytest.approx(10)

    results = {name: {"mAP": 50.0, **timed[name]} for name in timed}
    write_eval(tmp_path / "eval" / "BoT", [0.2, 0.9, 0.4, 0.6, 0.3, 0.8, 0.5, 0.7])
    write_eval(tmp_path / "eval" / "DAAF-BoT", [0.9, 0.2, 0.6, 0.4, 0.8, 0.3, 0.7, 0.5])
    printed = write_summary(tmp_path, results, "synthetic ground truth")
    line = (
        "Latency, DAAF-BoT / BoT: 2.00 at batch 1, 2.00 at batch 32 (the two exports timed in turns"
    )
    assert line in printed and line in (tmp_path / "summary.md").read_text()


def test_demo_runs_end_to_end_and_resumes(tmp_path, monkeypatch, cli):
    """The demo's preset at 64x32 instead of 128x64 (the same code on a quarter of the pixels),
    pictures from one Grad-CAM component without input shifts, not 16 components x 2x2 shifts,
    and 2 rank lists per ranking, not 8: the pictures' content is checked by the visualize and
    evaluate tests; this test checks that the demo makes every stage's output, and reuses it."""
    import daaf.demo
    import daaf.evaluation.visualize

    small = tmp_path / "demo_64x32.yaml"
    small.write_text(f"_base_: {daaf.demo.preset_path('demo')}\ndata: {{height: 64, width: 32}}\n")
    monkeypatch.setattr(daaf.demo, "preset_path", lambda name: small)
    monkeypatch.setattr(daaf.demo, "PICTURE_COMPONENTS", 1)
    monkeypatch.setattr(daaf.demo, "RANK_LISTS", 2)
    monkeypatch.setattr(daaf.evaluation.visualize, "DEFAULT_JITTER", 1)
    out = tmp_path / "demo"
    mark_dir(out, DEMO_KIND)
    mark_dir(out / "data", DATA_KIND)
    (out / "data" / "half-written.png").write_bytes(b"")  # an interrupted synthesis

    args = ["demo", "--out", str(out), "--identities", "16", "--epochs", "1", "--device", "cpu"]
    first = cli(*args)
    assert "removing the incomplete" in first.output
    assert "ground-truth" in first.output  # no COCO weights on a test machine

    summary = pd.read_csv(out / "summary.csv", index_col="model")
    assert list(summary.index) == ["BoT", "DAAF-BoT"]
    for column in ("mAP", "rank1", "mAP_rerank", "rank1_rerank", "background_sensitivity"):
        assert summary[column].between(0, 100).all(), column
    assert summary.loc["BoT", "params"] == summary.loc["DAAF-BoT", "params"]  # stripped export
    assert 0 <= summary.loc["DAAF-BoT", "hab_mask_iou"] <= 1
    assert pd.isna(summary.loc["BoT", "hab_mask_iou"])
    assert 0 <= summary.loc["DAAF-BoT", "constant_map_pck"] <= 1
    assert "## Did the branches learn?" in (out / "summary.md").read_text()
    assert "| DAAF-BoT |" in (out / "summary.md").read_text()
    assert "95% CI" in (out / "summary.md").read_text()
    assert "Latency, DAAF-BoT / BoT: " in (out / "summary.md").read_text()
    for report in ("eval/BoT", "eval/DAAF-BoT", "compare"):
        assert (out / report / "report.html").is_file(), report
    for model in ("BoT", "DAAF-BoT"):  # 2 per ranking, with and without re-ranking
        assert len(list((out / "eval" / model / "ranklists").glob("*/*.png"))) == 4, model
    for picture in (
        "loss_curves.png",
        "cmc_curves.png",
        "pictures/holistic_attention.png",
        "pictures/branch_outputs.png",
        "pictures/shuffle.png",
    ):
        assert (out / picture).stat().st_size > 1000, picture

    first_summary = (out / "summary.csv").read_text()
    again = cli(*args)
    assert "reusing" in again.output and again.output.count("already trained") == 2
    assert again.output.count("reusing its export and evaluation") == 2
    assert "reusing the attention measurements and pictures" in again.output
    assert (out / "summary.csv").read_text() == first_summary


def test_a_stage_result_is_reused_only_for_the_checkpoints_it_measured(tmp_path):
    from daaf.demo import checkpoint_hashes, save_results, saved_results

    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"weights")
    record, hashes = tmp_path / "demo_results.json", checkpoint_hashes({"BoT": checkpoint})
    assert saved_results(record, hashes) is None  # never saved
    save_results(record, hashes, {"BoT": {"mAP": 12.5}})
    assert saved_results(record, hashes) == {"BoT": {"mAP": 12.5}}
    assert not record.with_name(record.name + ".partial").exists()
    checkpoint.write_bytes(b"trained on")  # a resumed training changed the checkpoint
    assert saved_results(record, checkpoint_hashes({"BoT": checkpoint})) is None
    for garbage in ("{", "[]", '{"checkpoints": %s, "results": {"BoT": 5}}', '{"checkpoints": %s}'):
        record.write_text(garbage.replace("%s", json.dumps(hashes)))
        assert saved_results(record, hashes) is None, garbage


def test_demo_refuses_a_checkpoint_that_would_run_code(
    tiny_dataset, tmp_path, malicious_pt, monkeypatch, cli
):
    """A shared --out folder: the "already trained?" check loads runs/BoT/checkpoints/last.pt."""
    import daaf.demo

    write, marker = malicious_pt
    out = tmp_path / "demo"
    mark_dir(out, DEMO_KIND)
    last = write(out / "runs" / "BoT" / "checkpoints" / "last.pt")
    store = tiny_dataset / "annotations"
    monkeypatch.setattr(daaf.demo, "make_data", lambda out, identities: (tiny_dataset, store))
    monkeypatch.setattr(
        daaf.demo, "label_data", lambda data, device, truth: (truth, "ground truth")
    )
    result = cli("demo", "--out", out, "--device", "cpu", ok=False)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] == f"Error: {last}: {REFUSED}"
    assert "[3/6] training" in result.output and "[4/6]" not in result.output
    assert not marker.exists()


class Generated(Exception):
    """Raised by a stand-in for the synthesis: the demo got as far as generating data."""


def tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def demo_until_synthesis(cli, out, monkeypatch):
    def generate(data, identities):
        raise Generated(sorted(p.name for p in data.iterdir()))

    monkeypatch.setattr("daaf.data.synthetic.generate.generate_dataset", generate)
    return cli("demo", "--out", out, "--device", "cpu", ok=False)


def test_demo_never_deletes_a_data_folder_it_did_not_make(tmp_path, monkeypatch, cli):
    """`daaf demo --out .` in a project whose data/ holds the names the demo looks for."""
    project = tmp_path / "project"
    (project / "data" / "annotations").mkdir(parents=True)
    (project / "data" / "annotations" / "notes.txt").write_text("keep me")
    (project / "data" / "Market-1501-v15.09.15").mkdir()
    before = tree(project)
    result = demo_until_synthesis(cli, project, monkeypatch)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: --out {project} holds files that daaf demo did not write (no .daaf marker of a "
        "demo); the demo writes only into a new or empty folder, or one of its own"
    ]
    assert tree(project) == before

    mark_dir(project, DEMO_KIND)  # even in a demo folder, data/ needs its own marker
    result = demo_until_synthesis(cli, project, monkeypatch)
    assert result.exit_code == 1 and "removing" not in result.output
    assert result.output.splitlines()[-1] == (
        f"Error: {(project / 'data').resolve()} was not made by daaf (no .daaf marker of a demo "
        "data); daaf deletes only folders it made: move it away yourself"
    )
    assert tree(project) == {**before, ".daaf": (project / ".daaf").read_bytes()}


def test_demo_makes_its_data_again_when_its_own_was_left_incomplete(tmp_path, monkeypatch, cli):
    out = tmp_path / "demo"
    mark_dir(out, DEMO_KIND)
    mark_dir(out / "data", DATA_KIND)
    (out / "data" / "half-written.png").write_bytes(b"")
    result = demo_until_synthesis(cli, out, monkeypatch)
    assert f"removing the incomplete {out / 'data'}" in result.output
    assert isinstance(result.exception, Generated)
    assert result.exception.args == ([".daaf"],)  # a fresh, marked folder


def test_a_second_demo_into_a_busy_out_is_refused(tmp_path, monkeypatch, cli):
    out = tmp_path / "demo"
    with folder_lock(out):
        result = demo_until_synthesis(cli, out, monkeypatch)
    assert result.exit_code == 1 and "is in use by another daaf run" in result.output
    assert not out.exists()


def test_demo_reuses_only_data_it_made(tmp_path, capsys):
    from daaf.demo import make_data

    data = tmp_path / "demo" / "data"
    mark_dir(data, DATA_KIND)
    (data / "annotations").mkdir()
    (data / "annotations" / "manifest.csv").write_text("")  # a complete synthesis
    assert make_data(tmp_path / "demo", 16) == (data, data / "annotations")
    assert f"reusing {data}" in capsys.readouterr().out
