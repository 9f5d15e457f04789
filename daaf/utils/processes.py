"""Process hygiene: SIGTERM ends a process as an exception would, a worker dies with its parent.

``timeout``, Slurm and ``docker stop`` send SIGTERM, whose default action ends a process at once,
without ``atexit`` hooks or finalizers (a temporary file stays behind). A worker process (a
DataLoader worker, a multiprocessing pool) whose parent is killed with SIGKILL lives on unless
it asked the kernel to end it too.
"""

from __future__ import annotations

import ctypes
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
