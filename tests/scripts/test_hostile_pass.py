"""scripts/hostile_pass.py: its bookkeeping, on tiny fake commands instead of daaf."""

import csv
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from ..conftest import REPO, load_script

hostile = load_script(REPO / "scripts" / "hostile_pass.py")
PY = sys.executable
# Ctrl-C ends it with click's "Aborted!" (a shell's background job starts with SIGINT ignored).
CTRL_C_ABORTS = """import signal, time
signal.signal(signal.SIGINT, signal.default_int_handler)
try:
    time.sleep(30)
except KeyboardInterrupt:
    raise SystemExit("Aborted!")
"""


def fake(case_name: str, code: str, expect: str = "refuse", **kwargs):
    """A case whose command is ``python -c CODE``."""
    return hostile.Case(case_name, [PY, "-c", code], expect, category="fake", **kwargs)


def attempt(case, returncode: int, stderr: str = "", **kwargs):
    return hostile.classify(hostile.Attempt(case, returncode, 1.0, stderr=stderr, **kwargs))


def test_classify_takes_the_worst_problem_and_reads_the_message():
    refuse = hostile.Case("c", ["daaf"], "refuse")
    accept = hostile.Case("c", ["daaf"], "accept")
    progress = "embed:  50%|#####     | 1/2 [00:01<00:01, 1.2img/s]\r"
    assert attempt(refuse, 1, progress + "Error: x.h5: not an embedding file\n").outcome == (
        "one-line error"
    )
    assert attempt(refuse, 0).outcome == "garbage accepted"
    assert attempt(accept, 0).outcome == "ok"
    assert attempt(accept, 2, "Error: no\n").outcome == "wrongly refused"
    assert attempt(refuse, 1, "").outcome == "unclear error"  # says nothing
    assert attempt(refuse, 1, "a\nb\nc\nd\n").outcome == "unclear error"
    traceback = f"{hostile.TRACEBACK}:\n  File x\nValueError: v\n"
    assert attempt(refuse, 1, traceback).outcome == "traceback"
    assert attempt(refuse, -11).outcome == "traceback"  # a segfault nobody sent
    lost = attempt(refuse, 1, traceback, lost=["user/a (gone)"])
    assert lost.outcome == "data lost" and lost.problems == ["data lost", "traceback"]
    ran = attempt(refuse, 0, markers=["m"], lost=["x (changed)"], stopped="blocked")
    assert ran.problems == ["code run", "data lost", "hang", "garbage accepted"]
    warned = hostile.Case("c", ["daaf"], "refuse", warn_ok=r"(?i)warning")
    assert attempt(warned, 0, "warning: no gallery path is in it\n").outcome == "ok"
    named = hostile.Case("c", ["daaf"], "refuse", message=r"twice")
    assert attempt(named, 1, "Error: bad key\n").outcome == "unclear error"
    assert attempt(named, 1, "Error: key given twice\n").outcome == "one-line error"


def prepared_lane(root: Path):
    """A Lane whose prepared files are stand-ins (nothing is made): enough to build cases."""
    shared = hostile.Shared(root / "shared", ["daaf"])
    data = root / "data"
    for folder in ("query", "bounding_box_test", "bounding_box_train"):
        image = hostile.market(data) / folder / "0001_c1s1_000001_00.jpg"
        image.parent.mkdir(parents=True)
        image.write_bytes(b"jpg")
    names = ("other", "big", "run", "model", "gallery_h5", "query_h5", "evaluation")
    shared.made.update({name: root / name for name in names}, data=data)
    for name in ("evaluation_copy", "nan_model", "inf_model", "nan_checkpoint", "inf_checkpoint"):
        shared.made[name] = root / name
    lane = hostile.Lane(root / "lane", shared)
    for name in ("user", "daaf_made", "payload_pt", "payload_pickle", "torchscript"):
        lane.__dict__[name] = root / name
    return lane


