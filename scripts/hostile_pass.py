"""A careless and malicious user's pass over the daaf command line, as a rerunnable suite.

    nice .venv/bin/python scripts/hostile_pass.py [--only CATEGORY ...] [--csv attempts.csv] [--keep]

Every attempt runs the real CLI of this tree (``python -m daaf.cli ...``, with this tree first
on PYTHONPATH) as a subprocess in a scratch folder, with a time limit. Around each one the pass hashes the user's files (a folder of files named as
daaf names its own, the dataset, model, features and evaluations it prepared), looks for the
markers planted code would write, and for processes the attempt left alive. Each attempt gets
one outcome (OUTCOMES, worst first), and the table counts them per category.
How to run it and add a case: docs/hostile_pass.md.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import hashlib
import os
import pickle
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path

import click

REPO = Path(__file__).resolve().parents[1]
DEMO_CONFIG = REPO / "configs" / "demo.yaml"
TAG = "DAAF_HOSTILE_PASS_TAG"  # in each attempt's environment: finds its processes, all of them
MEMORY_LIMIT = 4 << 30  # RLIMIT_DATA of each process: a config read from /dev/zero stops here
MAX_RSS = 8 << 30  # all of an attempt's processes together
MAX_PROCESSES = 48  # `--workers 100000` is stopped here (RLIMIT_NPROC does not bind root)
MAX_OUTPUT = 64 << 20  # bytes of stdout + stderr
GRACE = 5.0  # seconds an attempt's processes get to end after it did
KILL_GRACE = 20.0  # after kill -9 of the main process: DataLoader workers look every 5 s
HANG = 30.0  # CPU seconds of an attempt that should end in seconds, and may block for ever
STALL = 20.0  # seconds without CPU in any of an attempt's processes: blocked
WALL_FACTOR = 5.0  # an attempt's wall-time limit, in times its CPU seconds
RUNNING: set[int] = set()  # process groups of the attempts now running: killed if the pass is

# Worst first: an attempt gets the first that applies.
OUTCOMES = {
    "code run": "a planted pickle, TorchScript or YAML payload ran (its marker appeared)",
    "data lost": "a user file changed or disappeared",
    "left alive": "a process of the attempt outlived it",
    "hang": "stopped: blocked (no CPU for 20 s), past its CPU seconds or 5 times them in wall "
    "time, or for too many processes, memory or output",
    "traceback": "a Python traceback, or death by a signal the pass did not send",
    "missed": "the command ended before the signal the case sends it: nothing tested",
    "garbage accepted": "exit 0 where the case expects a refusal",
    "wrongly refused": "a non-zero exit where the case expects success",
    "bad output": "the case's check found a problem in what the command left",
    "unclear error": "a non-zero exit without a traceback, but no message, a long one, "
    "or not the one expected",
    "one-line error": "a non-zero exit with a short message",
    "ok": "the expected success, or the expected end by kill -9 leaving nothing behind",
}
COLUMNS = (
    "ok",
    "one-line error",
    "unclear error",
    "traceback",
    "garbage accepted",
    "wrongly refused",
    "bad output",
    "data lost",
    "code run",
    "left alive",
    "hang",
    "missed",
)
EXPECTS = ("refuse", "accept", "either", "killed")
MAX_MESSAGE_LINES = 3
TRACEBACK = "Traceback (most recent call last)"
NOISE = re.compile(r"\d+%\||\d+/\d+ \[|[\d.]+(it|img|s)/s\]|^Usage: |^Try '")

# `daaf train` of configs/demo.yaml made tiny, as tests/conftest.py makes its runs.
TINY_TRAIN = (
    "data.height=64",
    "data.width=32",
    "data.pad=2",
    "data.num_identities=4",
    "data.num_instances=2",
    "data.workers=0",
    "model.decoder_channels=8",
    "train.epochs=1",
    "train.iters_per_epoch=2",
    "train.log_period=1",
)
NAN, INF = float("nan"), float("inf")
HTML_PAYLOADS = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")


@dataclass(frozen=True)
class Interrupt:
    """A signal the attempt gets once it runs ``processes`` processes (itself and its workers)
    and ``after`` seconds more: SIGINT to the process group is Ctrl-C in a terminal, SIGKILL to
    the main process alone is ``kill -9 PID``."""

    signum: int = signal.SIGINT
    processes: int = 1
    after: float = 1.0
    group: bool = True


@dataclass
class Case:
    """One attempt: a command line whose first word ``daaf`` stands for the CLI under test, and
    what a careful tool does with it (``expect``: refuse, accept, either, or killed: ended by
    its interrupt, where only what it leaves behind is judged). ``timeout``: CPU seconds of
    all its processes (see :func:`why_stop`). ``setup`` makes its files before the user's
    files are hashed; ``message``: a regex the refusal must match; ``warn_ok``: a regex that
    makes an exit 0 a refusal (a warning); ``check``: looks at what the attempt left, returns
    a problem or None."""

    name: str
    argv: list[str]
    expect: str = "refuse"
    timeout: float = 90.0
    setup: Callable[[], object] | None = None
    interrupt: Interrupt | None = None
    message: str | None = None
    warn_ok: str | None = None
    check: Callable[[], str | None] | None = None
    category: str = ""

    def __post_init__(self) -> None:
        if self.expect not in EXPECTS:
            raise ValueError(f"case {self.name!r}: expect {self.expect!r} not in {EXPECTS}")
        self.argv = [str(arg) for arg in self.argv]


@dataclass
class Attempt:
    """What one case did: exit code (negative: killed by that signal), output, and what the
    watch found."""

    case: Case
    returncode: int
    seconds: float
    stdout: str = ""
    stderr: str = ""
    stopped: str = ""
    signalled: bool = False
    lost: list[str] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    left_alive: list[str] = field(default_factory=list)
    check_problem: str | None = None
    problems: list[str] = field(default_factory=list)
    outcome: str = ""


class PrepareError(Exception):
    """A step of the preparation failed: the pass cannot run the cases that need it."""


# ---------------------------------------------------------------------------------------------
# Classifying


def message_lines(text: str) -> list[str]:
    """The lines of a command's output a user reads as its message: without progress bars
    (tqdm's carriage-return updates), click's usage banner and blank lines."""
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not NOISE.search(line)]


def message(attempt: Attempt) -> str:
    """The error line of the attempt's stderr (its last line starting ``Error``, else its last
    line), or of its stdout when stderr says nothing."""
    lines = message_lines(attempt.stderr) or message_lines(attempt.stdout)
    errors = [line for line in lines if line.lower().startswith(("error", "aborted"))]
    return (errors or lines or [""])[-1]


def unclear(attempt: Attempt) -> str | None:
    """Why a refusal is not a clear one-line error, or None. The message is stderr's; a
    command that reports on stdout (a validation's findings) is judged by those lines, of
    whatever length."""
    lines = message_lines(attempt.stderr)
    if len(lines) > MAX_MESSAGE_LINES:
        return f"{len(lines)} lines of message"
    lines = lines or message_lines(attempt.stdout)
    if not lines:
        return "no message"
    pattern = attempt.case.message
    if pattern and not re.search(pattern, "\n".join(lines)):
        return f"message does not match {pattern!r}"
    return None


def problems_of(attempt: Attempt) -> list[str]:
    """Every outcome of OUTCOMES that applies, worst first."""
    case, code = attempt.case, attempt.returncode
    text = attempt.stdout + attempt.stderr
    found = []
    if attempt.markers:
        found.append("code run")
    if attempt.lost:
        found.append("data lost")
    if attempt.left_alive:
        found.append("left alive")
    if attempt.stopped:
        found.append("hang")
    foreign_signal = code < 0 and not attempt.signalled and not found
    if TRACEBACK in text or foreign_signal:
        found.append("traceback")
    missed = bool(case.interrupt and not attempt.signalled and "hang" not in found)
    if missed:
        found.append("missed")
    warned = code == 0 and case.warn_ok and re.search(case.warn_ok, text)
    if case.expect == "refuse" and code == 0 and not warned and not missed:
        found.append("garbage accepted")
    if case.expect == "accept" and code != 0:
        found.append("wrongly refused")
    if attempt.check_problem:
        found.append("bad output")
    if code != 0 and case.expect != "killed" and unclear(attempt):
        found.append("unclear error")
    return sorted(set(found), key=list(OUTCOMES).index)


def classify(attempt: Attempt) -> Attempt:
    """Fills ``problems`` and ``outcome`` (the worst problem, else one-line error or ok)."""
    attempt.problems = problems_of(attempt)
    if attempt.problems:
        attempt.outcome = attempt.problems[0]
    elif attempt.returncode != 0 and attempt.case.expect != "killed":
        attempt.outcome = "one-line error"
    else:
        attempt.outcome = "ok"
    return attempt


# ---------------------------------------------------------------------------------------------
# Watching: files, markers, processes


def file_signature(path: Path, info: os.stat_result) -> tuple:
    """Size, inode, mtime and a SHA-256 of a file (of its first and last MiB when larger than
    4 MiB: models are hundreds of MiB, and a write moves the mtime anyway)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as file:
            if info.st_size <= 4 << 20:
                digest.update(file.read())
            else:
                digest.update(file.read(1 << 20))
                file.seek(-(1 << 20), os.SEEK_END)
                digest.update(file.read())
    except OSError as error:
        digest.update(repr(error).encode())
    return info.st_size, info.st_ino, info.st_mtime_ns, digest.hexdigest()


def snapshot(roots: list[Path]) -> dict[str, tuple]:
    """Every file and link under ``roots`` (not following links, never opening a FIFO or a
    device): path -> signature. Without daaf's folder locks: a command makes and removes one
    in its --out (a prepared run), which another lane's attempt must not count as lost."""
    from daaf.utils.files import LOCK_NAME

    seen = {}
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                if name == LOCK_NAME:
                    continue
                path = Path(folder, name)
                try:
                    info = path.lstat()
                except OSError:
                    continue
                if path.is_symlink():
                    seen[str(path)] = ("link", os.readlink(path))
                elif path.is_file():
                    seen[str(path)] = file_signature(path, info)
                else:
                    seen[str(path)] = ("special", info.st_mode, info.st_ino)
    return seen


def changed(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Paths of ``before`` that ``after`` lacks or holds otherwise."""
    return [
        f"{path} ({'gone' if path not in after else 'changed'})"
        for path, signature in before.items()
        if after.get(path) != signature
    ]


def appeared(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """Marker files that appeared or changed."""
    return [path for path, signature in after.items() if before.get(path) != signature]


def proc_stat(pid: str) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def session_processes(session: int) -> list[int]:
    """Live (not zombie) processes of a session."""
    found = []
    for entry in os.listdir("/proc"):
        fields = entry.isdigit() and proc_stat(entry)
        if fields and fields[3] == str(session) and fields[0] != "Z":
            found.append(int(entry))
    return found


def tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment holds ``TAG=tag``: an attempt's, even those that left
    its session or lost their parent."""
    needle = f"{TAG}={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        fields = proc_stat(entry)
        if needle in environ.split(b"\0") and fields and fields[0] != "Z":
            found.append(int(entry))
    return found


def resident_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total * os.sysconf("SC_PAGE_SIZE")


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:160]


def kill(pids: list[int]) -> None:
    """SIGKILL to processes the pass started (found by its tag)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def survivors(tag: str, grace: float) -> list[str]:
    """The attempt's processes still alive ``grace`` seconds after it ended (then killed)."""
    deadline = time.monotonic() + grace
    while (alive := tagged_processes(tag)) and time.monotonic() < deadline:
        time.sleep(0.25)
    left = [f"{pid} {command_line(pid)}" for pid in alive]
    kill(alive)
    return left


def limit_memory() -> None:
    """Bounds the data memory of this process and so of every attempt it starts (children
    inherit it), so that reading /dev/zero or decoding a huge image fails there instead of
    taking the shared machine's memory. Set once, in the pass's own process: a preexec_fn
    would not be safe with the lanes' threads."""
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))


