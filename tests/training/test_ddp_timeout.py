"""The process group waits as long as ``train.ddp_timeout_minutes`` says, and no longer.

While rank 0 evaluates, the other ranks wait at a barrier; with gloo, two real processes show
that init_distributed's timeout is the one that bounds that wait.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WAIT_AT_BARRIER = """
import datetime, sys, time, torch
from daaf.utils.distributed import barrier, init_distributed, rank
timeout, busy = float(sys.argv[1]), float(sys.argv[2])
init_distributed(torch.device("cpu"), datetime.timedelta(seconds=timeout))
if rank() == 0:
    time.sleep(busy)  # rank 0 "evaluates"
barrier()
"""


def run_pair(timeout_s: float, busy_s: float) -> list[subprocess.CompletedProcess]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(port),
        "WORLD_SIZE": "2",
        "PYTHONPATH": str(REPO),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WAIT_AT_BARRIER, str(timeout_s), str(busy_s)],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in range(2)
    ]
    return [subprocess.CompletedProcess(p.args, p.wait(120), *p.communicate()) for p in procs]


@pytest.mark.slow
def test_the_waiting_rank_times_out_only_past_the_configured_timeout():
    patient = run_pair(timeout_s=60, busy_s=4)
    assert [p.returncode for p in patient] == [0, 0], patient[1].stderr[-2000:]
    impatient = run_pair(timeout_s=1, busy_s=8)
    assert impatient[1].returncode != 0
    assert "in barrier" in impatient[1].stderr  # not in the rendezvous
    assert "Timed out waiting 1000ms" in impatient[1].stderr
