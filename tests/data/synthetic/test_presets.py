"""`daaf synth --preset`: the default stays the original bytes; the misaligned preset draws what it
says (cut-off crops, strangers that are not in the mask) and tells it in conditions.csv."""

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from daaf.data.annotations import MANIFEST_COLUMNS, AnnotationStore, validate_store
from daaf.data.annotations.shards import hash_datasets
from daaf.data.datasets import build_dataset
from daaf.data.synthetic.generate import (
    CONDITIONS_NAME,
    SynthSpec,
    draw_job,
    generate_dataset,
    plan,
)
from daaf.data.synthetic.identity import Identity
from daaf.data.synthetic.presets import PRESETS
from daaf.data.synthetic.render import OCCLUDED_FRACTION, Pose, Variation, render_person
from daaf.data.synthetic.scene import HEIGHT, WIDTH, Camera
from daaf.utils.files import MARKER_NAME

from ...conftest import load_script

REPO = Path(__file__).resolve().parents[3]
MISALIGNED = PRESETS["misaligned"]
TINY = {"identities": 6, "cameras": 3, "images_per_identity": 6, "seed": 3}
FACE, ANKLES = [0, 1, 2, 3, 4], [15, 16]


def _strip(value):
    """JSON without ``daaf_version`` keys: the version is not part of what the generator draws."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k != "daaf_version"}
    return value


def output_digest(root: Path) -> str:
    """SHA-256 over every file under ``root``: images and CSVs by their bytes, shards by their
    ``content_sha256`` and labeler, store.json by its content (both without ``daaf_version``).
    daaf's folder markers (issue 18, after 260bc55) say who made a folder, not what was drawn.
    What schema 2 added to the store, each image's SHA-256, is left out (shards hashed as
    schema 1 hashes them, the manifest without its last column, ``image_sha256``): it is
    derived from the image bytes hashed here, and checked by ``test_the_store_records_...``."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MARKER_NAME):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        if path.suffix == ".h5":
            with h5py.File(path) as f:
                digest.update(hash_datasets(f, version=1).encode())
                labeler = _strip(json.loads(f.attrs["labeler"]))
                digest.update(json.dumps(labeler, sort_keys=True).encode())
        elif path.name == "store.json":
            info = _strip(json.loads(path.read_text()))
            digest.update(json.dumps(info, sort_keys=True).encode())
        elif path.name == "manifest.csv":
            lines = path.read_text().splitlines(keepends=True)
            assert lines[0] == ",".join(MANIFEST_COLUMNS) + "\n"  # image_sha256 last
            digest.update("".join(line.rsplit(",", 1)[0] + "\n" for line in lines).encode())
        else:
            digest.update(path.read_bytes())
    return digest.hexdigest()


# Computed with main's code before presets existed (commit 260bc55), in the project's venv.
ORIGINAL_OUTPUT = {
    ("--identities", "6", "--cameras", "2", "--images-per-identity", "4"): (
        "581cf9b83ed53467a5f1a5f8562fc7589e208f873523859c0cd42b89ce2d99cd"
    ),
    (
        "--identities",
        "6",
        "--cameras",
        "3",
        "--images-per-identity",
        "6",
        "--seed",
        "3",
        "--occlusion",
        "0.5",
    ): "641211388b1ab2a9f2fcc6adbb6c9099adc02c8aa8b153ff99abb8eb356ed833",
}


@pytest.mark.parametrize("args", list(ORIGINAL_OUTPUT))
@pytest.mark.parametrize("preset", [[], ["--preset", "default"]])
def test_default_preset_writes_the_original_generators_bytes(tmp_path, args, preset, cli):
    out = tmp_path / "data"
    cli("synth", "--out", out, "--workers", "1", *args, *preset)
    assert not (out / CONDITIONS_NAME).exists()
    assert output_digest(out) == ORIGINAL_OUTPUT[args]