# ---------------------------------------------------------------------------------------------
# Running


@dataclass
class Watch:
    """The state of a running attempt that the watch loop keeps: CPU seconds of its processes
    (the most seen), when they last grew, whether its interrupt was sent, why it was stopped."""

    start: float
    cpu: float = 0.0
    progress_at: float = 0.0
    signalled: bool = False
    ready_since: float | None = None
    stopped: str = ""


def cpu_seconds(pids: list[int], main: int) -> float:
    """CPU time of the live processes, and of the children the main one has reaped."""
    ticks = 0
    for pid in pids:
        fields = proc_stat(str(pid))
        if fields and len(fields) > 14:
            ticks += int(fields[11]) + int(fields[12])
            if pid == main:
                ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def why_stop(
    watch: Watch, pids: list[int], main: int, budget: float, scale: float, logs: tuple[Path, Path]
) -> str:
    """Why an attempt must be stopped now, or ''. Its budget is in CPU seconds, so that a
    loaded machine slows an attempt without making it a hang: it hangs when it is blocked (no
    CPU for STALL seconds: a FIFO that never opens), spins past its budget, runs past
    WALL_FACTOR times it in wall time, or runs away."""
    now = time.monotonic()
    cpu = cpu_seconds(pids, main)
    if cpu > watch.cpu:
        watch.cpu, watch.progress_at = cpu, now
    if now - watch.progress_at > STALL * scale:
        return f"blocked: no CPU for {STALL * scale:.0f} s"
    if watch.cpu > budget:
        return f"over its {budget:.0f} CPU seconds"
    if now - watch.start > budget * WALL_FACTOR:
        return f"over {budget * WALL_FACTOR:.0f} s"
    if len(pids) > MAX_PROCESSES:
        return f"runaway: {len(pids)} processes"
    if (rss := resident_bytes(pids)) > MAX_RSS:
        return f"runaway: {rss >> 20} MiB resident"
    if sum(log.stat().st_size for log in logs) > MAX_OUTPUT:
        return f"runaway: over {MAX_OUTPUT >> 20} MiB of output"
    return ""


def maybe_interrupt(
    process: subprocess.Popen, interrupt: Interrupt, pids: list[int], watch: Watch
) -> None:
    """Send the case's signal once its condition has held ``after`` seconds."""
    now = time.monotonic()
    if len(pids) < interrupt.processes:
        return
    watch.ready_since = watch.ready_since or now
    if now - watch.ready_since >= interrupt.after:
        if interrupt.group:
            os.killpg(process.pid, interrupt.signum)
        else:
            process.send_signal(interrupt.signum)
        watch.signalled = True


def watch_process(
    process: subprocess.Popen, case: Case, scale: float, logs: tuple[Path, Path]
) -> Watch:
    """Waits for the attempt, sending its interrupt, and stops it (SIGKILL to its process
    group) when :func:`why_stop` says so."""
    now = time.monotonic()
    watch = Watch(start=now, progress_at=now)
    while process.poll() is None:
        pids = session_processes(process.pid)
        watch.stopped = why_stop(watch, pids, process.pid, case.timeout * scale, scale, logs)
        if watch.stopped:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            break
        if case.interrupt and not watch.signalled:
            maybe_interrupt(process, case.interrupt, pids, watch)
        time.sleep(0.5)
    return watch


def command_argv(case: Case, daaf: list[str]) -> list[str]:
    return [*daaf, *case.argv[1:]] if case.argv[:1] == ["daaf"] else list(case.argv)


def run_attempt(case: Case, daaf: list[str], scratch: Scratch, scale: float) -> Attempt:
    """Runs one case in its own session, watched as the module docstring says."""
    watched, markers = scratch.watched(), [scratch.markers]
    before, marks = snapshot(watched), snapshot(markers)
    tag = uuid.uuid4().hex
    logs = (
        scratch.logs / f"{scratch.next_index():03d}.out",
        scratch.logs / f"{scratch.index:03d}.err",
    )
    start = time.monotonic()
    with open(logs[0], "wb") as out, open(logs[1], "wb") as err:
        process = subprocess.Popen(
            command_argv(case, daaf),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=scratch.cwd,
            env={**os.environ, TAG: tag},
            start_new_session=True,
        )
        RUNNING.add(process.pid)
        try:
            watch = watch_process(process, case, scale, logs)
        finally:
            RUNNING.discard(process.pid)
    seconds = time.monotonic() - start
    interrupt = case.interrupt
    grace = (KILL_GRACE if interrupt and interrupt.signum == signal.SIGKILL else GRACE) * scale
    attempt = Attempt(
        case,
        process.returncode,
        seconds,
        logs[0].read_text(errors="replace"),
        logs[1].read_text(errors="replace"),
        watch.stopped,
        watch.signalled,
        left_alive=survivors(tag, grace),
    )
    attempt.lost = changed(before, snapshot(watched))
    attempt.markers = appeared(marks, snapshot(markers))
    attempt.check_problem = case.check() if case.check else None
    return classify(attempt)


def run_cases(
    cases: list[Case],
    daaf: list[str],
    scratch: Scratch,
    scale: float = 1.0,
    echo: Callable[[str], None] = print,
    failures: list[str] | None = None,
) -> list[Attempt]:
    """Each case's setup, then its attempt, in order (a case may use what an earlier one of
    its category left, as a rerun does). A setup that fails is a fault of the pass: it goes to
    ``failures``, and its case is not attempted."""
    attempts = []
    for case in cases:
        try:
            if case.setup:
                case.setup()
        except Exception as error:  # noqa: BLE001 - reported, and the pass goes on
            note = f"{case.category}: {case.name}: setup failed: {error!r}"
            echo(note)
            (failures if failures is not None else []).append(note)
            continue
        attempt = run_attempt(case, daaf, scratch, scale)
        attempts.append(attempt)
        echo(f"{attempt.seconds:6.1f}s  {attempt.outcome:16}  {case.category}: {case.name}")
    return attempts


# ---------------------------------------------------------------------------------------------
# The table and the CSV


def counts(attempts: list[Attempt]) -> dict[str, int]:
    row = {"attempts": len(attempts), **dict.fromkeys(COLUMNS, 0)}
    for attempt in attempts:
        row[attempt.outcome] += 1
    return row


def table(attempts: list[Attempt]) -> str:
    """Attempts and outcomes per category and overall, one column per outcome."""
    categories = list(dict.fromkeys(attempt.case.category for attempt in attempts))
    rows = [(name, counts([a for a in attempts if a.case.category == name])) for name in categories]
    rows.append(("all", counts(attempts)))
    headers = ["category", "attempts", *COLUMNS]
    width = max(len(name) for name, _ in rows + [("category", {})])
    lines = ["  ".join([headers[0].ljust(width), *headers[1:]])]
    for name, row in rows:
        cells = [str(row[key]).rjust(len(key)) for key in headers[1:]]
        lines.append("  ".join([name.ljust(width), *cells]))
    return "\n".join(lines)


def shown(text: str, scratch_root: Path | None) -> str:
    """``text`` with the scratch folder as ``$S``, and a file name's bytes that are no UTF-8
    (surrogates) as escapes, so that the CSV and the terminal can take it."""
    text = text.replace(str(scratch_root), "$S") if scratch_root else text
    return text.encode(errors="backslashreplace").decode()


def csv_rows(attempts: list[Attempt], scratch_root: Path | None = None) -> list[dict]:
    """One row per attempt: category, name, expect, command, exit code, outcome, every problem,
    seconds, first line of stderr, the error message, and notes (files lost, markers,
    processes left alive, the check's finding, why the pass stopped it)."""
    rows = []
    for attempt in attempts:
        case = attempt.case
        notes = [
            *attempt.lost,
            *attempt.markers,
            *attempt.left_alive,
            attempt.stopped,
            attempt.check_problem or "",
            unclear(attempt) if attempt.returncode else "",
        ]
        first = message_lines(attempt.stderr)
        rows.append(
            {
                "category": case.category,
                "name": case.name,
                "expect": case.expect,
                "command": shown(shlex.join(case.argv), scratch_root),
                "exit_code": attempt.returncode,
                "outcome": attempt.outcome,
                "problems": "; ".join(attempt.problems),
                "seconds": f"{attempt.seconds:.1f}",
                "first_stderr_line": shown(first[0] if first else "", scratch_root)[:300],
                "message": shown(message(attempt), scratch_root)[:300],
                "notes": shown("; ".join(note for note in notes if note), scratch_root)[:600],
            }
        )
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else ["category"])
        writer.writeheader()
        writer.writerows(rows)


def not_fine(rows: list[dict]) -> str:
    """The attempts that were neither a one-line refusal nor an expected success."""
    bad = [row for row in rows if row["outcome"] not in ("ok", "one-line error")]
    return "\n".join(
        f"- [{row['outcome']}] {row['category']}: {row['name']}\n    $ {row['command']}\n"
        f"    exit {row['exit_code']}: {row['message'] or '(no message)'}"
        + (f"\n    {row['notes']}" if row["notes"] else "")
        for row in bad
    )


# ---------------------------------------------------------------------------------------------
# The scratch folder and what the cases need


class Scratch:
    """A lane's scratch folder: ``cases/`` (files a case makes for itself), ``out/`` (each
    case's --out), ``markers/`` (what planted code writes), ``logs/``, ``cwd/``; everything
    else in it (the user's files, planted payloads) is watched."""

    UNWATCHED = ("cases", "out", "markers", "logs", "cwd")

    def __init__(self, root: Path) -> None:
        self.root, self.index = root, 0
        for name in self.UNWATCHED:
            (root / name).mkdir(parents=True, exist_ok=True)

    markers = property(lambda self: self.root / "markers")
    logs = property(lambda self: self.root / "logs")
    cwd = property(lambda self: self.root / "cwd")

    def next_index(self) -> int:
        self.index += 1
        return self.index

    def watched(self) -> list[Path]:
        return [path for path in sorted(self.root.iterdir()) if path.name not in self.UNWATCHED]

    def case_dir(self, name: str) -> Path:
        return self.root / "cases" / name

    def out(self, name: str) -> Path:
        return self.root / "out" / name


