"""`daaf label`, random weights: kill -9 + re-run == uninterrupted run; torchrun split."""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

DATASETS = (
    "image_path",
    "pid",
    "camid",
    "image_size",
    "mask",
    "keypoints",
    "person_box",
    "person_score",
    "status",
    "image_sha256",
)


def label_command(root, out, *extra):
    return [
        "-m",
        "daaf.cli",
        "label",
        "--dataset",
        "market1501",
        "--root",
        str(root),
        "--out",
        str(out),
        "--weights",
        "random",
        "--min-size",
        "128",
        "--shard-size",
        "2",
        "--batch-size",
        "1",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--seed",
        "7",
        *extra,
    ]


def shard_contents(store):
    contents = {}
    for path in sorted(store.glob("*.h5")):
        with h5py.File(path) as f:
            contents[path.name] = {name: f[name][()] for name in DATASETS}
    return contents


def assert_same_datasets(a, b):
    assert a.keys() == b.keys()
    for shard in a:
        for name in DATASETS:
            left, right = a[shard][name], b[shard][name]
            assert left.dtype == right.dtype, (shard, name)
            if left.dtype == object:  # variable-length strings: compare the values, not pointers
                assert left.tolist() == right.tolist(), (shard, name)
            else:
                assert left.tobytes() == right.tobytes(), (shard, name)


@pytest.mark.slow
def test_kill_9_then_rerun_gives_the_same_bytes_as_an_uninterrupted_run(tmp_path, market):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    subprocess.run(
        [sys.executable, *label_command(market, whole)], env=env, check=True, capture_output=True
    )

    process = subprocess.Popen(
        [sys.executable, *label_command(market, resumed)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while not (resumed / "train-00000.h5").exists():
        assert process.poll() is None and time.time() < deadline, "no shard before the run ended"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (resumed / "manifest.csv").exists()  # really interrupted
    assert len(list(resumed.glob("*.h5"))) < len(list(whole.glob("*.h5")))

    result = subprocess.run(
        [sys.executable, *label_command(market, resumed)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert (
        "skipped (already complete) " in result.stdout
        and "skipped (already complete) 0" not in result.stdout
    )
    assert_same_datasets(shard_contents(whole), shard_contents(resumed))


@pytest.mark.slow
def test_torchrun_two_processes_random_weights_cover_every_shard_once(tmp_path, market):
    from daaf.data.annotations import AnnotationStore, validate_store
    from daaf.data.datasets import build_dataset

    env = dict(os.environ, OMP_NUM_THREADS="1")
    single, double = tmp_path / "single", tmp_path / "double"
    subprocess.run(
        [sys.executable, *label_command(market, single)], env=env, check=True, capture_output=True
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            *label_command(market, double),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert validate_store(double, build_dataset("market1501", market)) == []
    store = AnnotationStore(double)
    assert len(store) == 6 and not store.manifest["image_path"].duplicated().any()
    assert_same_datasets(shard_contents(single), shard_contents(double))
    np.testing.assert_array_equal(store.status(list(store.manifest["image_path"])), 0)
