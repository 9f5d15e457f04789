"""Every worker a daaf command starts dies with its parent, even one killed with SIGKILL."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from daaf.utils.processes import is_alive

# The first lines of a script run in a subprocess: the signal state a shell starts a command with
# (nothing blocked, Ctrl-C raising KeyboardInterrupt, SIGTERM's default kill), whatever the
# test process that runs it has inherited or changed.
AS_A_SHELL_STARTS_IT = """
import signal
signal.pthread_sigmask(signal.SIG_SETMASK, [])
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux prctl")

# Each starts workers that are busy (as decoding a large image or labeling is) when the parent
# dies: torch's own watchdog looks for a dead parent only between tasks.
BUSY = "open({pids!r} + str(os.getpid()), 'w').close(); time.sleep(600)"
SCRIPTS = {
    "label": f"""
        import daaf.labeling.driver as driver
        from daaf.data.datasets import build_dataset
        def read_rgb(path):
            {BUSY}
        driver.read_rgb = read_rgb
        class Labeler:
            name = "idle"
            def describe(self):
                return dict()
            def to(self, device):
                return self
        driver.run_labeler(Labeler(), build_dataset("market1501", {{root!r}}), {{out!r}},
                           driver.LabelOptions(batch_size=1, workers=2, progress=False))
    """,
    "train loader": f"""
        import torch
        from daaf.data.loader import build_loader
        class Busy(torch.utils.data.Dataset):
            def __len__(self):
                return 4
            def __getitem__(self, index):
                {BUSY}
        list(build_loader(Busy(), torch.device("cpu"), workers=2))
    """,
    "synth": f"""
        import daaf.data.synthetic.generate as generate
        def write_job(args):
            {BUSY}
        generate._write_job = write_job
        generate.generate_dataset({{out!r}}, generate.SynthSpec(identities=4, cameras=2), workers=2,
                                  progress=False)
    """,
}


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie that its new parent has not reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("command", SCRIPTS)
def test_workers_die_when_the_parent_is_killed(command, tmp_path, tiny_dataset):
    pids = tmp_path / "pid-"
    script = textwrap.dedent(SCRIPTS[command]).format(
        pids=str(pids), root=str(tiny_dataset), out=str(tmp_path / "out")
    )
    script = "import os, time\n" + script
    env = dict(os.environ, OMP_NUM_THREADS="1")
    parent = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("pid-*"))) < 2 and time.monotonic() < deadline:
            assert parent.poll() is None, f"the {command} run ended early"
            time.sleep(0.2)
        workers = [int(p.name.removeprefix("pid-")) for p in tmp_path.glob("pid-*")]
        assert len(workers) >= 2 and all(not _gone(pid) for pid in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 3
        while not all(map(_gone, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(map(_gone, workers)), f"{command} workers outlived their parent"
    finally:
        parent.kill()
        for pid in workers if "workers" in locals() else []:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_worker_whose_parent_is_already_gone_exits():
    """The race: the parent died between starting the worker and the worker's request."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not is_alive(dead.pid) and is_alive(os.getpid())
    code = "import sys; from daaf.utils.processes import die_with_parent; die_with_parent({})"
    code += "; sys.exit(7)"
    # the process that started it is gone: the worker exits at once
    assert subprocess.run([sys.executable, "-c", code.format(dead.pid)]).returncode == 1
    # pid 1 is not its parent but lives (a forkserver's worker): it carries on
    assert subprocess.run([sys.executable, "-c", code.format(1)]).returncode == 7


POOLS = """
import signal
from daaf.utils.processes import exit_on_sigterm, start_pool
exit_on_sigterm()  # as a process that trained before (the mask cache asks for it)
for _ in range({rounds}):
    with start_pool(2) as pool:  # one chunk: one worker does it all, the other is terminated
        list(pool.imap_unordered(abs, range(32), 32))  # as soon as it is done
print(signal.SIGTERM in signal.pthread_sigmask(signal.SIG_BLOCK, []), "done")
"""


def test_a_pool_terminated_while_its_workers_start_ends():
    """With exit_on_sigterm's handler inherited, a worker that gets terminate()'s SIGTERM while
    Python is still setting it up after the fork loses it, and the pool's exit waits for ever
    (daaf synth hung so in the test suite; a multiprocessing Pool started as daaf synth started
    it before hung within 50 rounds of this loop on an idle machine)."""
    script = POOLS.format(rounds=300)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "done"]  # and SIGTERM is not held afterwards


AT_FORK = """
import multiprocessing, os, signal, sys
from contextlib import nullcontext
from daaf.utils.processes import starting_workers

def ctrl_c_as_the_fork_returns():
    os.kill(os.getpid(), signal.SIG{signal})
    sum(range(1000))  # Python code: the handler runs here, inside the at-fork hook

os.register_at_fork(after_in_parent=ctrl_c_as_the_fork_returns)
held = starting_workers() if sys.argv[1] == "held" else nullcontext()
try:
    with held:
        worker = multiprocessing.get_context("fork").Process(target=print)
        worker.start()
        worker.join()
    print("carried on")
except {exception}:
    print("stopped")
"""


@pytest.mark.parametrize(
    "signame, exception", [("INT", "KeyboardInterrupt"), ("TERM", "SystemExit")]
)
def test_a_signal_while_workers_fork_is_acted_on_after_not_lost(signame, exception):
    """CPython runs a signal's handler inside an at-fork hook, whose exception it prints as
    "Exception ignored" and drops: a Ctrl-C that came as a DataLoader forked its workers did
    nothing at all, or printed the half-built loader's traceback. Held, it stops the run once
    the workers exist."""
    script = AS_A_SHELL_STARTS_IT
    script += "from daaf.utils.processes import exit_on_sigterm; exit_on_sigterm()\n"
    script += AT_FORK.format(signal=signame, exception=exception)
    plain, held = (
        subprocess.run(
            [sys.executable, "-c", script, how], capture_output=True, text=True, timeout=120
        )
        for how in ("plain", "held")
    )
    assert plain.stdout.split() == ["carried", "on"] and "Exception ignored" in plain.stderr
    assert held.stdout.split() == ["stopped"] and held.stderr == ""
