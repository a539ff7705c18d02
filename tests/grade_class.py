"""Grade a whole class with one command.

    python -m tests.grade_class CLASS_DIR --phase 3 [--out DIR] [--jobs N] [--time-limit S]

CLASS_DIR holds one folder per student, each with that student's server.py and
client.py (or a phase3_... folder holding them). Every student is graded by the
course's own grader, ``pytest --phase N --submission STUDENT_DIR``, run as a
separate process: one student's server that hangs or crashes cannot touch
another's grade, and a student whose grading passes the time limit is stopped
(with the points earned so far).

Written to --out (default grading-output/):

    gradebook.csv        student, points, maximum, failed checks ("; "), note
    reports/STUDENT.txt  every check: pass or fail, points, and the failure message

Progress goes to standard error, one line per student. Standard library only;
the scores come from the grader's --results-json file, never from its text output.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROGRAMS = ("server.py", "client.py")
GRACE = 10.0  # seconds an interrupted grader gets to write the points earned so far
POSIX = os.name == "posix"


class UsageError(Exception):
    """A problem with the command line: printed as one line, exit status 2."""


@dataclass
class Check:
    name: str
    points: int
    maximum: int
    output: str = ""
    ran: bool = True

    @property
    def status(self) -> str:
        if not self.ran:
            return "----"
        if self.maximum == 0 and self.output:
            return "skip"  # the grader skipped it (e.g. it needs Linux): not counted
        return "pass" if self.points == self.maximum and not self.output else "FAIL"


@dataclass
class Grade:
    student: str
    checks: list = field(default_factory=list)
    maximum: int = 0
    note: str = ""
    detail: str = ""  # for the report: what the grader printed when it could not grade
    seconds: float = 0.0

    @property
    def points(self) -> int:
        return sum(c.points for c in self.checks)

    @property
    def failed(self) -> list:
        return [c.name for c in self.checks if c.status == "FAIL"]


# --------------------------------------------------------------------------- layout


def py_files(folder: Path) -> list:
    return sorted(p.name for p in folder.glob("*.py"))


def find_layout_problem(student: Path, phase: int):
    """None if the grader can take this folder, else one sentence saying what was
    expected and what was found."""
    if any((student / p).is_file() for p in PROGRAMS):
        return None  # a missing client.py or server.py alone is graded (those checks fail)
    if any(d.is_dir() and re.match(rf"phase{phase}(_|$)", d.name) for d in student.iterdir()):
        return None  # the layout of this repository: phase3_usernames/server.py
    expected = f"expected server.py and client.py in {student.name}/"
    found = py_files(student)
    if found:
        hints = []
        for program in PROGRAMS:
            alike = [f for f in found if program[:-3] in f.lower()]
            hints.append(f"rename {alike[0]} to {program}" if len(alike) == 1
                         else f"no {program}")
        return f"{expected}; found {', '.join(found)} ({', '.join(hints)})"
    nested = sorted(p.parent for p in student.glob("*/server.py")) + \
        sorted(p.parent for p in student.glob("*/client.py"))
    if nested:
        inner = nested[0].relative_to(student.parent).as_posix()
        return f"{expected}; found them one level deeper, in {inner}/ (move them up)"
    deeper = sorted(student.glob("**/*.py"))
    if deeper:
        shown = ", ".join(p.relative_to(student.parent).as_posix() for p in deeper[:3])
        return f"{expected}; found only {shown}{' ...' if len(deeper) > 3 else ''}"
    return f"{expected}; found no Python files"


# --------------------------------------------------------------------------- running the grader


def grader_argv(phase: int, submission: Path, results: Path) -> list:
    # "--opt=value" and an explicit path to the checks: pytest must not take the
    # submission folder for a test path, or it would not load tests/conftest.py.
    # The plugins turned off are not used by the checks; loading them costs a second.
    return [sys.executable, "-m", "pytest", str(REPO / "tests" / "checks"),
            f"--phase={phase}", f"--submission={submission}", f"--results-json={results}",
            "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark",
            "-p", "no:xdist"]


def _children_groups(pid: int) -> set:
    """Process groups of the processes whose parent is ``pid`` (Linux /proc), so that
    servers the grader started in their own sessions die with it."""
    groups = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and int(fields[1]) == pid:
            groups.add(int(fields[2]))
    return groups


def _kill_tree(proc: subprocess.Popen) -> None:
    if not POSIX:
        subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)], capture_output=True,
                       check=False)
        proc.kill()
        return
    for group in _children_groups(proc.pid) | {proc.pid}:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Runner:
    """Runs the grader for one submission at a time (thread-safe); remembers the
    processes still running so that Ctrl-C can stop them all."""

    def __init__(self, phase: int, time_limit: float, keyword: str | None = None):
        self.phase = phase
        self.time_limit = time_limit
        self.keyword = keyword
        self.running: set = set()
        self.lock = threading.Lock()
        self.stopping = False

    def run(self, submission: Path, workdir: Path):
        """(results dict or None, timed_out, output text)."""
        results = workdir / "results.json"
        log = workdir / "pytest.txt"
        if self.stopping:  # interrupted: start nothing new
            raise KeyboardInterrupt
        kwargs = {"start_new_session": True} if POSIX else \
            {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
        with open(log, "wb") as out:
            argv = grader_argv(self.phase, submission, results)
            if self.keyword:
                argv += ["-k", self.keyword]
            proc = subprocess.Popen(argv, cwd=REPO,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, **kwargs)
        with self.lock:
            self.running.add(proc)
        timed_out = False
        try:
            proc.wait(self.time_limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            # Ctrl-C lets pytest stop between two steps and write what it has so far.
            try:
                if POSIX:
                    os.kill(proc.pid, signal.SIGINT)
                else:
                    proc.send_signal(signal.CTRL_BREAK_EVENT)
                proc.wait(GRACE)
            except (subprocess.TimeoutExpired, OSError):
                pass
        finally:
            _kill_tree(proc)
            proc.wait()
            with self.lock:
                self.running.discard(proc)
        data = None
        try:
            data = json.loads(results.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        output = log.read_text(encoding="utf-8", errors="replace")
        return data, timed_out, output

    def stop_all(self) -> None:
        self.stopping = True
        with self.lock:
            procs = list(self.running)
        for proc in procs:
            _kill_tree(proc)


def checks_from(data) -> list:
    prefix = re.compile(r"^Phase \d+ · ")
    return [Check(prefix.sub("", t["name"]), t.get("score", 0), t.get("max_score", 0),
                  t.get("output", "")) for t in data.get("tests", [])]


class Catalogue:
    """Every check of the phase with its points, for a student whose grading did not
    run them all. Found once, when first needed, by grading a folder without
    programs: the grader lists each check it could not run, with its points. With
    -k, the folder holds stand-in programs that exit at once instead, so that only
    the selected checks are listed (each fails at once)."""

    STAND_IN = 'raise SystemExit("grade_class: a stand-in that lists the checks")\n'

    def __init__(self, runner: Runner):
        self.runner = runner
        self.lock = threading.Lock()
        self.checks = None

    def get(self) -> list:
        with self.lock:
            if self.checks is None:
                self.checks = self._find()
            return self.checks

    def _find(self) -> list:
        with tempfile.TemporaryDirectory(prefix="grade-catalogue-") as tmp:
            folder = Path(tmp) / "no-programs"
            folder.mkdir()
            if self.runner.keyword:
                for program in PROGRAMS:
                    (folder / program).write_text(self.STAND_IN, encoding="utf-8")
            data, _, output = self.runner.run(folder, Path(tmp))
        if data is not None and not data.get("tests") and self.runner.keyword:
            raise UsageError(f"no check of phase {self.runner.phase} matches "
                             f"-k {self.runner.keyword!r}")
        if not data or not data.get("tests"):
            raise RuntimeError("the grader did not list its checks; its output ends with:\n"
                               + "\n".join(output.splitlines()[-15:]))
        return [Check(c.name, 0, c.maximum) for c in checks_from(data)]


def grade_student(runner: Runner, student: Path, catalogue: Catalogue) -> Grade:
    start = time.monotonic()
    grade = Grade(student.name)
    problem = find_layout_problem(student, runner.phase)
    if problem:
        grade.note = problem
        grade.checks = [Check(c.name, 0, c.maximum, f"not run: {problem}", ran=False)
                        for c in catalogue.get()]
        grade.maximum = sum(c.maximum for c in grade.checks)
        return grade
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        data, timed_out, output = runner.run(student.resolve(), Path(tmp))
    grade.seconds = time.monotonic() - start
    done = checks_from(data) if data else []
    if timed_out:
        # The check that was running when time ran out is listed as failed
        # ("interrupted"); those after it never started.
        seen = {c.name for c in done}
        missed = [c for c in catalogue.get() if c.name not in seen]
        grade.note = (f"stopped at the time limit ({runner.time_limit:g} s), a server that "
                      f"hangs?; {len(missed)} checks not run; the points earned until then "
                      "are kept")
        done += [Check(c.name, 0, c.maximum, "not run: grading stopped at the time limit",
                       ran=False) for c in missed]
    elif not done:
        grade.detail = "\n".join(output.strip().splitlines()[-20:])
        last = grade.detail.splitlines()[-1] if grade.detail else "nothing"
        grade.note = f"the grader could not grade this folder (it printed: {last})"
        done = [Check(c.name, 0, c.maximum, "not run: the grader could not grade this folder",
                      ran=False) for c in catalogue.get()]
    grade.checks = done
    grade.maximum = sum(c.maximum for c in done)
    return grade


# --------------------------------------------------------------------------- output


def safe_filename(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("._") or "student"


def write_report(grade: Grade, phase: int, path: Path) -> None:
    lines = [f"{grade.student}: phase {phase}, {grade.points}/{grade.maximum} points"]
    if grade.note:
        lines.append(f"Note: {grade.note}")
    if grade.detail:
        lines += ["The grader's last words:"] + [f"  | {line}" for line in grade.detail.splitlines()]
    if grade.seconds:
        lines.append(f"Graded in {grade.seconds:.1f} s.")
    lines.append("")
    if any(not c.ran for c in grade.checks):
        lines += ["(---- = not run)", ""]
    width = max((len(f"{c.points}/{c.maximum}") for c in grade.checks), default=3)
    for c in grade.checks:
        lines.append(f"{c.status}  {f'{c.points}/{c.maximum}':>{width}}  {c.name}")
    failures = [c for c in grade.checks if c.status in ("FAIL", "skip") and c.output]
    if failures:
        lines += ["", "Failures", "========"]
        for c in failures:
            lines += ["", f"--- {c.name}"]
            lines += [f"    {line}" for line in c.output.rstrip().splitlines()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_gradebook(grades: list, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["student", "points", "maximum", "failed checks", "note"])
        for g in grades:
            out.writerow([g.student, g.points, g.maximum, "; ".join(g.failed), g.note])


# --------------------------------------------------------------------------- command line


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m tests.grade_class",
        description="Grade every student folder in CLASS_DIR with the course's grader.")
    parser.add_argument("class_dir", metavar="CLASS_DIR",
                        help="a folder with one subfolder per student")
    parser.add_argument("--phase", type=int, required=True, choices=(1, 2, 3, 4),
                        help="the phase to grade")
    parser.add_argument("--out", default="grading-output", metavar="DIR",
                        help="where gradebook.csv and reports/ go (default: grading-output)")
    parser.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                        metavar="N", help="students graded at the same time (default: half "
                        "the CPUs; timing checks need a machine that is not overloaded)")
    parser.add_argument("--time-limit", type=float, default=120.0, metavar="S",
                        help="seconds one student's grading may take (default: 120)")
    parser.add_argument("-k", metavar="EXPR", dest="keyword", default=None,
                        help="grade only the checks whose test names match EXPR (pytest -k), "
                        "e.g. to re-grade one check")
    args = parser.parse_args(argv)
    class_dir = Path(args.class_dir)
    if not class_dir.is_dir():
        raise UsageError(f"{args.class_dir}: no such folder")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.time_limit <= 0:
        raise UsageError("--time-limit must be a positive number of seconds")
    students = sorted((d for d in class_dir.iterdir()
                       if d.is_dir() and not d.name.startswith((".", "_"))),
                      key=lambda d: d.name.lower())
    if not students:
        raise UsageError(f"{args.class_dir} has no student folders (one folder per student, "
                         "each with server.py and client.py)")
    out = Path(args.out)
    if out.resolve() in {d.resolve() for d in students}:
        raise UsageError(f"--out {args.out} is one of the student folders")
    return args, students, out


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv=None) -> int:
    try:
        args, students, out = parse_args(argv)
    except UsageError as e:
        print(f"grade_class: error: {e}", file=sys.stderr)
        return 2
    runner = Runner(args.phase, args.time_limit, args.keyword)
    reports = out / "reports"
    try:
        reports.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"grade_class: error: cannot create {reports}: {e.strerror}", file=sys.stderr)
        return 2

    # SIGTERM (a CI job cancelled, `kill`) stops the grading as cleanly as Ctrl-C.
    signal.signal(signal.SIGTERM, _interrupt)
    log = sys.stderr
    started = time.monotonic()
    print(f"Grading {len(students)} student(s) for phase {args.phase}, {args.jobs} at a time, "
          f"at most {args.time_limit:g} s each", file=log, flush=True)
    grades, done = {}, 0
    catalogue = Catalogue(runner)
    width = max(len(s.name) for s in students)
    pool = concurrent.futures.ThreadPoolExecutor(args.jobs)
    try:
        if args.keyword:
            catalogue.get()  # an -k that matches nothing is a usage error, said at once
        futures = [pool.submit(grade_student, runner, s, catalogue) for s in students]
        for future in concurrent.futures.as_completed(futures):
            grade = future.result()
            grades[grade.student] = grade
            write_report(grade, args.phase, reports / f"{safe_filename(grade.student)}.txt")
            done += 1
            note = f"  ({grade.note})" if grade.note else ""
            print(f"[{done}/{len(students)}] {grade.student:<{width}}  "
                  f"{grade.points}/{grade.maximum}{note}", file=log, flush=True)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        runner.stop_all()
        print(f"\ngrade_class: interrupted after {done} of {len(students)} students; "
              "no gradebook written", file=sys.stderr)
        return 130
    except (RuntimeError, UsageError) as e:  # no grade would be fair
        pool.shutdown(wait=False, cancel_futures=True)
        runner.stop_all()
        print(f"grade_class: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, UsageError) else 1
    pool.shutdown()

    ordered = [grades[s.name] for s in students]
    write_gradebook(ordered, out / "gradebook.csv")
    elapsed = time.monotonic() - started
    full = sum(g.points == g.maximum for g in ordered)
    print(f"Done in {elapsed:.0f} s: {full} of {len(ordered)} with full points. "
          f"Wrote {out / 'gradebook.csv'} and {len(ordered)} reports in {reports}/",
          file=log, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
