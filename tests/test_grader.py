"""Meta-tests: the grader grades.

- The second, independent implementations in tests/examples/ (written differently
  from the reference phases) get every point of their phases: the checks test
  behaviour, not one way of writing the code.
- Each deliberately broken example (tests/examples/broken.py: a correct base plus one
  classic mistake) fails the checks that name its mistake, for the right reason.
- ``python -m tests.grade_class`` grades a small class: full points, lost points, a
  server that hangs, a folder laid out wrongly; and it rejects a bad command line.

Everything runs the grader as students and teachers do, in subprocesses, all started
at once by the ``runs`` fixture and collected by the tests. To stay fast, the broken
examples are graded only on their catching checks (node ids), several phases per
grader run (``pytest --submission DIR`` grades every phaseN_* folder in DIR), and
the class is graded on five checks with a short time limit.
"""

from __future__ import annotations

import csv
import importlib
import importlib.util
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.sessions import grader_samples as samples

pytestmark = pytest.mark.repo

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
EXAMPLES = TESTS / "examples"
# Plugins the checks do not use: not loading them saves about a second per run.
QUICK = ["-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:benchmark",
         "-p", "no:xdist"]
WAIT_LIMIT = 180  # seconds: a meta-test never waits longer for its grader run

# The alternative implementations, graded completely (three grader runs side by side).
ALTERNATIVES = {
    "phases 1-2": {1: "alt_phase1", 2: "alt_socketserver_phase2"},
    "phase 3": {3: "alt_asyncio"},
    "phase 4": {4: "alt_asyncio"},
}

# The class: three students of the "Done when" scenario, and one who named the files
# differently. Graded on a few checks only, with a time limit the hanging one exceeds.
CLASS_CHECKS = samples.CLASS_CHECKS  # a few checks, so that the class is graded fast
CLASS_TIME_LIMIT = samples.CLASS_TIME_LIMIT  # the hanging student's checks take longer


broken = samples.broken  # tests/examples/broken.py



def check_index() -> dict:
    """(function name, phase) -> (node id, the check's sentence), from tests/checks."""
    index = {}
    for path in sorted((TESTS / "checks").glob("test_*.py")):
        module = importlib.import_module(f"checks.{path.stem}")
        for name, fn in vars(module).items():
            info = getattr(fn, "check_info", None)
            if info is not None:
                for phase in info.phases:
                    index[(name, phase)] = (f"tests/checks/{path.name}::{name}", info.name)
    return index


# --------------------------------------------------------------------------- runs


