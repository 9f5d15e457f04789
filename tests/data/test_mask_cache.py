"""The decoded-mask cache: the store's masks, row for row, mapped by every worker, cleaned up
(also on SIGTERM, and after a kill by the next cache), one per node under torchrun."""

import gc
import io
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from daaf.data.config import DataConfig
from daaf.data.datasets import build_dataset
from daaf.data.mask_cache import MaskCache
from daaf.data.train_set import TrainSet, open_store_for
from daaf.errors import DaafError
from tests.test_processes import AS_A_SHELL_STARTS_IT


def test_rows_equal_the_stores_masks_and_the_file_goes_with_its_maker(tiny_dataset):
    dataset = build_dataset("market1501", tiny_dataset)
    store = open_store_for(dataset.train, tiny_dataset / "annotations", "market1501")
    names = [sample.path for sample in dataset.train][::-1]  # not the store's order
    cache = MaskCache(store, names)
    expected = store.masks(names)
    assert cache.rows.shape == expected.shape and not cache.rows.flags.writeable
    assert np.array_equal(cache.rows, expected) and expected.any()
    copy = pickle.loads(pickle.dumps(cache))  # what a spawned worker gets: the path, not rows
    assert len(pickle.dumps(cache)) < 1000 and np.array_equal(copy[5], expected[5])
    path = cache.path
    del cache, copy
    gc.collect()
    assert not path.exists()


def test_cached_and_stored_masks_make_the_same_samples(tiny_dataset):
    dataset = build_dataset("market1501", tiny_dataset)
    store = open_store_for(dataset.train, tiny_dataset / "annotations", "market1501")

    def train_set(cache: bool) -> TrainSet:
        cfg = DataConfig(height=64, width=32, pad=4, cache_masks=cache)
        return TrainSet(dataset.train, dataset.image_dir, cfg, store, 3, masks=True)

    cached, stored = train_set(True), train_set(False)
    assert cached._masks is not None and stored._masks is None
    for index in range(len(dataset.train)):
        a, b = cached[index], stored[index]
        assert a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)
    workers = DataLoader(cached, batch_size=8, num_workers=1, multiprocessing_context="spawn")
    batches = list(workers)
    assert torch.equal(batches[1]["masks"], torch.stack([stored[i]["masks"] for i in range(8, 16)]))


def test_a_cache_that_cannot_be_written_says_what_to_do(tiny_dataset, tmp_path, monkeypatch):
    import daaf.data.mask_cache as mask_cache

    dataset = build_dataset("market1501", tiny_dataset)
    store = open_store_for(dataset.train, tiny_dataset / "annotations", "market1501")
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    written = []

    class FullDisk(io.FileIO):
        """Takes the .npy header, then runs out of space, as a full TMPDIR would."""

        def write(self, data):
            if written:
                raise OSError(28, os.strerror(28))
            written.append(len(data))
            return super().write(data)

    monkeypatch.setattr(mask_cache, "open", FullDisk, raising=False)
    with pytest.raises(DaafError, match="No space left on device; .*data.cache_masks=false"):
        MaskCache(store, [sample.path for sample in dataset.train])
    gc.collect()
    assert written and not any(folder.iterdir())  # nothing half-made left behind


def _cache_files(folder):
    return sorted(p.name for p in folder.glob("daaf-masks-*.npy"))


TERMINATED = """
import signal, sys, time
from daaf.data.datasets import build_dataset
from daaf.data.mask_cache import MaskCache
from daaf.data.train_set import open_store_for

def previous(signum, frame):  # a handler that was there before: it still runs
    open({marker!r}, "w").write("ran")

signal.signal(signal.SIGTERM, previous)
dataset = build_dataset("market1501", {root!r})
store = open_store_for(dataset.train, {root!r} + "/annotations", "market1501")
cache = MaskCache(store, [sample.path for sample in dataset.train])
print(cache.path, flush=True)
time.sleep(120)
"""


def test_sigterm_removes_the_cache_and_runs_the_previous_handler(tiny_dataset, tmp_path):
    folder, marker = tmp_path / "tmp", tmp_path / "marker"
    folder.mkdir()
    script = TERMINATED.format(marker=str(marker), root=str(tiny_dataset))
    env = dict(os.environ, TMPDIR=str(folder), OMP_NUM_THREADS="1")
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        path = Path(child.stdout.readline().strip())
        assert path.parent == folder and path.is_file()
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        child.kill()
    assert marker.read_text() == "ran"
    assert _cache_files(folder) == []