class Shared:
    """What every lane reads and no attempt should write: datasets, a trained run, its export,
    embedding files, an evaluation, NaN and inf models; each made once, on first use, with
    the real CLI (the broken models with torch). ``ready`` lists the finished ones: the lanes
    watch those, never one still being written."""

    def __init__(self, root: Path, daaf: list[str], echo: Callable[[str], None] = print) -> None:
        self.root, self.daaf, self.echo = root, daaf, echo
        self.lock, self.locks, self.ready, self.made = threading.Lock(), {}, [], {}
        (root / "cwd").mkdir(parents=True, exist_ok=True)

    def once(self, name: str, make: Callable[[], Path]) -> Path:
        """``make()``, the first time ``name`` is asked for, by whichever lane asks first (the
        others wait for that one thing, not for every preparation)."""
        with self.lock:
            lock = self.locks.setdefault(name, threading.Lock())
        with lock:
            if name not in self.made:
                self.made[name] = make()
                self.ready.append(self.made[name])
        return self.made[name]

    def run_daaf(self, step: str, *args: object, timeout: float = 3600) -> None:
        argv = [*self.daaf, *map(str, args)]
        start = time.monotonic()
        try:
            result = subprocess.run(
                argv, cwd=self.root / "cwd", capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            raise PrepareError(
                f"preparing {step}: {shlex.join(argv)} ran over {timeout} s"
            ) from None
        if result.returncode:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise PrepareError(
                f"preparing {step}: {shlex.join(argv)} exited {result.returncode}:\n{tail}"
            )
        self.echo(f"prepared {step} ({time.monotonic() - start:.0f} s)")

    def synth(self, name: str, identities: int, per_identity: int, seed: int = 0) -> Path:
        out = self.root / name
        self.run_daaf(
            name,
            "synth",
            "--out",
            out,
            "--identities",
            identities,
            "--cameras",
            2,
            "--images-per-identity",
            per_identity,
            "--seed",
            seed,
            "--workers",
            1,
        )
        return out

    @property
    def data(self) -> Path:
        """A Market-1501-layout dataset with its exact annotation store (12 identities)."""
        return self.once("data", lambda: self.synth("data", 12, 4))

    @property
    def other(self) -> Path:
        """Another dataset: other identities, other file names."""
        return self.once("other", lambda: self.synth("other", 6, 4, seed=7))

    @property
    def big(self) -> Path:
        """320 images: enough for an interrupt to land while workers run."""
        return self.once("big", lambda: self.synth("big", 40, 8))

    def _train(self) -> Path:
        self.run_daaf("run", *train(self.root / "run", self.data)[1:])
        return self.root / "run"

    @property
    def run(self) -> Path:
        return self.once("run", self._train)

    @property
    def checkpoint(self) -> Path:
        return self.run / "checkpoints" / "last.pt"

    def _export(self) -> Path:
        self.run_daaf("model", "export", self.checkpoint, "--out", self.root / "model")
        return self.root / "model"

    @property
    def model(self) -> Path:
        return self.once("model", self._export)

    def _embed(self, name: str, images: Path) -> Path:
        out = self.root / "feats" / f"{name}.h5"
        out.parent.mkdir(exist_ok=True)
        self.run_daaf(
            f"feats/{name}.h5",
            "embed",
            "--model",
            self.model,
            "--images",
            images,
            "--out",
            out,
            "--workers",
            0,
        )
        return out

    @property
    def gallery_h5(self) -> Path:
        folder = market(self.data) / "bounding_box_test"
        return self.once("gallery_h5", lambda: self._embed("gallery", folder))

    @property
    def query_h5(self) -> Path:
        return self.once("query_h5", lambda: self._embed("query", market(self.data) / "query"))

    def _evaluate(self) -> Path:
        out = self.root / "evals" / "a"
        self.run_daaf(
            "evals/a",
            "evaluate",
            "--model",
            self.model,
            "--dataset",
            "synthetic",
            "--root",
            self.data,
            "--out",
            out,
            "--workers",
            0,
            "--num-ranklists",
            2,
        )
        return out

    @property
    def evaluation(self) -> Path:
        return self.once("evaluation", self._evaluate)

    @property
    def evaluation_copy(self) -> Path:
        copy = self.root / "evals" / "b"
        return self.once("evaluation_copy", lambda: Path(shutil.copytree(self.evaluation, copy)))

    def broken_model(self, value: float) -> Path:
        """An export folder whose weights are all ``value`` (NaN, inf)."""
        target = self.root / f"{value}_model" / "model_state.pt"
        return broken_weights(self.model / "model_state.pt", target, "state_dict", value).parent

    def broken_checkpoint(self, value: float) -> Path:
        """A run whose last.pt has all its network's weights ``value``."""
        run = self.root / f"{value}_run"
        broken_weights(self.checkpoint, run / "checkpoints" / "last.pt", "model", value)
        shutil.copy(self.run / "config.yaml", run / "config.yaml")
        return run / "checkpoints" / "last.pt"

    nan_model = property(lambda self: self.once("nan_model", partial(self.broken_model, NAN)))
    inf_model = property(lambda self: self.once("inf_model", partial(self.broken_model, INF)))
    nan_checkpoint = property(
        lambda self: self.once("nan_checkpoint", partial(self.broken_checkpoint, NAN))
    )
    inf_checkpoint = property(
        lambda self: self.once("inf_checkpoint", partial(self.broken_checkpoint, INF))
    )


class Lane(Scratch):
    """One lane of the pass: its own scratch folder, user files, planted payloads and markers,
    and the Shared files (its attributes, read through)."""

    def __init__(self, root: Path, shared: Shared, echo: Callable[[str], None] = print) -> None:
        super().__init__(root)
        self.shared, self.daaf, self.echo = shared, shared.daaf, echo

    def __getattr__(self, name: str):
        if name == "shared":
            raise AttributeError(name)
        return getattr(self.shared, name)

    def watched(self) -> list[Path]:
        return super().watched() + list(self.shared.ready)

    @cached_property
    def user(self) -> Path:
        """A folder of the user's own files, named as daaf names its outputs."""
        return make_user_files(self.root / "user", self.data)

    @cached_property
    def daaf_made(self) -> Path:
        """Folders daaf made, of each kind: an export (its model_state.pt and marker), an
        evaluation, a synth dataset; copies, so that a command that wrongly takes one for its
        own damages only this lane's."""
        folder = self.root / "daaf_made"
        (folder / "model").mkdir(parents=True)
        for name in ("model_state.pt", ".daaf", "export_report.json"):
            shutil.copy(self.model / name, folder / "model" / name)
        shutil.copytree(self.evaluation, folder / "evaluation")
        shutil.copytree(self.data, folder / "dataset")
        return folder

    @cached_property
    def payload_pt(self) -> Path:
        """A checkpoint-shaped torch file whose unpickling touches a marker."""
        return write_payload_pt(self.root / "evil" / "payload.pt", self.markers / "payload_pt")

    @cached_property
    def payload_pickle(self) -> Path:
        """The same payload as a plain (legacy) pickle named model_state.pt."""
        path = self.root / "evil" / "pickle_model" / "model_state.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pickle.dumps({"state_dict": Payload(self.markers / "payload_pickle")}))
        return path

    @cached_property
    def torchscript(self) -> Path:
        """A folder holding only a model.ts whose forward overwrites markers/victim.txt."""
        return write_crafted_torchscript(self.root / "evil" / "ts", self.markers / "victim.txt")


def market(root: Path) -> Path:
    return root / "Market-1501-v15.09.15"


def train_argv(out: Path, data: Path, *extra: str) -> list[str]:
    """``daaf train`` of the tiny demo config on ``data``."""
    return [
        "daaf",
        "train",
        "--config",
        str(DEMO_CONFIG),
        "--out",
        str(out),
        f"data.root={data}",
        f"data.annotations={data / 'annotations'}",
        *TINY_TRAIN,
        *extra,
    ]


USER_FILES = (
    "manifest.csv",
    "store.json",
    "label_report.json",
    "model_state.pt",
    "model.ts",
    "model.onnx",
    "export_report.json",
    "checkpoints/last.pt",
    "checkpoints/epoch_001.pt",
    "config.yaml",
    "metrics.jsonl",
    "metrics.json",
    "metrics.csv",
    "per_query.csv",
    "results.csv",
    "report.html",
    "summary.md",
    "features.h5",
    "grid.png",
    "train-00000.h5",
    "notes.txt",
    "tensorboard/events.out",
)


def make_user_files(folder: Path, data: Path) -> Path:
    """The user's files: names daaf writes, contents only the user has, and two photos."""
    for index, name in enumerate(USER_FILES):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"the user's own {name}, #{index}\n".encode() + os.urandom(256))
    photos = folder / "photos"
    photos.mkdir()
    for image in sorted((market(data) / "query").iterdir())[:2]:
        shutil.copy(image, photos / image.name)
    return folder


class Payload:
    """Unpickling it runs ``touch MARKER``, as a malicious checkpoint would."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def write_payload_pt(path: Path, marker: Path) -> Path:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    payload = Payload(marker)
    torch.save(
        {"model": payload, "state_dict": payload, "config": {}, "num_classes": 2, "epoch": 1}, path
    )
    return path


def broken_weights(source: Path, target: Path, key: str, value: float) -> Path:
    """``source`` (a daaf .pt) with every floating tensor of ``key`` set to ``value``."""
    import torch

    state = torch.load(source, map_location="cpu", weights_only=True)
    for name, tensor in state[key].items():
        if tensor.is_floating_point():
            state[key][name] = torch.full_like(tensor, value)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, target)
    return target


CRAFTED_TORCHSCRIPT = """
import json, sys
import torch


class Overwrites(torch.nn.Module):
    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mapped = torch.from_file(self.target, shared=True, size=4, dtype=torch.uint8)
        mapped.fill_(88)
        return images.flatten(1)[:, :8] + mapped[0].float() * 0


meta = {"height": 64, "width": 32, "pixel_mean": [0, 0, 0], "pixel_std": [1, 1, 1],
        "metric": "cosine", "embedding_dim": 8}
torch.jit.save(torch.jit.script(Overwrites(sys.argv[2])), sys.argv[1],
               _extra_files={"daaf_meta.json": json.dumps(meta)})
