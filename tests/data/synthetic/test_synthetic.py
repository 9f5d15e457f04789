"""Synthetic pedestrians: Market layout and naming, reproducibility, exact and correctly-sided annotations."""

import hashlib
import json
import re
from collections import Counter
from dataclasses import replace

import h5py
import numpy as np
import pytest

from daaf.data.annotations import DEFAULT_MASK_SIZE, AnnotationStore, encode_mask, validate_store
from daaf.data.datasets import build_dataset
from daaf.data.datasets.market1501 import parse_market_name
from daaf.data.keypoints import KEYPOINT_NAMES
from daaf.data.synthetic.generate import (
    CREATED_UTC,
    FOLDERS,
    MARKET_DIR,
    SynthSpec,
    draw_job,
    generate_dataset,
    plan,
)
from daaf.data.synthetic.identity import Identity
from daaf.data.synthetic.render import VIEWS, Pose, render_person
from daaf.data.synthetic.scene import Camera
from daaf.errors import DaafError

ARGS = {"identities": 8, "cameras": 3, "images_per_identity": 6, "seed": 3, "occlusion": 0.3}
MARKET_NAME = re.compile(r"^(-1|\d{4})_c(\d)s(\d)_(\d{6})_(\d{2})\.jpg$")
K = {name: i for i, name in enumerate(KEYPOINT_NAMES)}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    generate_dataset(out, SynthSpec(**ARGS), workers=2, progress=False)
    return out


def test_counts_per_split_follow_the_plan(synth):
    jobs = plan(ARGS["identities"], ARGS["cameras"], ARGS["images_per_identity"], ARGS["seed"])
    dataset = build_dataset("market1501", synth)
    on_disk = Counter(job.folder for job in jobs if job.pid >= 0)
    assert len(dataset.train) == on_disk[FOLDERS["train"]] == 4 * ARGS["images_per_identity"]
    assert len(dataset.query) == on_disk[FOLDERS["query"]]
    assert len(dataset.gallery) == on_disk[FOLDERS["gallery"]]
    assert dataset.num_train_pids == 4 and len({s.pid for s in dataset.query}) == 4
    assert not {s.pid for s in dataset.query} & {
        job.pid for job in jobs if job.folder == FOLDERS["train"]
    }
    # Market style: one query per camera the identity is in, and a positive in another camera.
    per_camera = Counter((s.pid, s.camid) for s in dataset.query)
    assert set(per_camera.values()) == {1}
    for q in dataset.query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in dataset.gallery)
    assert sum(s.pid == 0 for s in dataset.gallery) >= 2  # distractors kept
    junk = list((synth / MARKET_DIR / FOLDERS["gallery"]).glob("-1_*.jpg"))
    assert len(junk) >= 2 and not {f"{FOLDERS['gallery']}/{p.name}" for p in junk} & {
        s.path for s in dataset.gallery
    }


def test_file_names_are_market_names(synth):
    jobs = plan(ARGS["identities"], ARGS["cameras"], ARGS["images_per_identity"], ARGS["seed"])
    files = sorted((synth / MARKET_DIR).rglob("*.jpg"))
    assert [f"{p.parent.name}/{p.name}" for p in files] == sorted(job.path for job in jobs)
    for path, job in zip(files, sorted(jobs, key=lambda j: j.path), strict=True):
        assert MARKET_NAME.match(path.name), path.name
        assert parse_market_name(path.stem) == (job.pid, job.camera - 1)
    assert build_dataset("market1501", synth).skipped == {}


def test_every_identity_appears_in_several_cameras():
    jobs = plan(60, 6, 10, 0)
    cameras = {}
    for job in jobs:
        if job.pid > 0:
            cameras.setdefault(job.pid, set()).add(job.camera)
    assert min(len(c) for c in cameras.values()) >= 2
    assert len({frozenset(c) for c in cameras.values()}) > 10  # cameras do not encode identity


