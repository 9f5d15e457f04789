"""`daaf search`'s blockwise gallery scan vs one torch.mm + topk over the whole gallery matrix.

    python benchmarks/search.py [--queries 100] [--gallery 500000] [--dim 2048] [--top 10]

Writes a gallery embedding file of random unit-length features (--dir, 4 GB at the defaults),
then runs each method in a fresh process, three times, and prints the median wall time, the
process's CPU time (user + system, all threads: what the method costs on a loaded machine) and
the peak resident memory above the process's baseline (torch imported, queries in memory;
Linux: VmHWM after resetting it through /proc/self/clear_refs):

- anchor, in memory: the whole gallery read into one (N, D) tensor (its reading not timed),
  then one ``torch.mm`` of the queries with it and one ``topk``: the fastest way when the
  gallery fits;
- anchor, from the file: the same with the reading of the whole matrix timed (h5py, without
  the chunk cache), the reference for a search that starts from the file;
- blockwise, in memory: :func:`daaf.inference.top_k_blocks` over the same in-memory array;
- blockwise, from the file: :func:`daaf.inference.search_file`, what ``daaf search`` runs,
  reading the next block of ``BLOCK_ROWS`` rows while the current one is multiplied.

Not a timed test: a benchmark to run by hand; ratios to the in-memory anchor are what compare
between machines. Every ranking is checked against the anchor's (same ids, distance gap).
Torch's threads are its default unless OMP_NUM_THREADS says otherwise; both are printed with
the load average before and after.

Last measured 2026-12-02 at 9d57f2c, OMP_NUM_THREADS=1, on the 2-core machine with one other
job running (load average 1.78 before, 2.48 after)::

    method                      seconds  x anchor   cpu s  peak MiB  x anchor  same ids  max |d diff|
    anchor, in memory              6.03      1.00    5.90      4140      1.00    100.0%       0.0e+00
    anchor, from the file          9.87      1.64    9.28      4140      1.00    100.0%       0.0e+00
    blockwise, in memory           5.24      0.87    5.37      3957      0.96    100.0%       6.0e-08
    blockwise, from the file       6.29      1.04    6.07       155      0.04    100.0%       6.0e-08

At load 6.6 the same code gave 1.58x from the file (docs/embeddings.md, "Search speed").
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS = 65_536  # rows appended at a time when the file is made
KINDS = (
    "anchor, in memory",
    "anchor, from the file",
    "blockwise, in memory",
    "blockwise, from the file",
)


def _status_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (Linux), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> float:
    """Reset the peak resident size (VmHWM) to the current one and return it: ru_maxrss
    cannot be reset, so a peak reached while importing would hide the method's own."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def make_gallery(path: Path, num: int, dim: int) -> None:
    """A complete embedding file of ``num`` random unit vectors (seeded)."""
    from daaf.inference.store import EmbeddingWriter

    attrs = {
        "embedding_dim": dim,
        "model_sha256": "benchmark",
        "metric": "cosine",
        "flip": False,
        "root": "",
        "num_inputs": num,
        "inputs_sha256": "benchmark",
    }
    writer = EmbeddingWriter(path, attrs)
    rng = np.random.default_rng(0)
    for start in range(0, num, ROWS):
        block = rng.standard_normal((min(ROWS, num - start), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        writer.append(block, [f"g{start + i:07d}.jpg" for i in range(len(block))], [], len(block))
    writer.close(complete=True)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run(kind: str, gallery: str, queries: np.ndarray, top: int, queue) -> None:
    import h5py
    import torch

    from daaf.inference import search_file, top_k_blocks
    from daaf.inference.search import BLOCK_ROWS

    base = _reset_peak()
    start, cpu = time.perf_counter(), _cpu_seconds()
    if kind == "blockwise, from the file":
        dist, idx = search_file(queries, Path(gallery), top, "cosine")
    else:
        with h5py.File(gallery, rdcc_nbytes=0) as f:
            g = f["features"][:]
        if kind != "anchor, from the file":
            start, cpu = time.perf_counter(), _cpu_seconds()  # the reading not timed
        if kind.startswith("anchor"):
            q = torch.from_numpy(queries)
            sim, idx = torch.topk(torch.mm(q, torch.from_numpy(g).T), top, dim=1)  # cosine order
            dist = (1 - sim).numpy()
        else:
            blocks = ((s, g[s : s + BLOCK_ROWS]) for s in range(0, len(g), BLOCK_ROWS))
            dist, idx = top_k_blocks(queries, blocks, top, "cosine")
    seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    queue.put((seconds, cpu, _status_mib("VmHWM") - base, np.asarray(idx), np.asarray(dist)))


def measure(kind: str, gallery: Path, queries: np.ndarray, top: int):
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run, args=(kind, str(gallery), queries, top, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--gallery", type=int, default=500_000)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="Where the gallery file goes.")
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    queries = rng.standard_normal((args.queries, args.dim), dtype=np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        gallery = Path(tmp) / "gallery.h5"
        start = time.perf_counter()
        make_gallery(gallery, args.gallery, args.dim)
        print(
            f"gallery: {args.gallery:,} x {args.dim} float32 "
            f"({gallery.stat().st_size / 2**30:.2f} GiB) written in {time.perf_counter() - start:.0f} s; "
            f"{args.queries} queries, top {args.top}, cosine"
        )
        print(
            f"torch threads: {torch.get_num_threads()} (OMP_NUM_THREADS="
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')}); load average before: "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
        )
        rows, reference = [], None
        for kind in KINDS:
            runs = [measure(kind, gallery, queries, args.top) for _ in range(args.repeats)]
            seconds = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            memory = max(r[2] for r in runs)
            idx, dist = runs[0][3], runs[0][4]
            if reference is None:
                reference = (seconds, memory, idx, dist)
            agree = (idx == reference[2]).mean()
            rows.append(
                (
                    kind,
                    seconds,
                    cpu,
                    [r[0] for r in runs],
                    memory,
                    agree,
                    float(np.abs(dist - reference[3]).max()),
                )
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"\n{'method':<26}{'seconds':>9}{'x anchor':>10}{'cpu s':>8}{'peak MiB':>10}"
        f"{'x anchor':>10}{'same ids':>10}{'max |d diff|':>14}  runs (s)"
    )
    for kind, seconds, cpu, runs, memory, agree, diff in rows:
        print(
            f"{kind:<26}{seconds:>9.2f}{seconds / reference[0]:>10.2f}{cpu:>8.2f}"
            f"{memory:>10.0f}{memory / reference[1]:>10.2f}{agree:>10.1%}{diff:>14.1e}  "
            + ", ".join(f"{r:.2f}" for r in runs)
        )


if __name__ == "__main__":
    main()
