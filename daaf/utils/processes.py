"""Process hygiene: SIGTERM ends a process as an exception would, a worker dies with its parent.

``timeout``, Slurm and ``docker stop`` send SIGTERM, whose default action ends a process at once,
without ``atexit`` hooks or finalizers (a temporary file stays behind). A worker process (a
DataLoader worker, a multiprocessing pool) whose parent is killed with SIGKILL lives on unless
it asked the kernel to end it too.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.pool
import os
import signal
import sys
import threading

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


def _pool_worker_start(parent: int) -> None:
    """Initializer of :func:`start_pool`'s workers: SIGTERM kills at once again (one sent
    while SIGTERM was held since the fork lands now), and the worker dies with its parent."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    die_with_parent(parent)


def start_pool(processes: int) -> multiprocessing.pool.Pool:
    """A multiprocessing pool whose workers die with this process and of its ``terminate()``
    (its context manager's exit) at any moment. They are forked with SIGTERM held and take the
    plain kill back first thing: a worker that inherits Python's handler (:func:`exit_on_sigterm`)
    loses a SIGTERM that comes while Python is still setting it up after the fork, and
    ``terminate()`` then waits for it for ever."""
    masks = hasattr(signal, "pthread_sigmask")  # POSIX; elsewhere there is nothing to hold
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM}) if masks else None
    try:
        return multiprocessing.get_context().Pool(processes, _pool_worker_start, (os.getpid(),))
    finally:
        if masks:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
