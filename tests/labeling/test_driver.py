"""The labeling loop: shards, status codes, resume by skipping, and the torchrun split of shards."""

import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from daaf.data.annotations import AnnotationStore, validate_store
from daaf.data.datasets import build_dataset
from daaf.labeling.driver import LabelOptions, assign_shards, run_labeler

from .conftest import label_args


@pytest.mark.parametrize("jobs,world", [(7, 2), (5, 3), (2, 4), (0, 2), (9, 1)])
def test_assign_shards_covers_every_shard_exactly_once(jobs, world):
    shares = [assign_shards(list(range(jobs)), world, rank) for rank in range(world)]
    assert sorted(j for share in shares for j in share) == list(range(jobs))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_corrupt_image_gets_status_2_and_the_run_goes_on(
    tmp_path, make_market_dataset, fake_labeler
):
    root = make_market_dataset(tmp_path / "data", corrupt=("0002_c2s1_000301_01.jpg",))
    dataset = build_dataset("market1501", root)
    out = tmp_path / "store"
    labeler = fake_labeler()
    run = run_labeler(
        labeler, dataset, out, LabelOptions(shard_size=2, batch_size=2, workers=1, progress=False)
    )

    assert validate_store(out, dataset) == []
    store = AnnotationStore(out)
    status = dict(zip(store.manifest["image_path"], store.manifest["status"], strict=True))
    assert status.pop("bounding_box_train/0002_c2s1_000301_01.jpg") == 2
    assert set(status.values()) == {0}
    ann = store.get("bounding_box_train/0002_c1s1_000451_03.jpg")
    assert ann.image_size == (128, 64)
    np.testing.assert_allclose(ann.person_box, [16, 16, 49, 113], atol=2)  # the bright rectangle
    assert ann.mask.shape == (256, 128) and ann.mask[128, 64] > 200 and ann.mask[5, 5] < 50
    bad = store.get("bounding_box_train/0002_c2s1_000301_01.jpg")
    assert bad.mask.max() == 0 and np.isnan(bad.keypoints[:, :2]).all()
    store.close()
    # train: 3 images -> shards of 2 and 1; query 1; gallery 2: batches never cross shards
    assert run.shards_written == 4 and run.images_labeled == 6
    assert labeler.batches == [1, 1, 1, 2]  # the unreadable image never reaches the labeler


def test_rerun_skips_complete_shards_and_rewrites_a_deleted_one(tmp_path, market, fake_labeler):
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    run_labeler(fake_labeler(), dataset, out, LabelOptions(shard_size=2, workers=0, progress=False))
    with h5py.File(out / "train-00001.h5") as f:
        before = {name: f[name][()] for name in ("mask", "keypoints", "person_box")}
    (out / "train-00001.h5").unlink()

    labeler = fake_labeler()
    run = run_labeler(labeler, dataset, out, LabelOptions(shard_size=2, workers=0, progress=False))
    assert (run.shards_written, run.shards_skipped, run.images_labeled) == (1, 3, 1)
    with h5py.File(out / "train-00001.h5") as f:
        for name, value in before.items():
            np.testing.assert_array_equal(f[name][()], value)
    assert validate_store(out, dataset) == []


LAUNCHER = """
import sys
sys.path.insert(0, {tests!r})
from conftest import FakeLabeler
from daaf.data.datasets import build_dataset
from daaf.labeling.driver import LabelOptions, run_labeler
from daaf.utils import distributed

class Recording(FakeLabeler):
    def label(self, images):
        with open({log!r} + str(distributed.rank()), "a") as f:
            f.write(f"{{len(images)}}\\n")
        return super().label(images)

run_labeler(Recording(), build_dataset("market1501", {root!r}), {out!r},
            LabelOptions(shard_size=1, workers=0, progress=False))
distributed.cleanup_distributed()
"""