def test_every_category_builds_its_cases_and_holds_issue_30s(tmp_path):
    """Each builder gives cases of unique names whose command is daaf's; the cases the
    hostile-input issue lists are there."""
    lane = prepared_lane(tmp_path)
    names = {}
    for category, build in hostile.CATEGORIES.items():
        cases = build(lane)
        assert cases and all(case.argv[0] == "daaf" for case in cases), category
        assert len({case.name for case in cases}) == len(cases), category
        names[category] = {case.name for case in cases}
    wanted = {
        "labels_bound": [
            "validate: labels rewritten in another order, content_sha256 and manifest redone",
            "train: on that reordered store",
        ],
        "embedding_files": [
            "--gallery with 1-D features",
            "--gallery with 3-D features",
            "--gallery with string features",
            "--gallery with integer features",
            "--gallery with 3 fewer paths than features",
            "--gallery with 3 more paths than features",
            "--gallery with rows attribute 10^12",
            "--gallery with rows attribute -5",
        ],
        "special_inputs": [
            "embed: a FIFO given as the image",
            "embed: a list file that is a FIFO",
            "embed: --out is a FIFO",
        ],
        "special_names": [
            "embed: a list file that is a socket",
            "embed: --out is a socket",
            "train: --config is a socket",
            "train: _base_ names a socket",
        ],
        "refused_then_rerun": [
            "embed: a NaN model, refused, leaves no --out",
            "embed: the plain rerun with a good model",
        ],
        "bounded_options": ["compare --bootstrap 1000000000", "compare --bootstrap 10^30"],
        "interrupts": ["embed --workers 2: Ctrl-C", "embed --resume after Ctrl-C"],
        "configs": [
            "a key given twice in one mapping",
            "--config names a directory",
            "_base_ names a directory",
            "--config /dev/zero",
            "_base_ names /dev/zero",
            "--config names an empty file: says so, offline",
            "_base_ names an empty file",
        ],
        "foreign_pids": ["--pids of another dataset: no gallery path in it"],
    }
    for category, cases in wanted.items():
        assert set(cases) <= names[category], set(cases) - names[category]


def test_names_that_are_no_utf8_are_shown_escaped(tmp_path):
    odd = hostile.odd_name(tmp_path, "list", ".txt")
    assert os.fsencode(odd).endswith(b"list\xff\n.txt")
    assert hostile.shown(str(odd), tmp_path) == "$S/list\\udcff\n.txt"


def test_the_table_counts_each_outcome_per_category_and_overall():
    cases = [hostile.Case(str(i), ["daaf"], "refuse", category=c) for i, c in enumerate("aab")]
    done = [attempt(cases[0], 1, "Error: e\n"), attempt(cases[1], 0), attempt(cases[2], 1, "")]
    lines = hostile.table(done).splitlines()
    header = lines[0].split()
    assert header[:4] == ["category", "attempts", "ok", "one-line"]
    assert [line.split()[0] for line in lines[1:]] == ["a", "b", "all"]
    a = lines[1]
    # a: 2 attempts, one one-line error, one garbage accepted
    assert a.split()[1:4] == ["2", "0", "1"] and a.split()[6] == "1"
    assert lines[3].split()[1] == "3"