"""


def write_crafted_torchscript(folder: Path, victim: Path) -> Path:
    """A model.ts with daaf's meta whose forward overwrites the first bytes of ``victim``
    (``torch.from_file`` maps it shared): what a crafted TorchScript can do. Scripted in a
    process of its own, from a source file (TorchScript reads the source it compiles)."""
    victim.write_text("precious contents")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "make_model_ts.py"
        source.write_text(CRAFTED_TORCHSCRIPT)
        argv = [sys.executable, str(source), str(folder / "model.ts"), str(victim)]
        subprocess.run(argv, check=True, capture_output=True)
    return folder


# ---------------------------------------------------------------------------------------------
# Hostile files


def copy_dataset(source: Path, target: Path) -> Path:
    if not target.exists():
        shutil.copytree(source, target, symlinks=True)
    return target


def swap_images(source: Path, target: Path, mirror_only: bool = False) -> None:
    """A copy of the dataset whose first two training images (of two identities) trade bytes
    under their names, or (``mirror_only``) whose first one is mirrored: labels now of other
    pixels."""
    import cv2

    images = sorted((market(copy_dataset(source, target)) / "bounding_box_train").glob("*.jpg"))
    first = images[0]
    if mirror_only:
        cv2.imwrite(str(first), cv2.flip(cv2.imread(str(first)), 1))
        return
    second = next(image for image in images if image.name[:4] != first.name[:4])
    first_bytes = first.read_bytes()
    first.write_bytes(second.read_bytes())
    second.write_bytes(first_bytes)


def reorder_labels(source: Path, target: Path) -> None:
    """A copy of the dataset whose training shard holds its labels (masks, keypoints, boxes,
    scores, statuses and image digests) in reverse row order, each image keeping its path and
    identity; content_sha256 recomputed and manifest.csv rebuilt, as a careful forger would:
    the store is whole, and only the per-row image SHA-256 ties labels to their images."""
    import h5py

    from daaf.data.annotations.shards import hash_datasets
    from daaf.data.annotations.writer import AnnotationWriter

    store = copy_dataset(source, target) / "annotations"
    labels = ("image_size", "mask", "keypoints", "person_box", "person_score", "status")
    with h5py.File(store / "train-00000.h5", "r+") as shard:
        for name in (*labels, "image_sha256"):
            shard[name][...] = shard[name][()][::-1]
        shard.attrs.modify("content_sha256", hash_datasets(shard))
    AnnotationWriter(store, "synthetic", {}).write_manifest()


def corrupt_shard(source: Path, target: Path) -> None:
    """A copy of the dataset whose training shard has bytes flipped in its middle."""
    shard = copy_dataset(source, target) / "annotations" / "train-00000.h5"
    data = bytearray(shard.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    shard.write_bytes(bytes(data))


def forge_embeddings(source: Path, target: Path, edit: Callable) -> None:
    """A copy of an embedding file that ``edit(h5py.File)`` makes hostile."""
    import h5py

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    with h5py.File(target, "r+") as file:
        edit(file)


def replace_dataset(file, name: str, values) -> None:
    del file[name]
    file.create_dataset(name, data=values)


def set_attr(name: str, value) -> Callable:
    return lambda file: file.attrs.__setitem__(name, value)


def edit_features(make: Callable, dim: int | None = None) -> Callable:
    """An edit replacing ``features`` by ``make(features)`` (and ``embedding_dim`` by dim)."""

    def edit(file) -> None:
        replace_dataset(file, "features", make(file["features"][()]))
        if dim is not None:
            file.attrs["embedding_dim"] = dim

    return edit


def edit_paths(extra: int) -> Callable:
    """An edit giving ``paths`` ``extra`` more (or fewer, negative) entries than features."""

    def edit(file) -> None:
        paths = list(file["paths"][()])
        paths = paths[:extra] if extra < 0 else paths + [b"extra_%d.jpg" % i for i in range(extra)]
        import h5py

        del file["paths"]
        file.create_dataset("paths", data=paths, dtype=h5py.string_dtype())

    return edit


def sparse_billion(file) -> None:
    """10^9 rows of features and paths that store nothing (HDF5 fills them in on reading)."""
    import h5py

    rows = 10**9
    for name in ("features", "paths"):
        del file[name]
    file.create_dataset("features", shape=(rows, 512), dtype="f4", chunks=(1024, 512))
    file.create_dataset("paths", shape=(rows,), dtype=h5py.string_dtype(), chunks=(4096,))
    for name in ("rows", "done", "num_inputs"):
        file.attrs[name] = rows


# Forgeries of what only `daaf embed --resume` reads (and checks): search may ignore them.
READ_BY_RESUME_ONLY = ("num_inputs attribute 10^12",)


def forgeries() -> dict[str, Callable]:
    """Hand-made embedding files: name -> edit."""
    import numpy as np

    return {
        "features of dimension 64, embedding_dim 64": edit_features(lambda f: f[:, :64], 64),
        "features of dimension 64, embedding_dim still 512": edit_features(lambda f: f[:, :64]),
        "1-D features": edit_features(lambda f: f.ravel()),
        "3-D features": edit_features(lambda f: f[:, :, None]),
        "string features": edit_features(lambda f: np.array([b"x" * 8] * len(f))),
        "integer features": edit_features(lambda f: (f * 1000).astype(np.int64)),
        "NaN features": edit_features(lambda f: np.full_like(f, np.nan)),
        "inf features": edit_features(lambda f: np.full_like(f, np.inf)),
        "3 fewer paths than features": edit_paths(-3),
        "3 more paths than features": edit_paths(3),
        "rows attribute 10^12": set_attr("rows", 10**12),
        "rows attribute -5": set_attr("rows", -5),
        "num_inputs attribute 10^12": set_attr("num_inputs", 10**12),
        "embedding_dim attribute a string": set_attr("embedding_dim", "512; rm -rf ~"),
        "metric attribute 'nonsense'": set_attr("metric", "nonsense"),
        "incomplete (complete = false)": set_attr("complete", False),
        "no features dataset": lambda file: file.__delitem__("features"),
        "paths as integers": lambda file: replace_dataset(
            file, "paths", np.arange(len(file["paths"]))
        ),
        "10^9 rows that store nothing": sparse_billion,
    }


def make_fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.mkfifo(path)
    return path


def make_socket(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        socket.socket(socket.AF_UNIX).bind(str(path))
    return path


def make_link(path: Path, target: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_symlink():
        path.symlink_to(target)
    return path


def write_file(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def images_with(folder: Path, data: Path, extra: Callable[[Path], object]) -> Path:
    """A folder of three real images plus whatever ``extra(folder)`` adds."""
    folder.mkdir(parents=True, exist_ok=True)
    for image in sorted((market(data) / "query").iterdir())[:3]:
        shutil.copy(image, folder / image.name)
    extra(folder)
    return folder


def odd_names(folder: Path) -> None:
    """Images whose names hold a byte that is no UTF-8, a newline and a tab."""
    source = next(folder.glob("*.jpg")).read_bytes()
    for name in (b"odd\xff\xfe.jpg", b"new\nline.jpg", b"tab\tname.jpg"):
        Path(os.fsdecode(os.path.join(os.fsencode(folder), name))).write_bytes(source)


def unreadable_images(folder: Path) -> None:
    source = next(folder.glob("*.jpg")).read_bytes()
    (folder / "truncated.jpg").write_bytes(source[: len(source) // 3])
    (folder / "text.jpg").write_text("not an image\n")


def bomb_png(path: Path) -> Path:
    """A PNG of 20,000 x 20,000 black pixels: a few hundred KiB that decode to 1.1 GiB."""
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        cv2.imwrite(str(path), np.zeros((20000, 20000), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return path


def custom_html_dataset(data: Path, root: Path) -> Path:
    """A `custom` dataset (dataset.csv) of the query and gallery images, under a root whose
    path holds HTML_PAYLOADS[0] and with file names holding HTML_PAYLOADS[1]."""
    rows = ["path,pid,camid,split"]
    (root / "images").mkdir(parents=True, exist_ok=True)
    for split, folder in (("query", "query"), ("gallery", "bounding_box_test")):
        for index, image in enumerate(sorted((market(data) / folder).glob("*.jpg"))):
            pid, camera = image.name.split("_")[:2]
            if int(pid) <= 0:
                continue
            name = f"images/{HTML_PAYLOADS[1]}_{split}{index}.jpg"
            shutil.copy(image, root / name)
            rows.append(f"{name},{int(pid)},{int(camera[1]) - 1},{split}")
    (root / "dataset.csv").write_text("\n".join(rows) + "\n")
    return root


def html_dir(base: Path) -> Path:
    """A folder whose path holds HTML_PAYLOADS[0] (its '/' makes it two folders)."""
    return base / HTML_PAYLOADS[0]


def model_named_html(model: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "model_state.pt").exists():
        os.link(model / "model_state.pt", folder / "model_state.pt")


# ---------------------------------------------------------------------------------------------
# Checks run after an attempt


def nothing_left(path: Path) -> Callable[[], str | None]:
    return lambda: f"the refused run left {path.name}" if path.exists() else None


def report_escaped(report: Path) -> Callable[[], str | None]:
    def check() -> str | None:
        if not report.is_file():
            return f"no {report.name}"
        text = report.read_text(errors="replace")
        raw = [payload for payload in HTML_PAYLOADS if payload in text]
        return f"{report.name} holds {raw[0]!r} unescaped" if raw else None

    return check


# ---------------------------------------------------------------------------------------------
# The cases, by category. Each builder returns its cases in the order they run.


def daaf_argv(command: str, *extra: object, **options: object) -> list:
    """``daaf COMMAND --option value ...`` (an underscore in a name is a dash; a list value is
    several words), then ``extra``."""
    argv: list = ["daaf", *command.split()]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", *(value if isinstance(value, list) else [value])]
    return [*argv, *extra]


def validate(root: Path, store: Path | None = None) -> list:
    return daaf_argv("annotations validate", store or root / "annotations", root=root)


def embed(
    p: Lane, images: list, out: Path, *extra: object, model: Path | None = None, workers: int = 0
) -> list:
    return daaf_argv(
        "embed", *extra, model=model or p.model, images=list(images), out=out, workers=workers
    )


def search(
    p: Lane,
    out: Path,
    gallery: Path | None = None,
    query: Path | None = None,
    *extra: object,
    model: Path | None = None,
) -> list:
    return daaf_argv(
        "search",
        *extra,
        gallery=gallery or p.gallery_h5,
        query=query or p.query_h5,
        model=model or p.model,
        out=out,
    )


def evaluate(
    p: Lane,
    out: Path,
    *extra: object,
    model: Path | None = None,
    root: Path | None = None,
    dataset: str = "synthetic",
    workers: int = 0,
) -> list:
    return daaf_argv(
        "evaluate",
        *extra,
        model=model or p.model,
        dataset=dataset,
        root=root or p.data,
        out=out,
        workers=workers,
    )


def compare(p: Lane, *extra: object, baseline: Path | None = None) -> list:
    return daaf_argv(
        "compare", *extra, baseline=baseline or p.evaluation, candidate=p.evaluation_copy
    )


def train(out: Path, data: Path, *extra: str, config: Path = DEMO_CONFIG) -> list:
    """``daaf train`` of the tiny demo settings, where ``extra`` KEY=VALUE replace theirs."""
    keys = {item.split("=", 1)[0] for item in extra if "=" in item}
    tiny = [item for item in TINY_TRAIN if item.split("=", 1)[0] not in keys]
    overrides = [f"data.root={data}", f"data.annotations={data / 'annotations'}", *tiny, *extra]
    return daaf_argv("train", *overrides, config=config, out=out)


def visualize(p: Lane, out: Path, *extra: object, model: Path | None = None) -> list:
    return daaf_argv(
        "visualize",
        *extra,
        model=model or p.checkpoint,
        dataset="synthetic",
        root=p.data,
        out=out,
        device="cpu",
    )


def label(p: Lane, out: Path, *extra: object) -> list:
    return daaf_argv(
        "label",
        *extra,
        dataset="synthetic",
        root=p.data,
        out=out,
        weights="random",
        device="cpu",
        min_size=32,
    )


def labels_bound(p: Lane) -> list[Case]:
    """Labels stay bound to the images they were made from (issue 30, item 1)."""
    swapped, mirrored = p.case_dir("swapped"), p.case_dir("mirrored")
    reordered = p.case_dir("reordered")
    return [
        Case("validate: the untouched dataset", validate(p.data), "accept"),
        Case(
            "validate: two training images swapped under their names",
            validate(swapped),
            setup=partial(swap_images, p.data, swapped),
        ),
        Case("train: on those swapped images", train(p.out("train-swapped"), swapped)),
        Case(
            "validate: a training image re-cropped (mirrored) under its name",
            validate(mirrored),
            setup=partial(swap_images, p.data, mirrored, True),
        ),
        Case("train: on that re-cropped image", train(p.out("train-mirrored"), mirrored)),
        Case(
            "validate: labels rewritten in another order, content_sha256 and manifest redone",
            validate(reordered),
            setup=partial(reorder_labels, p.data, reordered),
        ),
        Case("train: on that reordered store", train(p.out("train-reordered"), reordered)),
    ]


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:60]


def embedding_files(p: Lane) -> list[Case]:
    """Hand-made embedding files never crash `daaf search` (item 2)."""
    folder = p.case_dir("forged")
    cases = [
        Case("the gallery as daaf embed wrote it", search(p, p.out("search-control")), "accept")
    ]
    for name, edit in forgeries().items():
        path = folder / f"{slug(name)}.h5"
        cases.append(
            Case(
                f"--gallery with {name}",
                search(p, p.out(slug(name)), path),
                "either" if name in READ_BY_RESUME_ONLY else "refuse",
                setup=partial(forge_embeddings, p.gallery_h5, path, edit),
                timeout=HANG,
            )
        )
    for name in ("1-D features", "3 more paths than features", "rows attribute -5"):
        path = folder / f"query-{slug(name)}.h5"
        cases.append(
            Case(
                f"--query with {name}",
                search(p, p.out(f"q-{slug(name)}"), None, path),
                setup=partial(forge_embeddings, p.query_h5, path, forgeries()[name]),
                timeout=HANG,
            )
        )
    whole = {"a text file named .h5": b"features,paths\n1,a.jpg\n", "an empty file": b""}
    for name, content in whole.items():
        path = folder / f"{slug(name)}.h5"
        cases.append(
            Case(
                f"--gallery is {name}",
                search(p, p.out(slug(name)), path),
                setup=partial(write_file, path, content),
            )
        )
    half = folder / "truncated.h5"
    cases += [
        Case(
            "--gallery cut to half its bytes",
            search(p, p.out("truncated"), half),
            setup=lambda: write_file(
                half, p.gallery_h5.read_bytes()[: p.gallery_h5.stat().st_size // 2]
            ),
        ),
        Case("--gallery is a directory", search(p, p.out("gallery-dir"), folder)),
    ]
    return cases


def foreign_pids(p: Lane) -> list[Case]:
    """`daaf search --pids NAME --root DIR` with another dataset's identities (item 8)."""
    return [
        Case(
            "--pids of the gallery's own dataset",
            search(p, p.out("pids-own"), None, None, "--pids", "synthetic", "--root", p.data),
            "accept",
        ),
        Case(
            "--pids of another dataset: no gallery path in it",
            search(p, p.out("pids-other"), None, None, "--pids", "synthetic", "--root", p.other),
            warn_ok=r"(?i)warn",
        ),
        Case(
            "--pids of a dataset name that does not exist",
            search(p, p.out("pids-nosuch"), None, None, "--pids", "nosuch", "--root", p.data),
        ),
        Case(
            "--pids without --root",
            search(p, p.out("pids-noroot"), None, None, "--pids", "synthetic"),
        ),
        Case(
            "--pids with --root /dev/null",
            search(
                p, p.out("pids-devnull"), None, None, "--pids", "synthetic", "--root", "/dev/null"
            ),
        ),
    ]