def test_unknown_preset_is_one_line_naming_the_presets(tmp_path, cli):
    result = cli("synth", "--out", tmp_path / "x", "--preset", "nope", ok=False)
    assert result.exit_code == 1
    assert result.output == (
        "Error: unknown synth preset 'nope'; the presets are: default, misaligned\n"
    )
    assert not (tmp_path / "x").exists()


def test_the_default_presets_variation_is_neutral():
    for seed in range(20):
        identity = Identity.draw(np.random.default_rng([5, seed]))
        pose = Pose.draw(np.random.default_rng([6, seed]), identity)
        varied = pose.vary(identity, PRESETS["default"], np.random.default_rng([7, seed]))
        assert varied == pose  # every field, bit for bit
        assert pose.vary(identity, MISALIGNED, np.random.default_rng([7, seed])) != pose


@pytest.fixture(scope="module")
def misaligned(tmp_path_factory):
    out = tmp_path_factory.mktemp("misaligned")
    generate_dataset(out, SynthSpec(**TINY, preset="misaligned"), workers=2, progress=False)
    return out


def test_preset_is_reproducible_from_its_seed(misaligned, tmp_path):
    generate_dataset(
        tmp_path / "again", SynthSpec(**TINY, preset="misaligned"), workers=1, progress=False
    )
    assert output_digest(tmp_path / "again") == output_digest(misaligned)
    job = next(job for job in plan(*TINY.values()) if job.pid > 0)
    image, mask, *_ = draw_job(job, TINY["seed"], TINY["identities"], 0.3, MISALIGNED)
    other, other_mask, *_ = draw_job(job, TINY["seed"] + 1, TINY["identities"], 0.3, MISALIGNED)
    assert not np.array_equal(image, other) and not np.array_equal(mask, other_mask)
    store = AnnotationStore(misaligned / "annotations")
    assert store.labeler["preset"] == "misaligned"
    assert store.labeler["occlusion"] == MISALIGNED.occlusion


def test_conditions_table_agrees_with_what_was_drawn(misaligned):
    table = pd.read_csv(misaligned / CONDITIONS_NAME)
    dataset = build_dataset("market1501", misaligned)
    store = AnnotationStore(misaligned / "annotations")
    assert list(table["image_path"]) == list(store.manifest["image_path"])
    assert list(table["split"]) == list(store.manifest["split"])
    jobs = {job.path: job for job in plan(*TINY.values())}
    query = {s.path: s for s in dataset.query}
    for row in table.itertuples():
        _, mask, keypoints, shown = draw_job(
            jobs[row.image_path], TINY["seed"], TINY["identities"], MISALIGNED.occlusion, MISALIGNED
        )
        for column in (
            "cut_head",
            "cut_feet",
            "people_in_front",
            "people_behind",
            "occluder",
            "carrying",
            "crouching",
            "view",
        ):
            assert getattr(row, column) == getattr(shown, column), (row.image_path, column)
        assert row.occluded_fraction == pytest.approx(shown.occluded_fraction, abs=1e-4)
        assert row.occluded == int(shown.occluded_fraction >= OCCLUDED_FRACTION)
        assert row.misaligned == int(shown.misaligned)
        stored = store.get(row.image_path).keypoints
        assert row.visible_keypoints == int((stored[:, 2] > 0).sum())
        if row.cut_head:  # the crop's top edge is below the nose: no face keypoint is inside
            assert (stored[FACE, 2] == 0).all() and np.isnan(stored[FACE, :2]).all()
        if row.cut_feet:
            assert (stored[ANKLES, 2] == 0).all() and np.isnan(stored[ANKLES, :2]).all()
        if row.split == "query":
            assert query[row.image_path].pid == row.pid
    for column in ("misaligned", "cut_head", "cut_feet", "occluded"):
        assert 0 < table[column].sum() < len(table), column  # both kinds occur in a tiny set
    assert (table["people_in_front"] > 0).any() and (table["people_behind"] > 0).any()