def test_two_torchrun_processes_label_every_shard_exactly_once(tmp_path, market):
    out, log = tmp_path / "store", tmp_path / "log"
    script = tmp_path / "launch.py"
    tests = os.path.dirname(__file__)
    script.write_text(
        textwrap.dedent(LAUNCHER.format(tests=tests, log=str(log), root=str(market), out=str(out)))
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(script),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    per_rank = [sum(map(int, (tmp_path / f"log{r}").read_text().split())) for r in range(2)]
    assert per_rank == [3, 3]  # 6 one-image shards dealt round-robin
    assert validate_store(out, build_dataset("market1501", market)) == []
    assert len(AnnotationStore(out)) == 6


def test_truncated_jpeg_is_unreadable_and_the_report_names_it(
    tmp_path, make_market_dataset, fake_labeler
):
    from daaf.labeling.report import build_report, format_report

    root = make_market_dataset(tmp_path / "data", corrupt=("0002_c2s1_000301_01.jpg",))
    truncated = root / "Market-1501-v15.09.15" / "bounding_box_test" / "0007_c5s1_000651_01.jpg"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    dataset = build_dataset("market1501", root)
    out = tmp_path / "store"
    run = run_labeler(
        fake_labeler(), dataset, out, LabelOptions(shard_size=2, workers=0, progress=False)
    )
    with AnnotationStore(out) as store:
        report = build_report(store.manifest, run, {"backend": "fake"})
    assert report["unreadable"] == [
        "bounding_box_train/0002_c2s1_000301_01.jpg",
        "bounding_box_test/0007_c5s1_000651_01.jpg",
    ]
    assert report["splits"]["gallery"] == {
        "images": 2,
        "ok": 1,
        "no_person": 0,
        "unreadable": 1,
        "labeler_error": 0,
    }
    table = format_report(report)
    assert "unreadable images (2, status 2, not labeled):" in table
    assert "\n  bounding_box_test/0007_c5s1_000651_01.jpg\n" in table


class FailsOnWhite:
    """The conftest's fake labeler, but a white image makes the whole batch raise."""

    def __init__(self, base):
        self.base, self.batches = base, []
        self.name = "fake"

    def describe(self):
        return self.base.describe()

    def to(self, device):
        return self

    def label(self, images):
        self.batches.append(len(images))
        if any(image.min() > 240 for image in images):
            raise AssertionError("keypoint logits too large\nsecond line")
        return self.base.label(images)


def test_an_image_the_labeler_raises_on_gets_status_3_and_the_run_goes_on(
    tmp_path, market, fake_labeler, monkeypatch, cli
):
    import json

    import cv2

    from daaf.labeling.backends import LABELERS  # the backends registered first

    white = "bounding_box_train/0002_c2s1_000301_01.jpg"
    cv2.imwrite(str(market / "Market-1501-v15.09.15" / white), np.full((128, 64, 3), 255, np.uint8))
    labeler = FailsOnWhite(fake_labeler())
    monkeypatch.setitem(LABELERS, "torchvision", lambda **options: labeler)
    out = tmp_path / "store"
    args = label_args(market, out, "--workers", "0", "--batch-size", "3")
    result = cli(*args)

    assert labeler.batches == [3, 1, 1, 1, 1, 2]  # train raised, then one by one; query, gallery
    report = json.loads((out / "label_report.json").read_text())
    [failed] = report["labeler_errors"]
    assert failed["image_path"] == white
    assert failed["error"].startswith(
        "AssertionError: keypoint logits too large (test_driver.py:"
    ) and failed["error"].endswith(" in label)")
    assert report["splits"]["train"] == {
        "images": 3,
        "ok": 2,
        "no_person": 0,
        "unreadable": 0,
        "labeler_error": 1,
    }
    assert f"labeler errors (1, status 3, not labeled):\n  {white}: AssertionError" in result.output
    with AnnotationStore(out) as store:
        status = dict(zip(store.manifest["image_path"], store.manifest["status"], strict=True))
        assert status.pop(white) == 3 and set(status.values()) == {0}
        bad = store.get(white)
        assert bad.mask.max() == 0 and np.isnan(bad.keypoints[:, :2]).all()
        assert bad.image_size == (128, 64)
    cli("annotations", "validate", out)

    again = cli(*args, ok=False)  # a plain re-run resumes: complete shards stay
    assert again.exit_code == 0 and labeler.batches == [3, 1, 1, 1, 1, 2]
    assert f"{white}: raised in an earlier run" in again.output
    labeler.base.batches, labeler.batches = [], []
    labeler.label = labeler.base.label  # the cause is gone (e.g. a CUDA out-of-memory)
    cli(*args, "--retry-errors")
    assert labeler.base.batches == [3]  # only the train shard, the one holding status 3
    report = json.loads((out / "label_report.json").read_text())
    assert report["labeler_errors"] == [] and report["splits"]["train"]["ok"] == 3
    assert (report["shards_written"], report["shards_skipped"]) == (1, 2)
    with AnnotationStore(out) as store:
        assert set(store.manifest["status"]) == {0}
    cli("annotations", "validate", out)


def test_every_labelers_keypoints_are_stored_inside_the_image(tmp_path, market, fake_labeler):
    class Outside(fake_labeler):
        def label(self, images):
            results = super().label(images)
            for result in results:
                result.keypoints[0, :2] = (-28.0, 10.0)  # left of the image
                result.keypoints[1, :2] = (64.0, 10.0)  # on the right border: outside
                result.keypoints[2, :2] = (63.5, 127.5)  # inside the last pixel
            return results

    out = tmp_path / "store"
    run_labeler(
        Outside(), build_dataset("market1501", market), out, LabelOptions(workers=0, progress=False)
    )
    with AnnotationStore(out) as store:
        keypoints = store.keypoints(list(store.manifest["image_path"]))
    assert np.isnan(keypoints[:, :2, :2]).all() and (keypoints[:, :2, 2] == 0).all()
    np.testing.assert_array_equal(keypoints[:, 2], np.tile(np.float32([63.5, 127.5, 0.8]), (6, 1)))
    assert validate_store(out) == []


def test_a_user_error_from_the_labeler_stops_the_run(tmp_path, market, fake_labeler):
    from daaf.errors import DaafError

    labeler = fake_labeler()
    labeler.label = lambda images: (_ for _ in ()).throw(DaafError("weights.pth: wrong model"))
    with pytest.raises(DaafError, match="weights.pth: wrong model"):
        run_labeler(
            labeler,
            build_dataset("market1501", market),
            tmp_path / "s",
            LabelOptions(workers=0, progress=False),
        )