def special_inputs(p: Lane) -> list[Case]:
    """FIFOs, devices, sockets and odd bytes as images and lists (item 3)."""
    d = p.case_dir("special")
    fifo_folder, socket_folder, odd = d / "fifo_folder", d / "socket_folder", d / "odd_names"
    make_fifo_folder = partial(
        images_with, fifo_folder, p.data, lambda f: make_fifo(f / "0001_c1s1_000001_00.jpg")
    )

    def list_with_fifo() -> None:
        make_fifo_folder()
        names = sorted(path.name for path in fifo_folder.iterdir() if path.suffix == ".jpg")
        write_file(fifo_folder / "list.txt", "\n".join(names) + "\n")

    bad_list = d / "bad_utf8.txt"
    bad_list_out = p.out("bad-utf8.h5")
    first = sorted((market(p.data) / "query").iterdir())[0]
    return [
        Case(
            "embed: a folder holding a FIFO named like an image",
            embed(p, [fifo_folder], p.out("fifo-folder.h5")),
            "either",
            HANG,
            setup=make_fifo_folder,
        ),
        Case(
            "embed: a FIFO given as the image",
            embed(p, [d / "alone.jpg"], p.out("fifo.h5")),
            timeout=HANG,
            setup=partial(make_fifo, d / "alone.jpg"),
        ),
        Case(
            "embed: a folder holding a socket named like an image",
            embed(p, [socket_folder], p.out("socket.h5")),
            "either",
            HANG,
            setup=partial(images_with, socket_folder, p.data, lambda f: make_socket(f / "s.jpg")),
        ),
        Case(
            "embed: /dev/zero as an image", embed(p, ["/dev/zero"], p.out("zero.h5")), timeout=HANG
        ),
        Case(
            "embed: /dev/null as an image", embed(p, ["/dev/null"], p.out("null.h5")), timeout=HANG
        ),
        Case(
            "embed: a list file that links to /dev/zero",
            embed(p, [d / "zero.txt"], p.out("zero-list.h5")),
            timeout=HANG,
            setup=partial(make_link, d / "zero.txt", Path("/dev/zero")),
        ),
        Case(
            "embed: a list file that is a FIFO",
            embed(p, [d / "fifo.txt"], p.out("fifo-list.h5")),
            timeout=HANG,
            setup=partial(make_fifo, d / "fifo.txt"),
        ),
        Case(
            "embed: a list naming a FIFO among images",
            embed(p, [fifo_folder / "list.txt"], p.out("list-fifo.h5")),
            "either",
            HANG,
            setup=list_with_fifo,
        ),
        Case(
            "embed: a list file with bytes that are no UTF-8",
            embed(p, [bad_list], bad_list_out),
            timeout=HANG,
            check=nothing_left(bad_list_out),
            setup=partial(
                write_file, bad_list, b"\xff\xfe\x00\x81bad\n" + os.fsencode(first) + b"\n"
            ),
        ),
        Case(
            "embed: image names with a non-UTF-8 byte, a newline, a tab",
            embed(p, [odd], p.out("odd-names.h5")),
            "either",
            HANG,
            setup=partial(images_with, odd, p.data, odd_names),
        ),
        Case(
            "embed: --out is a FIFO",
            embed(p, [first], d / "out_fifo.h5"),
            timeout=HANG,
            setup=partial(make_fifo, d / "out_fifo.h5"),
        ),
        Case("embed: --out /dev/null", embed(p, [first], "/dev/null"), timeout=HANG),
        Case("embed: --out /dev/full", embed(p, [first], "/dev/full"), timeout=HANG),
        Case(
            "embed: --model is a FIFO",
            embed(p, [first], p.out("model-fifo.h5"), model=d / "model_fifo.pt"),
            timeout=HANG,
            setup=partial(make_fifo, d / "model_fifo.pt"),
        ),
        Case(
            "embed: --model /dev/zero",
            embed(p, [first], p.out("model-zero.h5"), model=Path("/dev/zero")),
            timeout=HANG,
        ),
        *special_outputs_and_stores(p, d),
    ]


def fifo_in_dataset(p: Lane, root: Path) -> None:
    """A copy of the dataset whose first gallery image is a FIFO."""
    image = sorted((market(copy_dataset(p.data, root)) / "bounding_box_test").glob("*.jpg"))[0]
    if not image.is_fifo():
        image.unlink()
        make_fifo(image)


def fifo_shard(p: Lane, store: Path) -> None:
    copy_dataset(p.data / "annotations", store)
    shard = store / "query-00000.h5"
    if not shard.is_fifo():
        shard.unlink()
        make_fifo(shard)


def special_outputs_and_stores(p: Lane, d: Path) -> list[Case]:
    """Special files as gallery, dataset image, shard, --queries CSV and --out."""
    fifo_data, fifo_store = d / "fifo_data", d / "fifo_store"
    first = sorted((market(p.data) / "query").iterdir())[0]
    return [
        Case(
            "search: --gallery is a FIFO",
            search(p, p.out("gallery-fifo"), d / "gallery.h5"),
            timeout=HANG,
            setup=partial(make_fifo, d / "gallery.h5"),
        ),
        Case(
            "search: --out is a FIFO",
            search(p, d / "search_out"),
            timeout=HANG,
            setup=partial(make_fifo, d / "search_out"),
        ),
        Case(
            "search: a query image that is a FIFO",
            search(p, p.out("query-fifo"), None, d / "query_fifo.jpg"),
            timeout=HANG,
            setup=partial(make_fifo, d / "query_fifo.jpg"),
        ),
        Case(
            "evaluate: a dataset whose gallery image is a FIFO",
            evaluate(p, p.out("eval-fifo"), root=fifo_data),
            "either",
            120,
            setup=partial(fifo_in_dataset, p, fifo_data),
        ),
        Case(
            "datasets check --decode of that dataset",
            ["daaf", "datasets", "check", "synthetic", "--root", fifo_data, "--decode"],
            timeout=HANG,
            warn_ok=r"(?i)fifo|not a regular file",
            setup=partial(fifo_in_dataset, p, fifo_data),
        ),
        Case(
            "annotations validate: a shard that is a FIFO",
            validate(p.data, fifo_store),
            timeout=HANG,
            setup=partial(fifo_shard, p, fifo_store),
        ),
        Case(
            "compare: --queries names a FIFO",
            compare(p, "--queries", f"{d / 'q.csv'}:occluded"),
            timeout=HANG,
            setup=partial(make_fifo, d / "q.csv"),
        ),
        Case("evaluate: --out /dev/null", evaluate(p, "/dev/null"), timeout=HANG),
        Case(
            "export: --out /dev/null",
            ["daaf", "export", p.checkpoint, "--out", "/dev/null"],
            timeout=HANG,
        ),
        Case(
            "annotations show: --out /dev/full",
            ["daaf", "annotations", "show", p.data / "annotations", "--out", "/dev/full"],
            timeout=HANG,
        ),
        Case(
            "search: --query /dev/zero",
            search(p, p.out("query-zero"), None, Path("/dev/zero")),
            timeout=HANG,
        ),
        Case(
            "embed: --images names the same file twice and a missing one",
            embed(p, [first, first, d / "missing.jpg"], p.out("twice.h5")),
            "either",
        ),
    ]


