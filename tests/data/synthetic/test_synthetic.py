"""Synthetic pedestrians: layout, reproducibility, exact and correctly-sided annotations."""

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from daaf.cli import main
from daaf.data.annotations import AnnotationStore, validate_store
from daaf.data.datasets import build_dataset
from daaf.data.keypoints import KEYPOINT_NAMES
from daaf.data.synthetic.generate import generate_dataset
from daaf.data.synthetic.render import Camera, Identity, render


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    generate_dataset(
        out, identities=8, cameras=3, images_per_identity=5, seed=3, workers=2, progress=False
    )
    return out


def test_layout_counts_and_store(synth):
    dataset = build_dataset("synthetic", synth)
    summary = dataset.summary()
    assert summary["train"] == {"images": 20, "ids": 4, "cameras": summary["train"]["cameras"]}
    assert {s.pid for s in dataset.query} <= {s.pid for s in dataset.gallery} - {0}
    assert any(s.pid == 0 for s in dataset.gallery)
    junk = list((synth / "Market-1501-v15.09.15" / "bounding_box_test").glob("-1_*.jpg"))
    assert junk and all(
        f"bounding_box_test/{p.name}" not in {s.path for s in dataset.gallery} for p in junk
    )
    assert validate_store(synth / "annotations", dataset) == []


def test_same_seed_same_bytes_whatever_the_workers(synth, tmp_path):
    generate_dataset(
        tmp_path, identities=8, cameras=3, images_per_identity=5, seed=3, workers=1, progress=False
    )
    for path in sorted((synth / "Market-1501-v15.09.15").rglob("*.jpg")):
        twin = tmp_path / path.relative_to(synth)
        assert twin.read_bytes() == path.read_bytes(), path.name
    for shard in sorted((synth / "annotations").glob("*.h5")):
        with h5py.File(shard) as a, h5py.File(tmp_path / "annotations" / shard.name) as b:
            for name in a:
                np.testing.assert_array_equal(a[name][()], b[name][()])
            assert a.attrs["content_sha256"] == b.attrs["content_sha256"]


def test_visible_keypoints_lie_on_the_person(synth):
    store = AnnotationStore(synth / "annotations")
    for path in store.manifest["image_path"][:40]:
        record = store.get(path)
        mask = record.mask.astype(np.float32) / 255  # stored at 256x128 = 2x the image
        assert mask.mean() > 0.05
        for x, y, score in record.keypoints:
            if score > 0:
                patch = mask[
                    max(int(2 * y) - 6, 0) : int(2 * y) + 7, max(int(2 * x) - 6, 0) : int(2 * x) + 7
                ]
                assert patch.max() > 0.5


def test_front_view_left_shoulder_is_on_the_image_right():
    ident = Identity.draw(np.random.default_rng(0))
    cam = Camera.draw(np.random.default_rng(1))
    seen = 0
    for i in range(40):
        rng = np.random.default_rng([5, i])
        _, _, kps = render(ident, cam, rng, [ident.upper[0]], 0.0)
        if (
            np.isfinite(kps[KEYPOINT_NAMES.index("left_eye"), 0])
            and np.isfinite(kps[2, 0])
            and kps[0, 2] > 0
        ):
            if abs(kps[5, 0] - kps[6, 0]) > 8:  # a front view: shoulders wide apart, face visible
                assert (
                    kps[KEYPOINT_NAMES.index("left_shoulder"), 0]
                    > kps[KEYPOINT_NAMES.index("right_shoulder"), 0]
                )
                seen += 1
    assert seen > 0


def test_identities_differ_by_appearance_not_camera():
    """Torso colours are closer within an identity (across cameras) than across identities."""
    cams = [Camera.draw(np.random.default_rng([9, c])) for c in range(3)]
    means = {}
    for pid in range(6):
        ident = Identity.draw(np.random.default_rng([1, pid]))
        for c, cam in enumerate(cams):
            image, mask, kps = render(
                ident, cam, np.random.default_rng([pid, c]), [ident.upper[0]], 0.0
            )
            y0, y1 = int(kps[5, 1]), int(kps[11, 1])
            means[pid, c] = image[y0:y1][mask[y0:y1] > 0.9].mean(axis=0)
    within = np.mean([np.linalg.norm(means[p, 0] - means[p, c]) for p in range(6) for c in (1, 2)])
    across = np.mean(
        [np.linalg.norm(means[p, 0] - means[q, 0]) for p in range(6) for q in range(6) if p != q]
    )
    assert within < across


def test_cli(tmp_path):
    result = CliRunner().invoke(main, ["synth", "--out", str(tmp_path), "--identities", "4", "--cameras", "2",
                                       "--images-per-identity", "3", "--workers", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "train" in result.output and (tmp_path / "annotations" / "manifest.csv").is_file()
    bad = CliRunner().invoke(main, ["synth", "--out", str(tmp_path / "x"), "--identities", "2"])
    assert bad.exit_code == 1 and "at least 4 identities" in bad.output
