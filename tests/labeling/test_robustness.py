"""A labeling run survives what a backend or an image can do to it: a malformed result is a
labeler error (status 3), an image OpenCV cannot read is unreadable (status 2), and a labeler
that fails on image after image (a broken CUDA context) stops the run in one line, resumably."""

import re

import numpy as np
import pytest
from PIL import Image

from daaf.data.annotations import AnnotationStore, validate_store
from daaf.data.datasets import build_dataset
from daaf.data.images import check_dataset_images, image_problem
from daaf.errors import DaafError
from daaf.labeling.driver import LabelOptions, run_labeler

WHITE = "bounding_box_train/0002_c2s1_000301_01.jpg"


def _statuses(out):
    with AnnotationStore(out) as store:
        return dict(zip(store.manifest["image_path"], store.manifest["status"], strict=True))


def _mask(value):
    def spoil(result):
        result.mask = value

    return spoil


def _set(name, value):
    return lambda result: setattr(result, name, value)


MALFORMED = {
    "mask of another shape": (_mask(np.ones((3, 3), np.float32)), "mask is a float32 array of"),
    "mask with NaN": (_mask(np.full((128, 64), np.nan, np.float32)), "mask values are not all"),
    "mask of strings": (_mask(np.full((128, 64), "x")), "mask is a <U1 array of shape"),
    "mask as logits": (_mask(np.full((128, 64), -3.0)), "mask values are not all in"),
    "keypoints (17, 2)": (_set("keypoints", np.zeros((17, 2))), "keypoints is a float64 array"),
    "keypoint score NaN": (
        lambda r: r.keypoints.__setitem__((0, 2), np.nan),
        "keypoint scores are not all in",
    ),
    "score None": (_set("score", None), "score None is not a number"),
    "status 7": (_set("status", 7), "status 7 is neither 0 (ok) nor 1"),
}


@pytest.mark.parametrize("spoil,problem", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_result_is_a_labeler_error_and_the_run_goes_on(
    tmp_path, market, fake_labeler, spoil, problem
):
    class Malformed(fake_labeler):
        def label(self, images):
            results = super().label(images)
            for image, result in zip(images, results, strict=True):
                if image.mean() > 250:  # the white image only
                    spoil(result)
            return results

    Image.new("RGB", (64, 128), "white").save(market / "Market-1501-v15.09.15" / WHITE)
    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    run = run_labeler(
        Malformed(), dataset, out, LabelOptions(batch_size=3, workers=0, progress=False)
    )
    assert re.fullmatch(f"malformed result: {re.escape(problem)}.*", run.errors[WHITE])
    statuses = _statuses(out)
    assert statuses.pop(WHITE) == 3 and set(statuses.values()) == {0}
    assert validate_store(out, dataset) == []


def test_a_wrong_number_of_results_is_retried_image_by_image(tmp_path, market, fake_labeler):
    class Short(fake_labeler):
        def label(self, images):
            return super().label(images)[:1]  # one result whatever the batch

    run = run_labeler(
        Short(),
        build_dataset("market1501", market),
        tmp_path / "s",
        LabelOptions(batch_size=3, workers=0, progress=False),
    )
    assert run.errors == {} and set(_statuses(tmp_path / "s").values()) == {0}


def test_an_image_pil_reads_and_opencv_does_not_is_unreadable(tmp_path, market, fake_labeler):
    path = market / "Market-1501-v15.09.15" / WHITE
    Image.new("RGB", (64, 128), "white").save(path, format="TGA")  # named .jpg
    assert image_problem(path) == "cannot be decoded: a TGA file, a format OpenCV does not read"
    dataset = build_dataset("market1501", market)
    with pytest.raises(DaafError, match="1 image.* cannot be decoded: .*0002_c2s1_000301_01.jpg"):
        check_dataset_images(dataset)  # training stops before it starts
    labeler = fake_labeler()
    run_labeler(
        labeler, dataset, tmp_path / "s", LabelOptions(batch_size=3, workers=1, progress=False)
    )
    statuses = _statuses(tmp_path / "s")
    assert statuses.pop(WHITE) == 2 and set(statuses.values()) == {0}
    assert sum(labeler.batches) == 5


def test_a_labeler_failing_image_after_image_stops_and_the_run_resumes(
    tmp_path, market, fake_labeler
):
    class Breaks(fake_labeler):
        """Labels two images, then fails on every image, as after a CUDA error."""

        def label(self, images):
            if len(self.batches) >= 2:
                raise RuntimeError("CUDA error: an illegal memory access was encountered")
            return super().label(images)

    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    with pytest.raises(DaafError) as info:
        run_labeler(
            Breaks(),
            dataset,
            out,
            LabelOptions(
                shard_size=1, batch_size=1, workers=0, progress=False, max_consecutive_errors=3
            ),
        )
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(
        "the labeler failed on 3 images in a row, last bounding_box_test/0002_c4s1_000601_01.jpg:"
        " RuntimeError: CUDA error: an illegal memory access was encountered ("
    )
    assert message.endswith(
        "stopped (the 4 shard(s) written are kept): fix the cause and re-run to resume, with "
        "--retry-errors to label the failed images again"
    )
    written = sorted(p.name for p in out.glob("*.h5"))
    assert written == ["query-00000.h5", "train-00000.h5", "train-00001.h5", "train-00002.h5"]
    first = (out / "train-00000.h5").read_bytes()

    labeler = fake_labeler()  # the cause is gone
    run = run_labeler(
        labeler,
        dataset,
        out,
        LabelOptions(shard_size=1, batch_size=1, workers=0, progress=False, retry_errors=True),
    )
    assert (run.shards_written, run.shards_skipped) == (4, 2)  # 2 status-3 shards, 2 missing
    assert set(_statuses(out).values()) == {0} and validate_store(out, dataset) == []
    assert (out / "train-00000.h5").read_bytes() == first


def test_a_labeler_failing_on_every_image_of_a_small_run_stops(tmp_path, market, fake_labeler):
    """Fewer images than --max-consecutive-errors, all failed (a broken CUDA context): one line
    and no manifest, not exit 0 with a store of labeler errors; with --overwrite, the old store
    is not replaced by it."""

    class Broken(fake_labeler):
        def label(self, images):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    dataset = build_dataset("market1501", market)
    out = tmp_path / "store"
    run_labeler(fake_labeler(), dataset, out, LabelOptions(workers=0, progress=False))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for overwrite in (True, False):
        target = out if overwrite else tmp_path / "new"
        with pytest.raises(DaafError) as info:
            run_labeler(
                Broken(),
                dataset,
                target,
                LabelOptions(shard_size=2, workers=0, progress=False, overwrite=overwrite, seed=1),
            )
        assert str(info.value).startswith(
            "the labeler failed on all 6 images it was given, last bounding_box_test/0007_c5s1_"
            "000651_01.jpg: RuntimeError: CUDA error: an illegal memory access was encountered ("
        )
        assert "stopped (the 4 shard(s) written are kept)" in str(info.value)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / "new" / "manifest.csv").exists()
