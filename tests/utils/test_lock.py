"""One run per output folder: a second is refused, and a killed holder leaves no stale lock."""

import os
import signal
import subprocess
import sys

import pytest

from daaf.errors import DaafError
from daaf.utils.lock import folder_lock

HOLD = "import sys, time\nfrom daaf.utils.lock import folder_lock\nwith folder_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n"


def test_the_lock_is_refused_while_held_and_gone_after(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with folder_lock(out):
        with pytest.raises(DaafError) as error, folder_lock(out):
            pass
        assert str(error.value) == (
            f"{out} is in use by another daaf run (process {os.getpid()} holds "
            f"{out / '.daaf.lock'}); wait for it to end, or use another --out"
        )
    assert list(out.iterdir()) == []  # no lock file left behind
    with folder_lock(out):  # free again
        pass


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    """kill -9: the operating system releases the flock; the next run takes it at once."""
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(DaafError, match=f"process {holder.pid} holds"), folder_lock(out):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / ".daaf.lock").exists()  # left by the killed process, but not held
    with folder_lock(out):
        assert (out / ".daaf.lock").read_text() == f"{os.getpid()}\n"
    assert list(out.iterdir()) == []
