"""The pytest plugin that turns this test suite into a grader.

With no options, every check runs against the four reference phases of this
repository, along with the repository's own tests. To grade someone's work:

    pytest --phase 3 --submission path/to/folder     # its server.py and client.py
    pytest --submission path/to/repo                 # every phaseN_* folder in it
    pytest --phase 4 --server-cmd "./chat --port {port}" [--client-cmd "..."]
    pytest --phase 4 --submission DIR --extensions   # DIR/extensions/ too (or DIR is it)
    ... --results-json results.json                  # Gradescope's format

The options are defined in tests/options.py, which also explains how pytest knows them
before it has found this file.

When grading, only the checks run (tests marked ``check``); the score is printed last.
A check is declared with ``tests.grading.check``; see tests/grading.py."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import harness, options
from tests.grading import (CORE, EXTENSIONS, Chat, Target, UsageProblem, info_of, select_targets)

CHAT_KEY = pytest.StashKey[Chat]()
STATE_KEY = pytest.StashKey["Grading"]()
NO_TARGET = Target(0, "no target")


def pytest_addoption(parser, pluginmanager):
    if not pluginmanager.has_plugin(options.PLUGIN_NAME):  # not installed: see tests/options.py
        options.pytest_addoption(parser)


# --------------------------------------------------------------------------- state


@dataclass
class Result:
    target: str
    phase: int
    label: str
    order: int
    check: str
    points: int
    group: str
    outcome: str = "unfinished"  # then passed, failed or skipped
    message: str = ""

    @property
    def title(self) -> str:  # "Phase 4" or "Phase 4 extensions"
        return f"Phase {self.phase}" + (" extensions" if self.group == EXTENSIONS else "")


@dataclass
class Grading:
    targets: list
    notes: list
    grading: bool  # a submission or a command, not the reference phases
    results: dict = field(default_factory=dict)  # nodeid -> [Result]


def state(config) -> Grading:
    return config.stash[STATE_KEY]


def pytest_configure(config):
    opt = config.option
    try:
        targets, notes = select_targets(opt.phase, opt.submission, opt.server_cmd,
                                        opt.client_cmd, opt.extensions)
    except UsageProblem as e:
        raise pytest.UsageError(str(e)) from None
    grading = bool(opt.submission or opt.server_cmd or opt.client_cmd)
    if grading and not opt.extensions and any(t.phase == 4 for t in targets):
        notes.append("Phase 4's optional extensions were not graded: add --extensions "
                     "to grade them.")
    config.stash[STATE_KEY] = Grading(targets, notes, grading)
    harness.set_docs_url(opt.docs_url or config.getini("docs_url"))
    harness.kill_all_on_signals()
    if not hasattr(config, "workerinput"):  # the process that reports (xdist's controller)
        config.pluginmanager.register(Scorer(config), "chat-grader-scorer")


def pytest_report_header(config):
    st = state(config)
    lines = ["checking: " + ", ".join(f"{t.id} ({t.label})" for t in st.targets)]
    lines += st.notes
    for t in st.targets:
        lines += [f"{t.id}: {problem}" for problem in t.problems.values()]
    return lines


def pytest_unconfigure(config):
    harness.kill_all()


# --------------------------------------------------------------------------- collection


def pytest_collection_finish(session):
    """A test module may start slow background work as soon as the tests are known, by
    defining ``start_in_background(session)`` (tests/test_grader.py does)."""
    modules = {id(item.module): item.module for item in session.items
               if getattr(item, "module", None) is not None}
    for module in modules.values():
        start = getattr(module, "start_in_background", None)
        if start is not None:
            start(session)



@pytest.fixture
def target(request):
    return request.param


@pytest.fixture
def chat(request, target):
    box = Chat(target, request.function.check_info)
    request.node.stash[CHAT_KEY] = box
    yield box
    box.cleanup()


def pytest_generate_tests(metafunc):
    info = getattr(metafunc.function, "check_info", None)
    if info is None or "target" not in metafunc.fixturenames:
        return
    # An extensions snapshot is a superset: it takes the core checks and its own.
    targets = [t for t in state(metafunc.config).targets
               if t.phase in info.phases and (info.group == CORE or t.extensions)]
    if not targets:
        targets = [NO_TARGET]  # deselected below
    metafunc.parametrize("target", targets, ids=[t.id for t in targets], indirect=True)


class MissingProgram(pytest.Item):
    """Stands for every check of a target whose program is missing: one clear failure
    instead of one per check."""

    def __init__(self, *, problem: str, **kwargs):
        super().__init__(**kwargs)
        self.problem = problem

    def runtest(self):
        raise harness.CheckFailed("a program to check", self.problem)

    def repr_failure(self, excinfo):
        return self.problem

    def reportinfo(self):
        return self.path, None, self.name


# The order checks run and are listed in: the order the course teaches things.
MODULE_ORDER = ["test_cli", "test_echo", "test_broadcast", "test_protocol", "test_lines",
                "test_phase4", "test_sessions", "test_extensions"]


def _rank(item) -> int:
    if info_of(item) is None:
        return -1  # the repository's own tests keep their place, first
    name = item.module.__name__.rpartition(".")[2]
    return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)


def pytest_collection_modifyitems(session, config, items):
    st = state(config)
    items.sort(key=_rank)  # stable: within a module, the order of the file
    keep, deselected = [], []
    missing: dict = {}  # (target id, program) -> [item, [(check, points)]]
    for order, item in enumerate(items):
        info = info_of(item)
        if info is None:  # a test of this repository: not when grading or checking one phase
            (deselected if st.grading or config.option.phase else keep).append(item)
            continue
        target = item.callspec.params.get("target", NO_TARGET)
        if target is NO_TARGET:
            deselected.append(item)
            continue
        if info.program in target.problems:
            key = (target.id, info.program)
            if key not in missing:
                problem = target.problems[info.program]
                stand_in = MissingProgram.from_parent(
                    session, name=f"{target.id}-{info.program}", problem=problem)
                stand_in.user_properties += _props(target, order, problem=problem)
                missing[key] = [stand_in, []]
                keep.append(stand_in)
            missing[key][1].append((info.name, info.points, info.group))
            deselected.append(item)
            continue
        if target.argv(info.program) is None:  # not given: noted in the header
            deselected.append(item)
            continue
        item.user_properties += _props(target, order, check=info.name, points=info.points,
                                       group=info.group)
        keep.append(item)
    for stand_in, checks in missing.values():
        stand_in.user_properties.append(("checks", json.dumps(checks)))
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = keep


def _props(target, order, **extra):
    return [("target", target.id), ("phase", target.phase), ("label", target.label),
            ("order", order)] + list(extra.items())


# --------------------------------------------------------------------------- reports


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    info = info_of(item)
    if info is None or call.excinfo is None or not report.failed:
        return
    error = call.excinfo.value
    if isinstance(error, harness.CheckFailed):
        report.longrepr = str(error)
    elif call.excinfo.typename == "Failed" and "Timeout" in str(error):
        box = item.stash.get(CHAT_KEY, None)
        if box is not None:
            report.longrepr = str(box.transcript.failure(
                f"the check finishes within {info.timeout:g} s",
                "it was still waiting when the time ran out"))


class Scorer:
    """Collects check results (from this process or, with xdist, from the workers'
    reports) and writes the score: the terminal summary and --results-json."""

    def __init__(self, config):
        self.config = config
        self.st = state(config)

    def pytest_runtest_logreport(self, report):
        props = dict(report.user_properties)
        if "target" not in props:
            return
        results = self.st.results
        if "problem" in props:
            if report.when == "call":
                results[report.nodeid] = [
                    Result(props["target"], props["phase"], props["label"], props["order"] + i,
                           name, points, group, "failed", f"not run: {props['problem']}")
                    for i, (name, points, group) in enumerate(json.loads(props["checks"]))]
            return
        result = results.setdefault(report.nodeid, [Result(
            props["target"], props["phase"], props["label"], props["order"], props["check"],
            props["points"], props["group"])])[0]
        if report.failed:
            if result.outcome != "failed":  # the first failure says what went wrong
                result.outcome, result.message = "failed", report.longreprtext
        elif report.skipped and result.outcome == "unfinished":
            result.outcome = "skipped"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else \
                str(report.longrepr)
            result.message = reason.removeprefix("Skipped: ")
        elif report.when == "call" and result.outcome == "unfinished":
            result.outcome = "passed"  # only a check that ran to its end passes

    def results(self) -> list:
        """Every result; a check that never finished (interrupted, killed) failed."""
        for group in self.st.results.values():
            for r in group:
                if r.outcome == "unfinished":
                    r.outcome, r.message = "failed", "the check was interrupted before it finished"
        rank = {t.id: i for i, t in enumerate(self.st.targets)}
        flat = [r for group in self.st.results.values() for r in group]
        return sorted(flat, key=lambda r: (rank.get(r.target, 99), r.group != "core", r.order))

    def pytest_sessionfinish(self, session, exitstatus):
        results = self.results()
        path = self.config.option.results_json
        if path:
            tests = [{"name": f"{r.title} · {r.check}",
                      "score": r.points if r.outcome == "passed" else 0,
                      "max_score": 0 if r.outcome == "skipped" else r.points,
                      "output": {"passed": "", "failed": r.message,
                                 "skipped": f"skipped: {r.message}"}[r.outcome]}
                     for r in results]
            data = {"score": sum(t["score"] for t in tests),
                    "max_score": sum(t["max_score"] for t in tests), "tests": tests}
            Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n",
                                  encoding="utf-8")
        if any(r.outcome == "failed" for r in results) and exitstatus in (0, 5):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter, exitstatus, config):
        print_grade(terminalreporter, self.st, self.results())


def _marks(terminalreporter):
    stream = getattr(terminalreporter._tw, "_file", sys.stdout)
    try:
        "✓✗–·".encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return {"passed": "ok  ", "failed": "FAIL", "skipped": "skip"}
    return {"passed": "✓", "failed": "✗", "skipped": "–"}


def print_grade(terminalreporter, st: Grading, results: list) -> None:
    if not results and not st.grading:
        return
    marks = _marks(terminalreporter)
    write = terminalreporter.write_line
    terminalreporter.write_sep("=", "grade")
    for note in st.notes:
        write(note)
    total = maximum = 0
    sections = 0
    for t in st.targets:
        mine = [r for r in results if r.target == t.id]
        titles = list(dict.fromkeys(r.title for r in mine))
        for title in titles:
            sections += 1
            part = [r for r in mine if r.title == title]
            optional = " (optional)" if part[0].group == EXTENSIONS else ""
            write(f"{title}{optional}: {t.label}", bold=True)
            got = top = 0
            for r in part:
                if r.outcome == "skipped":
                    write(f"  {marks['skipped']}  skipped  {r.check} ({r.message})",
                          yellow=True)
                    continue
                score = r.points if r.outcome == "passed" else 0
                got, top = got + score, top + r.points
                write(f"  {marks[r.outcome]}  {score}/{r.points}  {r.check}",
                      green=r.outcome == "passed", red=r.outcome == "failed")
            if title == titles[0]:
                for problem in dict.fromkeys(t.problems.values()):
                    write(f"  not graded: {problem}", red=True)
            write(f"{title}: {got}/{top} points", bold=True, green=got == top, red=got < top)
            total, maximum = total + got, maximum + top
    if sections > 1:
        write(f"Total: {total}/{maximum} points", bold=True)