def test_stored_keypoints_follow_the_schema(misaligned):
    """Inside the image, or not found (NaN, NaN, 0): what docs/annotations.md requires."""
    dataset = build_dataset("market1501", misaligned)
    assert validate_store(misaligned / "annotations", dataset) == []
    store = AnnotationStore(misaligned / "annotations")
    points = store.keypoints(list(store.manifest["image_path"]))
    found = points[..., 2] > 0
    assert np.isnan(points[~found][:, :2]).all() and (points[found][:, 2] == 1).all()
    x, y = points[found][:, 0], points[found][:, 1]
    assert (x >= 0).all() and (x < WIDTH).all() and (y >= 0).all() and (y < HEIGHT).all()


def _person(preset, seed: int, crowd=()):
    identity = Identity.draw(np.random.default_rng([7, seed]))
    camera = Camera.draw(np.random.default_rng([8, seed]))
    return render_person(
        identity,
        camera,
        np.random.default_rng([9, seed]),
        [],
        preset.occlusion,
        variation=Variation(preset, np.random.default_rng([10, seed]), crowd),
    )


@pytest.mark.parametrize("edge", ["head", "feet"])
def test_cut_off_crops_lose_the_keypoints_beyond_the_edge(edge):
    preset = replace(
        MISALIGNED,
        occlusion=0.0,
        people_behind=0.0,
        people_in_front=0.0,
        carry=0.0,
        cut_head=1.0 if edge == "head" else 0.0,
        cut_feet=1.0 if edge == "feet" else 0.0,
    )
    for seed in range(6):
        _, mask, keypoints, shown = _person(preset, seed)
        assert shown.misaligned and getattr(shown, f"cut_{edge}")
        lost, row = (FACE, 0) if edge == "head" else (ANKLES, -1)
        assert (keypoints[lost, 2] == 0).all() and np.isnan(keypoints[lost, :2]).all()
        assert mask[row].max() > 0  # the body goes on beyond the crop's edge
        assert (keypoints[:, 2] > 0).sum() >= 6  # the rest of the person is still there


def test_other_people_are_drawn_but_not_in_the_mask():
    preset = replace(MISALIGNED, occlusion=0.0, people_behind=3.0, people_in_front=1.0)
    strangers = tuple(Identity.draw(np.random.default_rng([11, i])) for i in range(4))
    hidden = 0
    for seed in range(6):
        alone_image, alone, alone_points, _ = _person(preset, seed)
        image, mask, points, shown = _person(preset, seed, crowd=strangers)
        assert shown.people_in_front == 1 and shown.people_behind >= 1
        assert (mask <= alone).all()  # strangers add nothing to the target's mask
        outside = alone == 0
        assert (
            np.abs(image.astype(int) - alone_image)[outside].max(-1) > 40
        ).any()  # but are drawn
        seen = points[:, 2] > 0
        assert not (seen & ~(alone_points[:, 2] > 0)).any()
        np.testing.assert_array_equal(points[seen], alone_points[seen])
        hidden += int((mask < alone).any())
        assert (shown.occluded_fraction > 0) == bool((mask < alone).any())
    assert hidden >= 3  # the passer in front hides part of the person in most images


def test_stats_script_prints_the_figures_of_each_root(misaligned, tmp_path):
    generate_dataset(tmp_path, SynthSpec(**TINY), workers=1, progress=False)
    script = load_script(REPO / "scripts" / "synth_stats.py")
    result = CliRunner().invoke(script.main, ["--json", str(tmp_path), str(misaligned)])
    assert result.exit_code == 0, result.output
    default, preset = (json.loads(line) for line in result.output.splitlines())
    assert (default["preset"], preset["preset"]) == ("default", "misaligned")
    assert default["constant_map_pck"] > preset["constant_map_pck"]
    assert "query_misaligned" in preset and "query_misaligned" not in default
    queries = pd.read_csv(misaligned / CONDITIONS_NAME).query("split == 'query'")
    assert preset["query_cut_head"] == queries["cut_head"].sum()
    text = CliRunner().invoke(script.main, [str(misaligned)]).output
    assert f"constant-map PCK@0.1h {preset['constant_map_pck']:.3f}" in text