@pytest.mark.slow
def test_a_pass_of_fake_commands_is_bookkept(tmp_path, monkeypatch):
    """Each outcome from a real subprocess: files lost, markers, tracebacks, hangs, processes
    left alive (and then ended), signals, checks, the CSV and the list of bad attempts."""
    monkeypatch.setattr(hostile, "GRACE", 1.0)
    monkeypatch.setattr(hostile, "KILL_GRACE", 1.0)
    monkeypatch.setattr(hostile, "STALL", 2.0)
    scratch = hostile.Scratch(tmp_path / "s")
    user = scratch.root / "user"
    user.mkdir()
    (user / "manifest.csv").write_text("mine\n")
    (user / "model_state.pt").write_text("mine too\n")
    marker, pid_file = scratch.markers / "ran", tmp_path / "child.pid"
    sleeper = f"import subprocess; p = subprocess.Popen(['sleep', '60']); open({str(pid_file)!r}, 'w').write(str(p.pid))"
    cases = [
        fake("deletes a user file", f"import os; os.remove({str(user / 'manifest.csv')!r})"),
        fake("rewrites a user file", f"open({str(user / 'model_state.pt')!r}, 'w').write('x')"),
        fake("prints a traceback", "raise ValueError('boom')"),
        fake("blocks", "import time; time.sleep(60)"),
        fake("spins", "while True: pass", timeout=1),
        fake("refuses in one line", "import sys; sys.exit('Error: no such file x.h5')"),
        fake("accepts garbage", "pass"),
        fake("succeeds as expected", "print('done')", "accept"),
        fake("runs planted code", f"open({str(marker)!r}, 'w').close()"),
        fake("leaves a child behind", sleeper + "; raise SystemExit('Error: stop')"),
        fake(
            "dies by kill -9",
            "import time; time.sleep(30)",
            "killed",
            interrupt=hostile.Interrupt(signal.SIGKILL, after=0.5, group=False),
        ),
        fake("ends before its Ctrl-C", "pass", interrupt=hostile.Interrupt(processes=5)),
        fake(
            "prints Aborted! on Ctrl-C",
            CTRL_C_ABORTS,
            interrupt=hostile.Interrupt(after=0.5),
        ),
        fake("fails its check", "pass", "accept", check=lambda: "report.html holds <script>"),
    ]
    messages = []
    attempts = hostile.run_cases(cases, [], scratch, echo=messages.append)
    outcomes = {a.case.name: a.outcome for a in attempts}
    assert outcomes == {
        "deletes a user file": "data lost",
        "rewrites a user file": "data lost",
        "prints a traceback": "traceback",
        "blocks": "hang",
        "spins": "hang",
        "refuses in one line": "one-line error",
        "accepts garbage": "garbage accepted",
        "succeeds as expected": "ok",
        "runs planted code": "code run",
        "leaves a child behind": "left alive",
        "dies by kill -9": "ok",
        "ends before its Ctrl-C": "missed",
        "prints Aborted! on Ctrl-C": "one-line error",
        "fails its check": "bad output",
    }
    assert len(messages) == len(cases)
    by_name = {a.case.name: a for a in attempts}
    assert by_name["deletes a user file"].lost == [f"{user / 'manifest.csv'} (gone)"]
    assert by_name["rewrites a user file"].lost == [f"{user / 'model_state.pt'} (changed)"]
    assert by_name["dies by kill -9"].returncode == -signal.SIGKILL
    assert by_name["blocks"].stopped == "blocked: no CPU for 2 s"
    assert by_name["spins"].stopped in ("over its 1 CPU seconds", "over 5 s")  # a busy machine
    child = int(pid_file.read_text())
    assert by_name["leaves a child behind"].left_alive[0].startswith(f"{child} sleep 60")
    time.sleep(0.5)
    stat = Path(f"/proc/{child}/stat")
    assert not stat.exists() or ") Z " in stat.read_text()  # ended (a zombie until reaped)

    total = hostile.counts(attempts)
    assert (total["attempts"], total["data lost"], total["hang"], total["ok"]) == (14, 2, 2, 2)
    assert hostile.table(attempts).splitlines()[-1].split()[:3] == ["all", "14", "2"]

    rows = hostile.csv_rows(attempts, scratch.root)
    hostile.write_csv(tmp_path / "attempts.csv", rows)
    with open(tmp_path / "attempts.csv", newline="") as file:
        read = list(csv.DictReader(file))
    assert [row["outcome"] for row in read] == [a.outcome for a in attempts]
    row = {row["name"]: row for row in read}
    one_line = row["refuses in one line"]
    assert one_line["first_stderr_line"] == "Error: no such file x.h5"
    assert one_line["exit_code"] == "1" and "sys.exit(" in one_line["command"]
    assert row["deletes a user file"]["notes"] == "$S/user/manifest.csv (gone)"
    listed = hostile.not_fine(rows)
    assert "[hang] fake: blocks" in listed and "refuses in one line" not in listed