def test_store_covers_exactly_the_loader_in_its_order(synth):
    dataset = build_dataset("market1501", synth)
    assert validate_store(synth / "annotations", dataset) == []
    store = AnnotationStore(synth / "annotations")
    assert store.mask_size == DEFAULT_MASK_SIZE and store.dataset == "synthetic"
    assert (
        store.labeler["backend"] == "synthetic-ground-truth"
        and store.labeler["seed"] == ARGS["seed"]
    )
    for split in ("train", "query", "gallery"):
        rows = store.manifest[store.manifest["split"] == split]
        assert list(rows["image_path"]) == [s.path for s in dataset.split(split)]
    with h5py.File(synth / "annotations" / "train-00000.h5") as f:
        assert f.attrs["created_utc"] == CREATED_UTC
        assert np.all(f["status"][()] == 0) and np.all(f["person_score"][()] == 1.0)


def test_the_store_records_the_sha256_of_every_image_file(synth):
    """Each row's image_sha256 (shard and manifest) is the SHA-256 of the JPEG written for it."""
    store = AnnotationStore(synth / "annotations")
    assert store.schema_version == 2 and len(store) > 0
    rows = zip(store.manifest["image_path"], store.manifest["image_sha256"], strict=True)
    for path, recorded in rows:
        expected = hashlib.sha256((synth / MARKET_DIR / path).read_bytes()).digest()
        assert recorded == expected.hex() and store.get(path).image_sha256 == expected, path


def test_same_seed_same_bytes_whatever_the_workers(synth, tmp_path):
    generate_dataset(tmp_path, SynthSpec(**ARGS), workers=1, progress=False)
    images = sorted(p.relative_to(synth) for p in (synth / MARKET_DIR).rglob("*.jpg"))
    assert images == sorted(p.relative_to(tmp_path) for p in (tmp_path / MARKET_DIR).rglob("*.jpg"))
    for path in images:
        assert (tmp_path / path).read_bytes() == (synth / path).read_bytes(), path
    shards = sorted(p.name for p in (synth / "annotations").glob("*.h5"))
    assert shards == sorted(p.name for p in (tmp_path / "annotations").glob("*.h5"))
    for name in shards:
        with (
            h5py.File(synth / "annotations" / name) as a,
            h5py.File(tmp_path / "annotations" / name) as b,
        ):
            assert set(a) == set(b)
            for key in a:
                np.testing.assert_array_equal(a[key][()], b[key][()])
            assert dict(a.attrs).keys() == dict(b.attrs).keys()
            assert a.attrs["content_sha256"] == b.attrs["content_sha256"]
    manifest = "annotations/manifest.csv"
    assert (tmp_path / manifest).read_bytes() == (synth / manifest).read_bytes()


def test_stored_annotations_are_the_rendered_ones(synth):
    jobs = plan(ARGS["identities"], ARGS["cameras"], ARGS["images_per_identity"], ARGS["seed"])
    store = AnnotationStore(synth / "annotations")
    for job in [j for j in jobs if j.pid > 0][::5]:
        _, mask, keypoints, _ = draw_job(job, ARGS["seed"], ARGS["identities"], ARGS["occlusion"])
        record = store.get(job.path)
        np.testing.assert_array_equal(record.mask, encode_mask(mask))
        np.testing.assert_array_equal(record.keypoints, keypoints)
        ys, xs = np.nonzero(mask)
        np.testing.assert_array_equal(
            record.person_box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        )


def test_visible_keypoints_lie_on_the_mask(synth):
    store = AnnotationStore(synth / "annotations")
    occluded = 0
    for path in store.manifest["image_path"]:
        record = store.get(path)
        assert record.mask.max() == 255 and record.mask.mean() > 0.05 * 255
        visible = record.keypoints[:, 2] > 0
        assert np.all(np.isnan(record.keypoints[~visible, :2])) and np.all(
            record.keypoints[visible, 2] == 1
        )
        occluded += int((~visible[5:]).any())  # a body joint hidden: an occluder
        scale = record.mask.shape[0] / record.image_size[0]
        for x, y in record.keypoints[visible, :2]:
            row, col = int(y * scale), int(x * scale)
            patch = record.mask[max(row - 2, 0) : row + 3, max(col - 2, 0) : col + 3]
            assert patch.max() > 0, (path, x, y)
    assert occluded > 0  # occlusion 0.3 hides some joints