@dataclass
class Run:
    """One grader process started in the background."""

    name: str
    argv: list
    folder: Path
    results: Path | None = None
    proc: subprocess.Popen | None = None
    started: float = 0.0
    seconds: float = 0.0
    problems: dict = field(default_factory=dict)  # variant -> why it could not be built
    out: Path | None = None  # grade_class's --out

    def start(self):
        self.log = self.folder / "output.txt"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.argv, cwd=REPO, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         env=samples.ENV)  # the width the samples have
        self.started = time.monotonic()

    def wait(self):
        """(exit status, results dict or None, output)."""
        if self.proc.returncode is None:
            try:
                self.proc.wait(WAIT_LIMIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.seconds = time.monotonic() - self.started
        output = self.log.read_text(encoding="utf-8", errors="replace")
        data = None
        if self.results is not None and self.results.exists():
            data = json.loads(self.results.read_text(encoding="utf-8"))
        return self.proc.returncode, data, output

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def grader(folder: Path, *selection, phase: int | None = None) -> list:
    argv = [sys.executable, "-m", "pytest", *(selection or ["tests/checks"]),
            f"--submission={folder}", f"--results-json={folder / 'results.json'}", *QUICK]
    return argv + ([f"--phase={phase}"] if phase else [])


def rounds() -> list:
    """The broken examples in rounds: at most one per phase in each, so one grader run
    grades a whole round (its phaseN_* folders)."""
    out, seen = [], {}
    for b in broken.BROKEN:
        i = seen[b.phase] = seen.get(b.phase, -1) + 1
        if i == len(out):
            out.append([])
        out[i].append(b)
    return out


def round_of(name: str) -> int:
    return next(i for i, r in enumerate(rounds()) if any(b.name == name for b in r))


def make_full_run(tmp: Path, label: str) -> Run:
    folder = tmp / f"full {label.replace(' ', '_')}"
    folder.mkdir()
    for phase, example in ALTERNATIVES[label].items():
        dest = folder / f"phase{phase}_{example}"
        dest.mkdir()
        for program in ("server.py", "client.py"):
            shutil.copyfile(EXAMPLES / example / program, dest / program)
    return Run(f"full {label}", grader(folder), folder, folder / "results.json")


def make_round(tmp: Path, i: int, index: dict) -> Run:
    folder = tmp / f"round{i}"
    folder.mkdir()
    run = Run(f"round {i}", [], folder, folder / "results.json")
    nodes = []
    for b in rounds()[i]:
        try:
            missing = [c for c in b.catches if (c, b.phase) not in index]
            if missing:
                raise LookupError(f"broken.py names checks that do not exist for phase "
                                  f"{b.phase}: {', '.join(missing)}")
            b.build(folder / f"phase{b.phase}_{b.name}")
        except (ValueError, LookupError, OSError) as e:
            run.problems[b.name] = str(e)
            continue
        nodes += [index[(c, b.phase)][0] for c in b.catches]
    run.argv = grader(folder, *dict.fromkeys(nodes))
    return run


def make_class_run(tmp: Path) -> Run:
    return Run("class", samples.class_argv(tmp), tmp, out=tmp / "grading-output")


def make_sample_run(tmp: Path) -> Run:
    folder = tmp / "sample"
    folder.mkdir()
    return Run("sample", samples.student_argv(folder), folder)


class Runs:
    """The grader runs of this module, each built and started on first demand."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.index = check_index()
        self.started: dict = {}

    def get(self, key: str) -> Run:
        if key not in self.started:
            if key == "class":
                run = make_class_run(self.tmp)
            elif key == "sample":
                run = make_sample_run(self.tmp)
            elif key in ALTERNATIVES:
                run = make_full_run(self.tmp, key)
            else:
                run = make_round(self.tmp, int(key.removeprefix("round ")), self.index)
            run.start()
            self.started[key] = run
        return self.started[key]

    def stop(self):
        for run in self.started.values():
            run.stop()


def key_of(item) -> str | None:
    """Which run a meta-test waits for."""
    name, _, param = item.name.partition("[")
    param = param.rstrip("]")
    if name == "test_class_grading":
        return "class"
    if name == "test_grading_guide_sample_is_current":
        return "sample"
    if name == "test_alternative_passes_completely":
        return param
    if name == "test_broken_example_is_caught":
        return f"round {round_of(param)}"
    return None


RUNS_KEY = pytest.StashKey[Runs]()


def start_in_background(session):
    """Start, at once, every grader run that the selected meta-tests need.

    tests/conftest.py calls this as soon as collection is done, so that these runs
    (about 20 s of their own) go on side by side with the rest of the suite instead
    of after it. Not in a pytest-xdist worker, which cannot know yet which tests it
    will get: there each run starts when a test first asks for it.
    """
    if hasattr(session.config, "workerinput"):
        return
    here = sys.modules[__name__]
    keys = {key_of(item) for item in session.items
            if getattr(item, "module", None) is here} - {None}
    runs = Runs(Path(tempfile.mkdtemp(prefix="grader-meta-")))
    first = ["class", "phase 4", "phase 3", "sample"]  # the longest runs start first
    for key in sorted(keys, key=lambda k: (first.index(k) if k in first else 9, k)):
        runs.get(key)
    session.config.stash[RUNS_KEY] = runs


@pytest.fixture(scope="module")
def runs(request):
    if RUNS_KEY not in request.config.stash:  # see start_in_background()
        request.config.stash[RUNS_KEY] = Runs(Path(tempfile.mkdtemp(prefix="grader-meta-")))
    runs = request.config.stash[RUNS_KEY]
    yield runs
    runs.stop()
    shutil.rmtree(runs.tmp, ignore_errors=True)


def failures(data: dict) -> str:
    return "\n\n".join(f"{t['name']}:\n{t['output']}" for t in data["tests"]
                       if t["score"] < t["max_score"])


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("label", list(ALTERNATIVES))
def test_alternative_passes_completely(runs, label):
    """A second implementation, written differently from the reference, gets every
    point of every phase it implements."""
    run = runs.get(label)
    status, data, output = run.wait()
    assert data is not None, f"the grader wrote no results; it printed:\n{output[-3000:]}"
    for phase, example in ALTERNATIVES[label].items():
        mine = [t for t in data["tests"] if t["name"].startswith(f"Phase {phase} · ")]
        assert mine, f"no check of phase {phase} ran for {example}"
    assert data["score"] == data["max_score"], (
        f"the grader took points from a correct implementation:\n{failures(data)}")
    assert status == 0, output[-3000:]
    print(f"{label}: {data['score']}/{data['max_score']} points, {len(data['tests'])} checks, "
          f"{run.seconds:.1f} s")


@pytest.mark.parametrize("name", [b.name for b in broken.BROKEN])
def test_broken_example_is_caught(runs, name):
    """Each broken example fails every check its mistake must fail, and says why."""
    index = runs.index
    b = broken.BY_NAME[name]
    run = runs.get(f"round {round_of(name)}")
    assert name not in run.problems, run.problems.get(name)
    status, data, output = run.wait()
    assert data is not None, f"the grader wrote no results; it printed:\n{output[-3000:]}"
    results = {t["name"]: t for t in data["tests"]}
    for function in b.catches:
        sentence = index[(function, b.phase)][1]
        result = results.get(f"Phase {b.phase} · {sentence}")
        assert result is not None, f"{function} did not run for {name}:\n{output[-3000:]}"
        assert result["score"] == 0, (
            f"{name} ({b.mistake}) passed the check {sentence!r}, which must catch it")
        assert b.says in result["output"], (
            f"{name} failed {sentence!r}, but not for the expected reason "
            f"(no {b.says!r} in the message):\n{result['output']}")
    assert status == 1


def test_class_grading(runs):
    """The class grader: one correct student, one with the framing mistake, one whose
    server never says it listens, one with misnamed files."""
    run = runs.get("class")
    start = run.started
    status, _, output = run.wait()
    elapsed = time.monotonic() - start
    assert status == 0, output
    assert "Traceback" not in output, output
    with open(run.out / "gradebook.csv", newline="", encoding="utf-8") as f:
        book = {row["student"]: row for row in csv.DictReader(f)}
    assert list(book) == ["alice", "bob", "carol", "dave"], output
    index = runs.index
    sentence = {name: index[(name, 3)][1] for name in CLASS_CHECKS}
    maximum = int(book["alice"]["maximum"])
    assert maximum > 0

    alice = book["alice"]
    assert (int(alice["points"]), alice["failed checks"], alice["note"]) == (maximum, "", ""), \
        f"a correct student lost points: {alice}\n{output}"

    bob = book["bob"]
    framing = [sentence["test_line_in_pieces"], sentence["test_lines_in_one_piece"]]
    assert bob["failed checks"].split("; ") == framing, bob
    assert bob["note"] == ""
    assert int(bob["points"]) == maximum - 4  # each framing check is worth 2

    carol = book["carol"]
    assert int(carol["maximum"]) == maximum
    assert int(carol["points"]) < maximum
    assert "time limit" in carol["note"], carol
    assert elapsed < CLASS_TIME_LIMIT + 30, f"grading the class took {elapsed:.0f} s"

    dave = book["dave"]
    assert (int(dave["points"]), int(dave["maximum"])) == (0, maximum)
    assert "chat_server.py" in dave["note"] and "server.py and client.py" in dave["note"]

    reports = {p.stem: p.read_text(encoding="utf-8") for p in (run.out / "reports").glob("*.txt")}
    assert sorted(reports) == ["alice", "bob", "carol", "dave"]
    assert f"FAIL  0/2  {framing[0]}" in reports["bob"]
    assert "Expected:" in reports["bob"]  # the grader's own failure message
    assert "[4/4]" in output
    stale = samples.differences(samples.class_samples(run.out, run.folder))
    assert not stale, (f"docs/grader-output/ shows another output of the class grader "
                       f"({', '.join(stale)}): run `python -m tests.sessions.grader_samples`")
    print(f"class of 4 graded in {elapsed:.1f} s:",
          "; ".join(f"{s} {r['points']}/{r['maximum']}" for s, r in book.items()))


def test_grading_guide_sample_is_current(runs):
    """docs/grading.md shows a student's grader run; it is this run's output."""
    run = runs.get("sample")
    status, _, output = run.wait()
    assert status == 1, output  # the framing mistake fails a check
    sample = samples.student_sample(output, run.folder)
    stale = samples.differences({"student.txt": sample})
    assert not stale, ("docs/grader-output/student.txt differs from the grader's output: "
                       "run `python -m tests.sessions.grader_samples`\n" + sample)


@pytest.mark.parametrize("argv, says", [
    (["/no/such/class", "--phase", "3"], "no such folder"),
    ([".", "--phase", "5"], "invalid choice"),
    (["."], "--phase"),
    ([".", "--phase", "3", "--jobs", "0"], "--jobs"),
], ids=["no folder", "bad phase", "no phase", "no jobs"])
def test_class_grader_usage_errors(argv, says):
    result = subprocess.run([sys.executable, "-m", "tests.grade_class", *argv], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result
    assert says in result.stderr
    assert "Traceback" not in result.stderr