def odd_name(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem`` + a byte that is no UTF-8 and a newline + ``suffix``."""
    return Path(os.fsdecode(os.fsencode(folder / stem) + b"\xff\n" + suffix.encode()))


def special_names(p: Lane) -> list[Case]:
    """Sockets, devices and names with odd bytes as list files, configs and --out (item 3)."""
    d = p.case_dir("special_names")
    first = sorted((market(p.data) / "query").iterdir())[0]
    odd_list, odd_config = odd_name(d, "list", ".txt"), odd_name(d, "config", ".yaml")
    mixed = d / "mixed_list.txt"

    def list_of_specials() -> None:
        make_socket(d / "listed.sock")
        write_file(mixed, f"{first}\n{d / 'listed.sock'}\n/dev/zero\n/dev/null\n")

    def run(config: Path | str, name: str, **kwargs) -> Case:
        return Case(name, train(p.out(f"special-{slug(name)}"), p.data, config=config), **kwargs)

    return [
        Case(
            "embed: a list file that is a socket",
            embed(p, [d / "socket_list.txt"], p.out("list-socket.h5")),
            timeout=HANG,
            setup=partial(make_socket, d / "socket_list.txt"),
        ),
        Case(
            "embed: a list file whose name holds a non-UTF-8 byte and a newline",
            embed(p, [odd_list], p.out("odd-list.h5")),
            "either",
            HANG,
            setup=partial(write_file, odd_list, f"{first}\n"),
        ),
        Case(
            "embed: a list naming an image, a socket, /dev/zero and /dev/null",
            embed(p, [mixed], p.out("mixed-list.h5")),
            "either",
            HANG,
            setup=list_of_specials,
        ),
        Case(
            "embed: --out is a socket",
            embed(p, [first], d / "out.sock"),
            timeout=HANG,
            setup=partial(make_socket, d / "out.sock"),
        ),
        Case(
            "embed: --out a name with a non-UTF-8 byte and a newline",
            embed(p, [first], odd_name(p.out(""), "embed", ".h5")),
            "either",
            HANG,
        ),
        Case(
            "search: --out a folder name with a non-UTF-8 byte and a newline",
            search(p, odd_name(p.out(""), "search", "")),
            "either",
            HANG,
        ),
        Case(
            "evaluate: --out is a socket",
            evaluate(p, d / "eval.sock"),
            timeout=HANG,
            setup=partial(make_socket, d / "eval.sock"),
        ),
        Case(
            "train: --out is a socket",
            train(d / "train.sock", p.data),
            timeout=HANG,
            setup=partial(make_socket, d / "train.sock"),
        ),
        Case(
            "export: --out /dev/zero",
            ["daaf", "export", p.checkpoint, "--out", "/dev/zero"],
            timeout=HANG,
        ),
        run(
            d / "config.sock",
            "train: --config is a socket",
            timeout=HANG,
            setup=partial(make_socket, d / "config.sock"),
        ),
        run(
            d / "base_socket.yaml",
            "train: _base_ names a socket",
            timeout=HANG,
            setup=lambda: (
                make_socket(d / "base.sock"),
                write_file(d / "base_socket.yaml", f"_base_: {d / 'base.sock'}\n"),
            ),
        ),
        run(
            odd_config,
            "train: --config whose name holds a non-UTF-8 byte and a newline",
            expect="either",
            timeout=240,
            setup=partial(write_file, odd_config, f"_base_: {DEMO_CONFIG}\n"),
        ),
    ]


def refused_then_rerun(p: Lane) -> list[Case]:
    """A refused run leaves nothing that blocks the plain rerun (item 4)."""
    feats, evaluated, exported = (
        p.out("nan-then-good.h5"),
        p.out("eval-rerun"),
        p.out("export-rerun"),
    )
    searched, compared = p.out("search-rerun"), p.out("compare-rerun")
    synthed, trained, bad_store = (
        p.out("synth-rerun"),
        p.out("train-rerun"),
        p.case_dir("bad_store"),
    )
    images = [market(p.data) / "bounding_box_test"]
    return [
        Case(
            "embed: a NaN model, refused, leaves no --out",
            embed(p, images, feats, model=p.nan_model),
            check=nothing_left(feats),
        ),
        Case("embed: the plain rerun with a good model", embed(p, images, feats), "accept"),
        Case(
            "search: that rerun's file as the gallery",
            search(p, p.out("search-after"), feats),
            "accept",
        ),
        Case("evaluate: a NaN model, refused", evaluate(p, evaluated, model=p.nan_model)),
        Case("evaluate: the plain rerun", evaluate(p, evaluated), "accept", 180),
        Case(
            "export: a NaN checkpoint, refused",
            ["daaf", "export", p.nan_checkpoint, "--out", exported],
        ),
        Case(
            "export: the plain rerun",
            ["daaf", "export", p.checkpoint, "--out", exported],
            "accept",
            180,
        ),
        Case("search: a gallery of another model, refused", search(p, searched, model=p.nan_model)),
        Case("search: the plain rerun", search(p, searched), "accept"),
        Case(
            "compare --out: a --queries CSV that does not exist, refused",
            compare(p, "--queries", f"{p.case_dir('none.csv')}:occluded", "--out", compared),
        ),
        Case("compare --out: the plain rerun", compare(p, "--out", compared), "accept"),
        Case(
            "synth: an unknown preset, refused",
            ["daaf", "synth", "--out", synthed, "--preset", "nonsense", "--identities", 4],
        ),
        Case(
            "synth: the plain rerun",
            daaf_argv("synth", out=synthed, identities=4, images_per_identity=4, workers=1),
            "accept",
        ),
        Case(
            "train: a store with a corrupted shard, refused",
            train(trained, bad_store),
            setup=partial(corrupt_shard, p.data, bad_store),
        ),
        Case("train: the plain rerun on the good store", train(trained, p.data), "accept", 240),
    ]


def bounded_options(p: Lane) -> list[Case]:
    """Every count, size and repeat option is bounded (item 5)."""
    first = [sorted((market(p.data) / "query").iterdir())[0]]

    def synth(*args: object) -> list:
        return ["daaf", "synth", "--out", p.out("synth-" + slug(" ".join(map(str, args)))), *args]

    huge = str(10**30)
    return [
        Case("compare --bootstrap 1000000000", compare(p, "--bootstrap", 10**9), timeout=HANG),
        Case("compare --bootstrap 10^30", compare(p, "--bootstrap", huge), timeout=HANG),
        Case("compare --bootstrap 1e30", compare(p, "--bootstrap", "1e30"), timeout=HANG),
        Case("compare --bootstrap -1", compare(p, "--bootstrap", -1)),
        Case("compare --seed 10^30", compare(p, "--seed", huge)),
        Case(
            "search --top 10^12",
            search(p, p.out("top-huge"), None, None, "--top", 10**12),
            "either",
            HANG,
        ),
        Case("search --top 0", search(p, p.out("top-0"), None, None, "--top", 0)),
        Case("search --top -1", search(p, p.out("top-neg"), None, None, "--top", -1)),
        Case(
            "embed --batch-size 10^12",
            embed(p, first, p.out("batch-huge.h5"), "--batch-size", 10**12),
            "either",
            HANG,
        ),
        Case(
            "embed --workers 100000",
            embed(p, first, p.out("workers-huge.h5"), "--workers", 100000),
            timeout=HANG,
        ),
        Case(
            "evaluate --num-ranklists 10^9",
            evaluate(p, p.out("ranklists-huge"), "--num-ranklists", 10**9),
            "either",
            120,
        ),
        Case("synth --identities 10^9", synth("--identities", 10**9), timeout=HANG),
        Case(
            "synth --images-per-identity 10^9", synth("--images-per-identity", 10**9), timeout=HANG
        ),
        Case("synth --cameras 10^6", synth("--cameras", 10**6), timeout=HANG),
        Case("synth --identities 0", synth("--identities", 0), timeout=HANG),
        Case("synth --occlusion 5", synth("--occlusion", 5), timeout=HANG),
        Case("synth --occlusion nan", synth("--occlusion", "nan"), timeout=HANG),
        Case("synth --workers 100000", synth("--workers", 100000, "--identities", 4), timeout=HANG),
        Case(
            "annotations show --n 10^9",
            daaf_argv(
                "annotations show", p.data / "annotations", out=p.out("show-huge.png"), n=10**9
            ),
            "either",
            HANG,
        ),
        Case(
            "visualize --jitter 10^6",
            visualize(p, p.out("jitter"), "--jitter", 10**6, "--n", 1),
            timeout=HANG,
        ),
        Case(
            "label --min-size 10^6",
            label(p, p.out("label-min-size"), "--min-size", 10**6, "--workers", 0),
            timeout=HANG,
        ),
        Case(
            "demo --identities 10^9",
            ["daaf", "demo", "--out", p.out("demo-ids"), "--identities", 10**9, "--device", "cpu"],
            timeout=HANG,
        ),
        Case(
            "demo --epochs 10^9",
            ["daaf", "demo", "--out", p.out("demo-epochs"), "--epochs", 10**9, "--device", "cpu"],
            timeout=HANG,
        ),
        *[
            Case(
                f"train {override}",
                train(p.out(f"train-{slug(override)}"), p.data, override),
                timeout=HANG,
            )
            for override in (
                "train.epochs=1000000000000",
                "train.iters_per_epoch=1000000000000000",
                "data.height=100000",
                "data.num_instances=1000000000",
                "optim.lr=nan",
                "optim.lr=inf",
            )
        ],
    ]


def stopped_runs(p: Lane, interrupt: Interrupt, expect: str, resumed: str) -> list[Case]:
    """embed, train and label, each stopped by ``interrupt`` once its workers run (then
    ``expect``), and the rerun: embed --resume (``resumed``), the same train command."""
    kind = slug(signal.Signals(interrupt.signum).name)
    images, feats = [market(p.big)], p.out(f"embed-{kind}.h5")
    trained, slow_train = p.out(f"train-{kind}"), ("data.workers=2", "train.iters_per_epoch=10")
    name = "Ctrl-C" if interrupt.signum == signal.SIGINT else "kill -9"
    return [
        Case(
            f"embed --workers 2: {name}",
            embed(p, images, feats, "--batch-size", 2, workers=2),
            expect,
            180,
            interrupt=interrupt,
        ),
        Case(f"embed --resume after {name}", embed(p, images, feats, "--resume"), resumed, 300),
        Case(
            f"train data.workers=2: {name}",
            train(trained, p.data, *slow_train),
            expect,
            240,
            interrupt=interrupt,
        ),
        Case(
            f"train: the same command after {name}",
            train(trained, p.data, *slow_train),
            "accept",
            300,
        ),
        Case(
            f"label --workers 2: {name}",
            label(p, p.out(f"label-{kind}"), "--workers", 2),
            expect,
            240,
            interrupt=interrupt,
        ),
    ]


def interrupts(p: Lane) -> list[Case]:
    """Ctrl-C (SIGINT to the process group) of commands that run workers prints one line,
    exits non-zero, and --resume works (item 6); SIGTERM leaves nothing alive."""
    ctrl_c = Interrupt(signal.SIGINT, processes=3, after=1.5)
    term = Interrupt(signal.SIGTERM, processes=3, after=1.5, group=False)
    images = [market(p.big)]
    return [
        *stopped_runs(p, ctrl_c, "refuse", "accept"),
        Case(
            "embed --workers 2: SIGTERM (kill PID) ends it, workers too",
            embed(p, images, p.out("terminated.h5"), "--batch-size", 2, workers=2),
            "killed",
            180,
            interrupt=term,
        ),
        Case(
            "evaluate --workers 2: Ctrl-C",
            evaluate(p, p.out("eval-interrupted"), "--batch-size", 2, root=p.big, workers=2),
            timeout=180,
            interrupt=ctrl_c,
        ),
    ]


def billion_laughs() -> str:
    """Nine levels of ten aliases each: 10^9 strings once expanded."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def configs(p: Lane) -> list[Case]:
    """Configs that mean what they say (item 7)."""
    d = p.case_dir("configs")
    base = f"_base_: {DEMO_CONFIG}\n"
    files = {
        "dup_key.yaml": base + "model:\n  depth: 18\n  depth: 50\n",
        "dup_section.yaml": base + "train:\n  epochs: 1\ntrain:\n  epochs: 3\n",
        "empty.yaml": "",
        "base_dir.yaml": f"_base_: {d}\n",
        "base_self.yaml": "_base_: base_self.yaml\n",
        "base_fifo.yaml": "_base_: fifo.yaml\n",
        "base_zero.yaml": "_base_: /dev/zero\n",
        "base_null.yaml": "_base_: /dev/null\n",
        "base_empty.yaml": "_base_: empty.yaml\n",
        "laughs.yaml": billion_laughs(),
        "deep.yaml": "[" * 100_000 + "]" * 100_000 + "\n",
        "list.yaml": "- model\n- data\n",
        "binary.yaml": bytes(range(256)) * 4,
        "empty_mapping.yaml": "{}\n",
    }

    def make_files() -> None:
        for name, content in files.items():
            write_file(d / name, content)
        make_fifo(d / "fifo.yaml")

    def run(config: Path | str, **kwargs) -> Case:
        name = kwargs.pop("name")
        return Case(name, train(p.out(f"cfg-{slug(name)}"), p.data, config=config), **kwargs)

    dup = r"(?i)twice|duplicate"
    return [
        run(
            d / "dup_key.yaml",
            name="a key given twice in one mapping",
            message=dup,
            setup=make_files,
        ),
        run(d / "dup_section.yaml", name="a section given twice", message=dup),
        run(d, name="--config names a directory", message=r"(?i)director"),
        run(d / "fifo.yaml", name="--config names a FIFO", message=r"(?i)fifo|pipe", timeout=HANG),
        run(
            d / "empty.yaml",
            name="--config names an empty file: says so, offline",
            message=r"(?is)^(?!.*download).*empty",
        ),
        run("/dev/null", name="--config /dev/null", message=r"(?i)device|empty"),
        run("/dev/zero", name="--config /dev/zero", message=r"(?i)device", timeout=HANG),
        run(d / "base_dir.yaml", name="_base_ names a directory", message=r"(?i)director"),
        run(
            d / "base_self.yaml",
            name="_base_ names the file itself",
            message=r"(?i)circular|itself|cycle|loop",
        ),
        run(
            d / "base_fifo.yaml", name="_base_ names a FIFO", message=r"(?i)fifo|pipe", timeout=HANG
        ),
        run(
            d / "base_zero.yaml",
            name="_base_ names /dev/zero",
            message=r"(?i)device",
            timeout=HANG,
        ),
        run(d / "base_null.yaml", name="_base_ names /dev/null", message=r"(?i)device|empty"),
        run(d / "base_empty.yaml", name="_base_ names an empty file", message=r"(?i)empty"),
        run(d / "laughs.yaml", name="a billion-laughs YAML (aliases of aliases)", timeout=HANG),
        run(d / "deep.yaml", name="lists nested 100,000 deep", timeout=HANG),
        run(d / "list.yaml", name="a list, not a mapping"),
        run(d / "binary.yaml", name="binary bytes"),
        Case(
            "an empty mapping, no overrides: says what it lacks, offline",
            daaf_argv("train", config=d / "empty_mapping.yaml", out=p.out("cfg-empty-mapping")),
            message=r"(?is)^(?!.*download).*data\.root",
            timeout=HANG,
        ),
        Case("an override without '='", train(p.out("cfg-no-equals"), p.data, "model.depth")),
        Case("an override of a section by a number", train(p.out("cfg-section"), p.data, "data=5")),
        Case(
            "an override of a key that does not exist",
            train(p.out("cfg-nokey"), p.data, "model.depht=50"),
            message=r"depht",
        ),
    ]


def user_files(p: Lane) -> list[Case]:
    """--out at a folder (or file) of the user's own files, for each command that writes:
    refused in one line, nothing lost."""
    u, store = p.user, p.data / "annotations"
    link = p.case_dir("link_to_user")
    return [
        Case("train --out", train(u, p.data)),
        Case("train --out --resume", train(u, p.data, "--resume")),
        Case("export --out", ["daaf", "export", p.checkpoint, "--out", u]),
        Case(
            "export --out the user's model_state.pt",
            ["daaf", "export", p.checkpoint, "--out", u / "model_state.pt"],
        ),
        Case("evaluate --out", evaluate(p, u)),
        Case("evaluate --out the user's notes.txt", evaluate(p, u / "notes.txt")),
        Case(
            "embed --out the user's features.h5",
            embed(p, [market(p.data) / "query"], u / "features.h5"),
        ),
        Case("embed --out the user's folder", embed(p, [market(p.data) / "query"], u)),
        Case(
            "embed --out an existing embedding file, no --resume",
            embed(p, [market(p.data) / "query"], p.gallery_h5),
        ),
        Case("search --out", search(p, u)),
        Case("compare --out", compare(p, "--out", u)),
        Case("synth --out", ["daaf", "synth", "--out", u, "--identities", 4]),
        Case(
            "synth --out a link to the user's folder",
            ["daaf", "synth", "--out", link, "--identities", 4],
            setup=partial(make_link, link, u),
        ),
        Case(
            "annotations show --out the user's grid.png",
            ["daaf", "annotations", "show", store, "--out", u / "grid.png"],
        ),
        Case("label --out", label(p, u, "--workers", 0), timeout=HANG),
        Case("label --out --overwrite", label(p, u, "--overwrite", "--workers", 0), timeout=HANG),
        Case(
            "visualize --out",
            visualize(p, u),
            timeout=HANG,
        ),
        Case("demo --out", ["daaf", "demo", "--out", u, "--device", "cpu"], timeout=HANG),
        Case("train --out an existing run", train(p.run, p.data)),
        *other_commands_folders(p),
        Case("annotations validate: the user's folder as a store", validate(p.data, u)),
    ]


def other_commands_folders(p: Lane) -> list[Case]:
    """--out at a folder another daaf command made: its marker is not this command's."""
    made = p.daaf_made
    query = [market(p.data) / "query"]
    return [
        Case("evaluate --out an export folder", evaluate(p, made / "model")),
        Case(
            "export --out an evaluation folder",
            ["daaf", "export", p.checkpoint, "--out", made / "evaluation"],
        ),
        Case(
            "synth --out an evaluation folder",
            ["daaf", "synth", "--out", made / "evaluation", "--identities", 4],
        ),
        Case("search --out a synth dataset's root", search(p, made / "dataset")),
        Case(
            "embed --out an export's model_state.pt",
            embed(p, query, made / "model" / "model_state.pt"),
        ),
    ]


def evil_run(p: Lane, folder: Path) -> None:
    """A run folder whose checkpoints/last.pt is the payload, beside a real config.yaml."""
    (folder / "checkpoints").mkdir(parents=True, exist_ok=True)
    shutil.copy(p.run / "config.yaml", folder / "config.yaml")
    shutil.copy(p.payload_pt, folder / "checkpoints" / "last.pt")


def evil_weights(p: Lane, folder: Path) -> None:
    """The labeler's two weight files, as payloads."""
    for name in (
        "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
        "keypointrcnn_resnet50_fpn_coco-fc266e95.pth",
    ):
        write_payload_pt(folder / name, p.markers / f"weights_{name[:6]}")


def ts_beside_state(p: Lane, folder: Path) -> None:
    """A model folder with a real model_state.pt and the crafted model.ts."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in (("model_state.pt", p.model), ("model.ts", p.torchscript)):
        if not (folder / name).exists():
            os.link(source / name, folder / name)


def planted_code(p: Lane) -> list[Case]:
    """Planted code never runs: pickles with a __reduce__, crafted TorchScript, YAML tags."""
    pt, legacy, ts = p.payload_pt, p.payload_pickle, p.torchscript
    run, weights, both = (
        p.case_dir("evil_run"),
        p.case_dir("evil_weights"),
        p.case_dir("ts_and_state"),
    )
    yaml_payload = p.case_dir("configs_evil") / "payload.yaml"
    command = f"touch {shlex.quote(str(p.markers / 'yaml'))}"
    query = [market(p.data) / "query"]
    return [
        Case("evaluate --model a pickle payload .pt", evaluate(p, p.out("ev-pt"), model=pt)),
        Case(
            "evaluate --model a folder whose model_state.pt is a plain pickle",
            evaluate(p, p.out("ev-pickle"), model=legacy.parent),
        ),
        Case("embed --model a pickle payload", embed(p, query, p.out("pt.h5"), model=pt)),
        Case("search --model a pickle payload", search(p, p.out("search-pt"), model=pt)),
        Case("export of a pickle payload", ["daaf", "export", pt, "--out", p.out("export-pt")]),
        Case(
            "visualize --model a pickle payload",
            visualize(p, p.out("vis-pt"), model=pt),
        ),
        Case(
            "train model.pretrained=a pickle payload",
            train(p.out("train-pretrained-pt"), p.data, f"model.pretrained={pt}"),
        ),
        Case(
            "train --resume of a run whose last.pt is a payload",
            train(run, p.data, "--resume"),
            setup=partial(evil_run, p, run),
        ),
        Case(
            "label --weights-dir holding payload weight files",
            label(
                p,
                p.out("label-evil"),
                "--weights",
                "pretrained",
                "--weights-dir",
                weights,
                "--workers",
                0,
            ),
            timeout=HANG,
            setup=partial(evil_weights, p, weights),
        ),
        Case(
            "evaluate --model a folder holding only a crafted model.ts",
            evaluate(p, p.out("ev-ts"), model=ts),
        ),
        Case(
            "embed --model a crafted model.ts",
            embed(p, query, p.out("ts.h5"), model=ts / "model.ts"),
        ),
        Case(
            "search --model a crafted model.ts",
            search(p, p.out("search-ts"), model=ts / "model.ts"),
        ),
        Case(
            "evaluate --model a folder with model_state.pt and a crafted model.ts",
            evaluate(p, p.out("ev-ts-state"), model=both),
            "accept",
            180,
            setup=partial(ts_beside_state, p, both),
        ),
        Case(
            "train --config a YAML with a !!python/object/apply payload",
            train(p.out("train-yaml-payload"), p.data, config=yaml_payload),
            setup=partial(
                write_file,
                yaml_payload,
                f"_base_: {DEMO_CONFIG}\nmodel: !!python/object/apply:os.system [{command!r}]\n",
            ),
        ),
        Case(
            "train override with a !!python/object/apply payload",
            train(
                p.out("train-override-payload"),
                p.data,
                f"model.depth=!!python/object/apply:os.system [{command!r}]",
            ),
        ),
    ]


def kill9(p: Lane) -> list[Case]:
    """kill -9 of label, train and embed leaves no process behind, and the rerun works (embed
    --resume may say in one line that HDF5 could not survive it, as docs/embeddings.md does)."""
    kill = Interrupt(signal.SIGKILL, processes=3, after=1.5, group=False)
    return stopped_runs(p, kill, "killed", "either")


def nan_models(p: Lane) -> list[Case]:
    """Models with NaN or infinite weights are refused (NaN exports: refused_then_rerun)."""
    query = [market(p.data) / "query"]
    return [
        Case("embed --model inf weights", embed(p, query, p.out("inf.h5"), model=p.inf_model)),
        Case("evaluate --model inf weights", evaluate(p, p.out("ev-inf"), model=p.inf_model)),
        Case(
            "evaluate --model a NaN training checkpoint",
            evaluate(p, p.out("ev-nan-ckpt"), model=p.nan_checkpoint),
        ),
        Case(
            "export of an inf checkpoint",
            ["daaf", "export", p.inf_checkpoint, "--out", p.out("export-inf")],
        ),
        Case(
            "visualize --model a NaN checkpoint",
            visualize(p, p.out("vis-nan"), "--n", 1, model=p.nan_checkpoint),
            timeout=120,
        ),
        Case(
            "train model.pretrained=NaN weights",
            train(
                p.out("train-nan-pretrained"),
                p.data,
                f"model.pretrained={p.nan_model / 'model_state.pt'}",
            ),
        ),
        Case(
            "search with image queries and a NaN model",
            search(
                p, p.out("search-nan-images"), None, market(p.data) / "query", model=p.nan_model
            ),
        ),
    ]


def forged_model(source: Path, target: Path, edit: Callable[[dict], None]) -> None:
    """An export folder whose model_state.pt is ``source``'s, edited by ``edit(state)``."""
    import torch

    state = torch.load(source / "model_state.pt", map_location="cpu", weights_only=True)
    edit(state)
    target.mkdir(parents=True, exist_ok=True)
    torch.save(state, target / "model_state.pt")


def drop_half(state: dict) -> None:
    names = list(state["state_dict"])
    for name in names[: len(names) // 2]:
        del state["state_dict"][name]


def forged_models(p: Lane) -> list[Case]:
    """Exports whose meta or weights say something else than they hold."""
    first = [sorted((market(p.data) / "query").iterdir())[0]]
    edits = {
        "meta asking for 100,000 x 100,000 inputs": lambda state: state["meta"].update(
            height=100_000, width=100_000
        ),
        "meta saying embedding_dim 7": lambda state: state["meta"].update(embedding_dim=7),
        "half its weights missing": drop_half,
        "meta saying depth 50 over ResNet-18 weights": lambda state: state["meta"].update(depth=50),
    }
    return [
        Case(
            f"embed --model an export with {name}",
            embed(p, first, p.out(f"forged-{slug(name)}.h5"), model=p.case_dir(slug(name))),
            timeout=HANG,
            setup=partial(forged_model, p.model, p.case_dir(slug(name)), edit),
        )
        for name, edit in edits.items()
    ] + [
        Case(
            "embed --model an https URL",
            embed(p, first, p.out("url.h5"), model="https://example.com/model_state.pt"),
            timeout=HANG,
        ),
    ]


def html_reports(p: Lane) -> list[Case]:
    """HTML reports escape names that hold markup."""
    root = html_dir(p.case_dir("html_data"))
    model = html_dir(p.case_dir("html_model"))
    evaluation = html_dir(p.case_dir("html_eval"))
    evaluated, compared = p.out("html-evaluate"), p.out("html-compare")
    return [
        Case(
            "evaluate: a dataset whose root and image names hold markup",
            evaluate(p, evaluated, root=root, dataset="custom"),
            "accept",
            180,
            setup=partial(custom_html_dataset, p.data, root),
            check=report_escaped(evaluated / "report.html"),
        ),
        Case(
            "evaluate: a model folder whose name holds markup",
            evaluate(p, p.out("html-model"), model=model),
            "accept",
            180,
            setup=partial(model_named_html, p.model, model),
            check=report_escaped(p.out("html-model") / "report.html"),
        ),
        Case(
            "compare --out: an evaluation folder whose name holds markup",
            compare(p, "--out", compared, baseline=evaluation),
            "accept",
            120,
            setup=lambda: copy_dataset(p.evaluation, evaluation),
            check=report_escaped(compared / "report.html"),
        ),
    ]


def broken_store(p: Lane, folder: Path, name: str, content: bytes | None) -> None:
    """A copy of the dataset's store whose file ``name`` holds ``content`` (None: a link to
    /dev/zero)."""
    copy_dataset(p.data / "annotations", folder)
    path = folder / name
    if path.exists() or path.is_symlink():
        path.unlink()
    if content is None:
        make_link(path, Path("/dev/zero"))
    else:
        write_file(path, content)


def hand_edited_evaluation(source: Path, target: Path) -> None:
    """A copy of an evaluation whose per_query.csv has a NaN and a negative ap."""
    copy_dataset(source, target)
    per_query = target / "per_query.csv"
    with open(per_query, newline="") as file:
        rows = list(csv.DictReader(file))
    rows[0]["ap"], rows[1]["ap"] = "nan", "-3"
    with open(per_query, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def careless(p: Lane) -> list[Case]:
    """What a careless user types: devices that are not there, names too long, files of the
    wrong kind, hand-edited stores and evaluations."""
    d = p.case_dir("careless")
    first = sorted((market(p.data) / "query").iterdir())[0]
    query, long = [market(p.data) / "query"], "x" * 300
    resumed, edited = d / "resume_other.h5", d / "edited_eval"
    stores = {
        "manifest.csv of garbage": ("manifest.csv", b"\x00garbage,\xff\n" * 10),
        "store.json of garbage": ("store.json", b"{not json"),
        "an empty shard": ("train-00000.h5", b""),
        "a shard linked to /dev/zero": ("train-00000.h5", None),
    }
    return [
        Case(
            "embed --device cuda (a GPU may be absent)",
            embed(p, [first], p.out("cuda.h5"), "--device", "cuda"),
            "either",
        ),
        Case("evaluate --device cuda:99", evaluate(p, p.out("cuda99"), "--device", "cuda:99")),
        Case("embed --device tpu", embed(p, [first], p.out("tpu.h5"), "--device", "tpu")),
        Case(
            "embed --device 'cpu; rm -rf ~'",
            embed(p, [first], p.out("semicolon.h5"), "--device", "cpu; rm -rf ~"),
        ),
        Case("evaluate --dataset nosuch", evaluate(p, p.out("nosuch"), dataset="nosuch")),
        Case(
            "evaluate --root an empty folder",
            evaluate(p, p.out("empty-root"), root=d / "empty"),
            setup=lambda: (d / "empty").mkdir(parents=True, exist_ok=True),
        ),
        Case("embed --images a missing path", embed(p, [d / "missing"], p.out("missing.h5"))),
        Case("embed --out a 300-byte file name", embed(p, [first], d / f"{long}.h5")),
        Case("train --out a 300-byte folder name", train(d / long, p.data)),
        Case("evaluate --out a 300-byte folder name", evaluate(p, d / long)),
        Case(
            "search --query a text file named .jpg",
            search(p, p.out("text-query"), None, d / "text.jpg"),
            setup=partial(write_file, d / "text.jpg", "not an image\n"),
        ),
        Case(
            "export of an export's model_state.pt",
            ["daaf", "export", p.model / "model_state.pt", "--out", p.out("export-export")],
        ),
        Case(
            "embed --images a folder holding a symlink loop",
            embed(p, [d / "loop"], p.out("loop.h5")),
            "either",
            HANG,
            setup=partial(images_with, d / "loop", p.data, lambda f: make_link(f / "loop", f)),
        ),
        Case(
            "embed --images a 20,000 x 20,000 PNG",
            embed(p, [d / "bomb"], p.out("bomb.h5")),
            "either",
            120,
            setup=partial(bomb_png, d / "bomb" / "bomb.png"),
        ),
        Case(
            "embed --images truncated and text .jpg files among images",
            embed(p, [d / "unreadable"], p.out("unreadable.h5")),
            "accept",
            setup=partial(images_with, d / "unreadable", p.data, unreadable_images),
        ),
        Case(
            "embed --images only files that are no images",
            embed(p, [d / "only_bad"], p.out("only-bad.h5")),
            setup=partial(write_file, d / "only_bad" / "a.jpg", "text"),
        ),
        Case(
            "embed --resume of a file made from other images",
            embed(p, query, resumed, "--resume"),
            setup=lambda: shutil.copy(p.gallery_h5, resumed),
        ),
        *[
            Case(
                f"annotations validate: {name}",
                validate(p.data, d / slug(name)),
                timeout=HANG,
                setup=partial(broken_store, p, d / slug(name), *edit),
            )
            for name, edit in stores.items()
        ],
        Case("annotations validate: the dataset root as the store", validate(p.data, p.data)),
        Case(
            "compare: a per_query.csv with a NaN and a negative ap",
            compare(p, baseline=edited),
            setup=partial(hand_edited_evaluation, p.evaluation, edited),
        ),
        Case(
            "compare: a baseline that is no evaluation (the user's folder)",
            compare(p, baseline=p.user),
        ),
        Case(
            "datasets check market1501 --root /dev/null",
            ["daaf", "datasets", "check", "market1501", "--root", "/dev/null"],
        ),
        Case(
            "datasets check of the dataset",
            ["daaf", "datasets", "check", "synthetic", "--root", p.data, "--decode"],
            "accept",
        ),
        Case(
            "evaluate --model the run folder",
            evaluate(p, p.out("ev-run"), model=p.run),
            "either",
            180,
        ),
    ]


# Longest first, so that the lanes end together; the table keeps this order.
CATEGORIES: dict[str, Callable[[Lane], list[Case]]] = {
    "interrupts": interrupts,
    "kill9": kill9,
    "refused_then_rerun": refused_then_rerun,
    "special_inputs": special_inputs,
    "special_names": special_names,
    "bounded_options": bounded_options,
    "embedding_files": embedding_files,
    "careless": careless,
    "user_files": user_files,
    "planted_code": planted_code,
    "configs": configs,
    "labels_bound": labels_bound,
    "nan_models": nan_models,
    "forged_models": forged_models,
    "html_reports": html_reports,
    "foreign_pids": foreign_pids,
}


# ---------------------------------------------------------------------------------------------
# The command


def cpu_of(who: int) -> float:
    """User + system CPU seconds of this process (RUSAGE_SELF) or its reaped children."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def this_tree_daaf() -> list[str]:
    """``python -m daaf.cli`` of this tree: its folder goes first on PYTHONPATH (inherited by
    every attempt), ahead of an editable install that may point at another tree."""
    paths = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    sys.path.insert(0, str(REPO))  # the pass's own helpers (forged stores) import it too
    return [sys.executable, "-m", "daaf.cli"]


def where() -> str:
    """Date, commit, and how many files under daaf/ differ from it."""

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
        return result.stdout.strip()

    dirty = len(git("status", "--porcelain", "--", "daaf").splitlines())
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return f"{now}, commit {git('rev-parse', '--short', 'HEAD')}, {dirty} file(s) under daaf/ changed since"


def run_category(name: str, prepared: Lane, scale: float, failures: list[str]) -> list[Attempt]:
    """Every case of one category; a category whose preparation fails is reported and skipped."""
    try:
        cases = CATEGORIES[name](prepared)
    except PrepareError as error:
        failures.append(f"{name}: {error}")
        prepared.echo(f"skipped {name}: {error}")
        return []
    for case in cases:
        case.category = name
    return run_cases(cases, prepared.daaf, prepared, scale, prepared.echo, failures)


def prefixed(echo: Callable[[str], None], prefix: str, text: str) -> None:
    echo(prefix + text)


def run_lanes(
    names: list[str], root: Path, daaf: list[str], jobs: int, scale: float, echo: Callable
) -> tuple[list[Attempt], list[str]]:
    """The named categories, shared out over ``jobs`` lanes that run side by side. Each lane
    has its own scratch folder, user files, payloads and markers, so that what an attempt does
    to them is never counted against another lane's; the Shared files are read by all (a
    change to one is counted against every attempt running then)."""
    queue, lock, failures = list(names), threading.Lock(), []
    done: dict[str, list[Attempt]] = {}
    shared = Shared(root / "shared", daaf, echo)

    def lane(index: int) -> None:
        prepared = Lane(root / f"lane{index}", shared, partial(prefixed, echo, f"[{index}] "))
        while True:
            with lock:
                if not queue:
                    return
                name = queue.pop(0)
            try:
                done[name] = run_category(name, prepared, scale, failures)
            except Exception as error:  # noqa: BLE001 - a fault of the pass: the others go on
                failures.append(f"{name}: the pass failed: {error!r}")
                echo(f"[{index}] {name}: the pass failed: {error!r}")

    threads = [threading.Thread(target=lane, args=(index,), daemon=True) for index in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [attempt for name in names for attempt in done.get(name, [])], failures


@click.command()
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(list(CATEGORIES)),
    help="Run only this category (repeatable).",
)
@click.option(
    "--csv", "csv_path", type=click.Path(dir_okay=False), help="Write every attempt to this CSV."
)
@click.option("--keep", is_flag=True, help="Keep the scratch folder (its path is printed).")
@click.option(
    "--jobs",
    default=2,
    type=click.IntRange(1, 8),
    help="Lanes of categories run side by side, each with its own prepared files.",
)
@click.option(
    "--daaf",
    "daaf_command",
    help="The CLI under test [default: python -m daaf.cli of this tree].",
)
@click.option(
    "--timeout-scale",
    default=1.0,
    type=click.FloatRange(min=0.1),
    help="Multiply every time limit (a loaded machine).",
)
@click.option(
    "--scratch-parent", type=click.Path(file_okay=False), help="Where to make the scratch folder."
)
def main(
    only: tuple[str, ...],
    csv_path: str | None,
    keep: bool,
    jobs: int,
    daaf_command: str | None,
    timeout_scale: float,
    scratch_parent: str | None,
) -> None:
    """Run every category (or --only some) of hostile attempts against the daaf CLI and print
    the table of outcomes."""
    daaf = shlex.split(daaf_command) if daaf_command else this_tree_daaf()
    root = Path(tempfile.mkdtemp(prefix="hostile_pass_", dir=scratch_parent))
    echo = partial(click.echo, err=True)
    echo(f"hostile pass: {where()}; daaf = {shlex.join(daaf)}; scratch {root}")
    start = time.monotonic()
    limit_memory()
    # A handled signal is reset to its default in a child that execs, an ignored one stays
    # ignored: a pass started in the background (SIGINT ignored) must still let its attempts'
    # Ctrl-C land.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        names = list(dict.fromkeys(only)) or list(CATEGORIES)
        attempts, failures = run_lanes(names, root, daaf, jobs, timeout_scale, echo)
    finally:
        for group in list(RUNNING):
            with contextlib.suppress(OSError):
                os.killpg(group, signal.SIGKILL)
        if keep:
            echo(f"scratch kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    rows = csv_rows(attempts, root)
    click.echo(
        f"\n{where()}; {len(attempts)} attempts in {time.monotonic() - start:.0f} s; CPU "
        f"seconds of the commands {cpu_of(resource.RUSAGE_CHILDREN):.0f}, of the pass itself "
        f"{cpu_of(resource.RUSAGE_SELF):.0f}\n"
    )
    click.echo(table(attempts))
    click.echo("\nAttempts that were neither a one-line refusal nor an expected success:")
    click.echo(not_fine(rows) or "(none)")
    if failures:
        click.echo("\nNot run (a fault of the pass or of its preparation):\n" + "\n".join(failures))
    if csv_path:
        write_csv(Path(csv_path), rows)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
