"""Process hygiene: SIGTERM ends a process as an exception would, a worker dies with its parent,
and Ctrl-C is the parent's alone.

``timeout``, Slurm and ``docker stop`` send SIGTERM, whose default action ends a process at once,
without ``atexit`` hooks or finalizers (a temporary file stays behind). A worker process (a
DataLoader worker, a multiprocessing pool) whose parent is killed with SIGKILL lives on unless
it asked the kernel to end it too. Ctrl-C sends SIGINT to every process of the terminal's
group: workers ignore it (:func:`worker_start`) and the parent stops them, in one line; while the
parent forks them, it holds the signal (:func:`starting_workers`).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.pool
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _exit_handler(previous):
    owner = os.getpid()

    def handle(signum, frame):
        if os.getpid() != owner:  # a forked child (a pool worker): SIGTERM ends it at once, as
            signal.signal(signum, signal.SIG_DFL)  # multiprocessing's terminate() expects; an
            os.kill(os.getpid(), signum)  # exception there can leave a queue's lock held
            return
        if callable(previous):
            previous(signum, frame)
        raise SystemExit(128 + signum)

    handle.daaf_exit = True  # installed once, however many callers ask
    return handle


def exit_on_sigterm() -> None:
    """Make SIGTERM raise ``SystemExit(143)`` in this process, after any handler already there,
    so that ``finally`` blocks, finalizers and ``atexit`` hooks run. Only the main thread can
    install a handler; elsewhere, or where SIGTERM is ignored, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN or getattr(previous, "daaf_exit", False):
        return
    signal.signal(signal.SIGTERM, _exit_handler(previous))


def is_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts)."""
    if pid <= 0:
        raise ValueError(f"not a process id: {pid}")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def die_with_parent(parent: int, *_: object) -> None:
    """Worker initializer: on Linux the kernel kills this process (SIGKILL) when its parent
    ends, however it ends (strictly, when the parent's thread that started it ends: start
    workers from a thread that lives as long as they should, as a DataLoader iterated in the
    main thread does). ``parent`` is the pid of the process that started the worker, so
    that one gone before the request took effect is noticed too (the worker's direct parent is
    a forkserver under that start method). Elsewhere a no-op. Extra arguments (a DataLoader
    worker id) are ignored."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # no libc with prctl: nothing to ask for
        return
    if os.getppid() != parent and not is_alive(parent):
        os._exit(1)  # the parent ended before the request took effect


def worker_start(parent: int, *_: object) -> None:
    """Worker initializer: Ctrl-C is left to the parent, which stops its workers (a worker
    interrupted too printed its own traceback), SIGTERM kills at once, and the worker dies
    with ``parent`` (:func:`die_with_parent`). Extra arguments (a DataLoader worker id) are
    ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    die_with_parent(parent)


@contextmanager
def starting_workers() -> Iterator[None]:
    """Around forking worker processes (a DataLoader's iterator, a pool): SIGINT and SIGTERM
    that come meanwhile are acted on once the workers have started. CPython may run a signal's
    handler inside an at-fork hook, which prints its exception as "Exception ignored" and
    drops it: a Ctrl-C then did nothing, and one that hit a DataLoader half-built printed its
    traceback. A worker forked meanwhile ignores SIGINT and dies of SIGTERM, as it would after
    :func:`worker_start`. Outside the main thread, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    owner, caught = os.getpid(), []

    def hold(signum, frame):
        if os.getpid() == owner:
            caught.append(signum)
        elif signum == signal.SIGTERM:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    previous = {s: handler for s, handler in previous.items() if handler is not None}
    for signum in previous:
        signal.signal(signum, hold)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


def _pool_worker_start(parent: int) -> None:
    """Initializer of :func:`start_pool`'s workers: :func:`worker_start`, then SIGINT and
    SIGTERM unblocked (a SIGTERM sent while it was held since the fork lands now)."""
    worker_start(parent)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def start_pool(processes: int) -> multiprocessing.pool.Pool:
    """A multiprocessing pool whose workers die with this process and of its ``terminate()``
    (its context manager's exit) at any moment, and leave Ctrl-C to it. They are forked with
    SIGTERM held and take the plain kill back first thing: a worker that inherits Python's
    handler (:func:`exit_on_sigterm`) loses a SIGTERM that comes while Python is still setting
    it up after the fork, and ``terminate()`` then waits for it for ever."""
    masks = hasattr(signal, "pthread_sigmask")  # POSIX; elsewhere there is nothing to hold
    signals = {signal.SIGINT, signal.SIGTERM}
    held = signal.pthread_sigmask(signal.SIG_BLOCK, signals) if masks else None
    try:
        with starting_workers():
            return multiprocessing.get_context().Pool(processes, _pool_worker_start, (os.getpid(),))
    finally:
        if masks:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