@pytest.mark.parametrize("view", list(VIEWS))
def test_left_and_right_are_the_persons(view):
    identity = Identity.draw(np.random.default_rng(0))
    camera = Camera.draw(np.random.default_rng(1))
    rng = np.random.default_rng(2)
    pose = replace(Pose.draw(rng, identity), view=view, yaw=VIEWS[view])
    image, mask, kp, _ = render_person(identity, camera, rng, [], 0.0, pose=pose)
    x = {name: kp[K[name], 0] for name in KEYPOINT_NAMES}
    if view == "front":  # facing the camera: the person's left is on the image's right
        assert x["left_shoulder"] > x["right_shoulder"] and x["left_hip"] > x["right_hip"]
        assert x["left_eye"] > x["nose"] > x["right_eye"] and x["left_ear"] > x["right_ear"]
    elif view == "back":
        assert x["left_shoulder"] < x["right_shoulder"] and x["left_hip"] < x["right_hip"]
        assert (
            np.isnan([x["nose"], x["left_eye"], x["right_eye"]]).all()
            and x["left_ear"] < x["right_ear"]
        )
    else:  # side views: the near eye and ear show, the nose points the way the person faces
        near, far = ("left", "right") if view == "left" else ("right", "left")
        assert np.isfinite([x[f"{near}_eye"], x[f"{near}_ear"]]).all()
        assert np.isnan([x[f"{far}_eye"], x[f"{far}_ear"]]).all()
        assert (x["nose"] < x[f"{near}_ear"]) == (view == "left")


def test_identities_differ_by_appearance_not_by_camera():
    """Mean torso colour is closer within an identity (across cameras) than across identities."""
    cameras = [Camera.draw(np.random.default_rng([9, c])) for c in range(3)]
    means = {}
    for pid in range(8):
        identity = Identity.draw(np.random.default_rng([1, pid]))
        for c, camera in enumerate(cameras):
            rng = np.random.default_rng([pid, c])
            image, mask, kp, _ = render_person(identity, camera, rng, [], 0.0)
            top, bottom = int(np.nanmax(kp[[5, 6], 1])) + 2, int(np.nanmin(kp[[11, 12], 1])) - 2
            torso = mask[top:bottom] > 0.99
            torso[:, : int(np.nanmin(kp[[5, 6, 11, 12], 0]))] = False
            torso[:, int(np.nanmax(kp[[5, 6, 11, 12], 0])) + 1 :] = False
            means[pid, c] = image[top:bottom][torso].mean(axis=0)
    within = np.mean(
        [
            np.linalg.norm(means[p, a] - means[p, b])
            for p in range(8)
            for a, b in ((0, 1), (0, 2), (1, 2))
        ]
    )
    across = np.mean(
        [
            np.linalg.norm(means[p, c] - means[q, c])
            for p in range(8)
            for q in range(8)
            if p != q
            for c in range(3)
        ]
    )
    assert within < 0.6 * across


def test_cli_writes_a_dataset_the_market_loader_checks(tmp_path, cli):
    out = tmp_path / "data"
    args = [
        "synth",
        "--out",
        str(out),
        "--identities",
        "4",
        "--cameras",
        "2",
        "--images-per-identity",
        "4",
        "--workers",
        "1",
    ]
    result = cli(*args)
    assert re.search(r"train\s+8 images\s+2 ids", result.output)
    check = cli("datasets", "check", "market1501", "--root", out, "--json")
    assert json.loads(check.output) == build_dataset("market1501", out).summary()
    assert json.loads(check.output)["train"] == {"images": 8, "ids": 2, "cameras": 2}
    again = cli(*args, ok=False)  # never mixes into an existing dataset
    assert again.exit_code == 1 and "not empty" in again.output
    bad = cli("synth", "--out", tmp_path / "x", "--identities", "2", ok=False)
    assert bad.exit_code == 2 and "2 is not in the range 4<=x<=10000" in bad.output


def test_bad_occlusion_is_refused(tmp_path):
    with pytest.raises(DaafError, match="probability"):
        generate_dataset(tmp_path, SynthSpec(identities=4, occlusion=1.5))
