"""`daaf label` records the SHA-256 of every image it labels; an image replaced afterwards under
the same name is named by `daaf annotations validate --root`, and the command it gives relabels;
a store of schema 1 is not resumed, --overwrite relabels it."""

import hashlib
import json

import cv2
import h5py
import numpy as np
import pytest

from daaf.data.annotations import AnnotationStore, validate_store
from daaf.data.datasets import build_dataset
from daaf.errors import DaafError
from daaf.labeling.driver import LabelOptions, run_labeler

CORRUPT = "0002_c2s1_000301_01.jpg"


def label(labeler, dataset, out, **options):
    options = {"shard_size": 2, "workers": 1, "progress": False} | options
    return run_labeler(labeler, dataset, out, LabelOptions(**options))


def test_every_row_records_the_sha256_of_its_image_file(
    tmp_path, make_market_dataset, fake_labeler
):
    root = make_market_dataset(tmp_path / "data", corrupt=(CORRUPT,))
    dataset = build_dataset("market1501", root)
    label(fake_labeler(), dataset, tmp_path / "store")
    with AnnotationStore(tmp_path / "store") as store:
        assert store.schema_version == 2 and len(store) == 6
        for path, recorded, status in store.manifest[
            ["image_path", "image_sha256", "status"]
        ].values:
            expected = hashlib.sha256((dataset.image_dir / path).read_bytes()).digest()
            assert recorded == expected.hex() and store.get(path).image_sha256 == expected
            assert status == (2 if path.endswith(CORRUPT) else 0)  # unreadable: bytes hashed too
    with h5py.File(tmp_path / "store" / "train-00000.h5") as f:
        first = f["image_path"].asstr()[0]
        digest = f["image_sha256"][0].tobytes()
    assert digest == hashlib.sha256((dataset.image_dir / first).read_bytes()).digest()


def _replace(path):
    """Another image of the same name and size: what a tool or a re-crop leaves behind."""
    image = np.full((128, 64, 3), 90, np.uint8)
    cv2.rectangle(image, (8, 30), (40, 120), (220, 220, 220), -1)
    cv2.imwrite(str(path), image)


def test_a_replaced_image_is_named_and_the_relabel_command_fixes_it(
    tmp_path, market, fake_labeler, cli
):
    dataset = build_dataset("market1501", market)
    store = tmp_path / "store"
    label(fake_labeler(), dataset, store)
    replaced = dataset.query[0].path
    _replace(dataset.image_dir / replaced)
    result = cli("annotations", "validate", store, "--root", market, ok=False)
    assert result.exit_code == 1
    (problem,) = [line[2:] for line in result.stdout.splitlines() if line.startswith("- ")]
    relabel = (
        f"daaf label --dataset market1501 --root {dataset.image_dir} --out {store} --backend fake "
        "--splits train,query,gallery --shard-size 2 --overwrite"
    )
    assert problem == (
        f"1 of 6 images in {dataset.image_dir} are not the files they were labelled from (SHA-256 "
        "of the file differs from the store's image_sha256: replaced, re-cropped, or another "
        f"dataset's images of the same names), e.g. {replaced}; relabel: `{relabel}`"
    )
    assert f"INVALID: 1 problem(s) in {store}" in result.output

    with pytest.raises(DaafError, match=r"the labeled store does not validate: 1 of 6 images"):
        label(fake_labeler(), dataset, store)  # a plain re-run skips the complete shards
    label(fake_labeler(), dataset, store, overwrite=True)  # what the command says
    assert validate_store(store, dataset) == []
    assert (
        AnnotationStore(store).get(replaced).image_sha256
        == hashlib.sha256((dataset.image_dir / replaced).read_bytes()).digest()
    )


def test_a_schema_1_store_is_not_resumed_and_overwrite_relabels_it(tmp_path, market, fake_labeler):
    dataset = build_dataset("market1501", market)
    store = tmp_path / "store"
    label(fake_labeler(), dataset, store)
    info = json.loads((store / "store.json").read_text())
    (store / "store.json").write_text(json.dumps(info | {"schema_version": 1}))  # an older daaf's
    (store / "query-00000.h5").unlink()  # and an interrupted run
    before = sorted(p.name for p in store.iterdir())
    labeler = fake_labeler()
    with pytest.raises(DaafError) as refused:
        label(labeler, dataset, store)
    assert str(refused.value) == (
        f"{store / 'store.json'} was made with other settings: schema_version: 1 (store) vs 2 "
        "(this run); use another --out, or --overwrite to replace the store once the new one is "
        "complete"
    )
    assert labeler.batches == [] and sorted(p.name for p in store.iterdir()) == before
    label(fake_labeler(), dataset, store, overwrite=True)
    assert json.loads((store / "store.json").read_text())["schema_version"] == 2
    assert validate_store(store, dataset) == []