def test_stale_caches_of_dead_processes_of_this_host_are_swept(tiny_dataset, tmp_path, monkeypatch):
    from daaf.data.mask_cache import _host

    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead, alive, host = int(gone.stdout), os.getpid(), _host()
    npy = b"\x93NUMPY\x01\x00"
    files = {
        f"daaf-masks-{host}-{dead}-abc_123x.npy": npy,  # a killed run's: swept
        f"daaf-masks-{host}-{alive}-abc_123x.npy": npy,  # a live process's
        f"daaf-masks-otherhost-{dead}-abc_123x.npy": npy,  # another host's (a shared folder)
        f"daaf-masks-{host}-{dead}-abc_123x.npy.bak": npy,  # not daaf's name
        "daaf-masks-notes.npy": npy,
        f"daaf-masks-{host}-{dead}-zzz.npy": b"the user's own data",  # not a .npy file
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    dataset = build_dataset("market1501", tiny_dataset)
    store = open_store_for(dataset.train, tiny_dataset / "annotations", "market1501")
    cache = MaskCache(store, [sample.path for sample in dataset.train])
    left = {p.name for p in folder.iterdir()} - {cache.path.name}
    assert left == set(files) - {f"daaf-masks-{host}-{dead}-abc_123x.npy"}


def test_a_nodes_other_ranks_map_local_rank_0s_cache(tiny_dataset, tmp_path, monkeypatch):
    from daaf.utils import distributed

    dataset = build_dataset("market1501", tiny_dataset)
    store = open_store_for(dataset.train, tiny_dataset / "annotations", "market1501")
    names = [sample.path for sample in dataset.train]
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    leader = MaskCache(store, names)
    monkeypatch.setattr(distributed, "is_local_leader", lambda: False)
    monkeypatch.setattr(distributed, "from_local_leader", lambda value: (leader.path, None))
    follower = MaskCache(store, names)
    assert follower.path == leader.path and _cache_files(folder) == [leader.path.name]
    assert np.array_equal(follower.rows, store.masks(names))
    del follower
    gc.collect()
    assert leader.path.is_file()  # only its maker removes it
    monkeypatch.setattr(distributed, "from_local_leader", lambda value: (None, "disk full"))
    with pytest.raises(DaafError, match="^disk full$"):  # local rank 0's failure, on every rank
        MaskCache(store, names)


TORCHRUN = """
import os, sys
from daaf.data.datasets import build_dataset
from daaf.data.mask_cache import MaskCache
from daaf.data.train_set import open_store_for
from daaf.utils import distributed
import torch

distributed.init_distributed(torch.device("cpu"))
dataset = build_dataset("market1501", {root!r})
store = open_store_for(dataset.train, {root!r} + "/annotations", "market1501")
names = [sample.path for sample in dataset.train]
cache = MaskCache(store, names)
assert (cache.rows == store.masks(names)).all()
files = [f for f in os.listdir(os.environ["TMPDIR"]) if f.startswith("daaf-masks-")]
distributed.barrier()
with open({log!r} + str(distributed.rank()), "w") as f:
    f.write(f"{{cache.path}} {{' '.join(files)}}")
distributed.barrier()
distributed.cleanup_distributed()
"""


@pytest.mark.slow
def test_torchrun_makes_one_cache_per_node(tiny_dataset, tmp_path):
    folder = tmp_path / "tmp"
    folder.mkdir()
    script = tmp_path / "launch.py"
    log = tmp_path / "log"
    script.write_text(TORCHRUN.format(root=str(tiny_dataset), log=str(log)))
    env = dict(os.environ, TMPDIR=str(folder), OMP_NUM_THREADS="1")
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
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seen = [(tmp_path / f"log{rank}").read_text().split() for rank in (0, 1)]
    path = Path(seen[0][0])  # rank 0's cache
    assert path.parent == folder
    assert seen == [[str(path), path.name]] * 2  # rank 1 maps it and made none of its own
    assert _cache_files(folder) == []  # removed when local rank 0 ended


FORKED = """
import multiprocessing, os, signal, time
from daaf.utils.processes import exit_on_sigterm

exit_on_sigterm()
child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
child.start()
time.sleep(0.5)
os.kill(child.pid, signal.SIGTERM)
child.join(30)
print(child.exitcode)
with multiprocessing.get_context("fork").Pool(2) as pool:  # __exit__ terminates its workers
    pool.map(abs, range(100))
print("pool done")
"""


def test_a_forked_child_dies_of_sigterm_at_once():
    """The handler is inherited by forked workers, whose SIGTERM must stay the plain kill that
    multiprocessing's terminate() expects: raising SystemExit there once left a pool's queue
    lock held and hung daaf synth inside the test suite."""
    done = subprocess.run(
        [sys.executable, "-c", AS_A_SHELL_STARTS_IT + FORKED],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.split() == [str(-signal.SIGTERM), "pool", "done"], done.stderr
