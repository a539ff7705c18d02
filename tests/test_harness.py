"""Tests of the grader's own parts (never run against a submission): every hint leads to a
real heading, every example session is readable and replayed, option mistakes give one
clear message, a missing server.py is one clear failure, and a failure message has all
its parts. (tests/test_grader.py grades example implementations end to end.)"""

import importlib
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from tests import harness, replay
from tests.grading import CORE, PHASES, REPO, UsageProblem, select_targets

pytestmark = pytest.mark.repo
CHECK_MODULES = sorted(p.stem for p in (REPO / "tests" / "checks").glob("test_*.py"))


def all_checks():
    for name in CHECK_MODULES:
        module = importlib.import_module(f"tests.checks.{name}")
        for attr, fn in vars(module).items():
            if attr.startswith("test_") and hasattr(fn, "check_info"):
                yield f"{name}.{attr}", fn.check_info


def slugify(text: str) -> str:
    """Python-Markdown's toc slugify (the one mkdocs.yml uses), after inline markup."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(page: Path) -> set:
    return {slugify(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*$",
                                                     page.read_text(encoding="utf-8"), re.M)}


def test_every_hint_names_a_heading_of_the_docs():
    for where, info in all_checks():
        page, _, anchor = info.hint.partition("#")
        path = REPO / "docs" / page
        assert path.is_file(), f"{where}: hint {info.hint!r}: no docs/{page}"
        assert anchor in anchors(path), f"{where}: hint {info.hint!r}: no such heading"


def test_checks_are_declared_sensibly():
    seen = set()
    for where, info in all_checks():
        assert info.points > 0 and info.phases and info.hint, where
        assert info.group == CORE or set(info.phases) == {4}, where
        for phase in info.phases:
            assert (phase, info.name) not in seen, f"two checks named {info.name!r}"
            seen.add((phase, info.name))
    for phase in PHASES:
        assert any(phase in info.phases for _, info in all_checks()), phase


def test_every_session_parses_and_is_replayed():
    replayed = set(re.findall(r'play\(chat, "([^"]+)"\)',
                              (REPO / "tests/checks/test_sessions.py").read_text()))
    files = sorted(p.name for p in replay.SESSIONS.glob("*.txt"))
    assert files and set(files) == replayed
    for name in files:
        steps = replay.load(name)
        assert steps and steps[0].kind == "connects", name


def test_session_notation():
    steps = replay.parse("# c\nalice connects\nalice > a < b\nbob < \nalice closes\n"
                         "bob is closed\nserver stops\n")
    assert [(s.kind, s.who, s.text) for s in steps] == [
        ("connects", "alice", None), ("send", "alice", "a < b"), ("expect", "bob", ""),
        ("closes", "alice", None), ("is closed", "bob", None), ("server stops", None, None)]
    with pytest.raises(replay.SessionError):
        replay.parse("alice shouts")


def test_failure_message_has_every_part():
    t = harness.Transcript(hint="protocol.md#lines", title="reads lines")
    t.step("alice connected")
    with t.quiet("500 clients connected"):
        t.step("client 7 connected")
        message = str(t.failure("alice receives 'x'", "nothing within 2 s"))
    for part in ("Check: reads lines", "1. alice connected", "(under way) 500 clients",
                 "client 7 connected", "Expected: alice receives 'x'",
                 "Got:      nothing within 2 s", "Read: docs/protocol.md#lines"):
        assert part in message


def test_hint_urls():
    try:
        harness.set_docs_url("https://example.org/course/")
        # mkdocs.yml sets use_directory_urls: false, so pages are .html files.
        assert harness.hint_url("protocol.md#lines") == \
            "https://example.org/course/protocol.html#lines"
        assert harness.hint_url("index.md") == "https://example.org/course/index.html"
    finally:
        harness.set_docs_url("docs/")
    assert harness.hint_url("phase3.md#framing") == "docs/phase3.md#framing"


@pytest.mark.parametrize("args, message", [
    ((None, None, "./server --port {port}", None), "need --phase"),
    ((3, None, "./server --port 7007", None), "must contain {port}"),
    ((3, "x", "./server {port}", None), "not both"),
    ((None, "/nonexistent/folder", None, None), "no such folder"),
])
def test_option_mistakes(args, message):
    with pytest.raises(UsageProblem, match=re.escape(message)):
        select_targets(*args)


def test_submission_layouts(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "server.py").write_text("")
    with pytest.raises(UsageProblem, match="--phase"):
        select_targets(None, str(one), None, None)
    (target,), _ = select_targets(2, str(one), None, None)
    assert target.server and "client" in target.problems
    many = tmp_path / "many"
    for sub in ("phase1_echo", "phase3"):
        (many / sub).mkdir(parents=True)
        (many / sub / "server.py").write_text("")
    targets, _ = select_targets(None, str(many), None, None)
    assert [t.phase for t in targets] == [1, 3]
    (target,), notes = select_targets(4, None, "srv --port {port}", None)
    assert target.client is None and target.server == ["srv", "--port", "{port}"]
    assert any("--client-cmd" in note for note in notes)


def test_extensions_layouts(tmp_path):
    """--extensions: the snapshot alone, a phase 4 folder with extensions/ inside, a
    whole repository, a command; and the reference run checks both snapshots."""
    core = tmp_path / "phase4_mine"
    (core / "extensions").mkdir(parents=True)
    for folder in (core, core / "extensions"):
        (folder / "server.py").write_text("")
        (folder / "client.py").write_text("")
    (alone,), _ = select_targets(4, str(core / "extensions"), None, None, True)
    assert alone.extensions and alone.cwd == str(core / "extensions")
    both, _ = select_targets(4, str(core), None, None, True)
    assert [(t.id, t.cwd) for t in both] == [("phase4", str(core)),
                                            ("phase4-extensions", str(core / "extensions"))]
    repo, _ = select_targets(None, str(tmp_path), None, None, True)
    assert [t.id for t in repo] == ["phase4", "phase4-extensions"]
    (plain,), _ = select_targets(4, str(core), None, None)
    assert not plain.extensions
    (command,), _ = select_targets(4, None, "srv --port {port}", None, True)
    assert command.extensions
    with pytest.raises(UsageProblem, match="phase 4"):
        select_targets(3, str(core), None, None, True)
    no_snapshot = tmp_path / "repo" / "phase4_select"  # a phase 4 without extensions/
    no_snapshot.mkdir(parents=True)
    (no_snapshot / "server.py").write_text("")
    (found_core, missing), _ = select_targets(4, str(no_snapshot.parent), None, None, True)
    assert found_core.server and "extensions" in missing.problems["server"]
    reference, _ = select_targets(None, None, None, None)
    assert [t.id for t in reference][-2:] == ["phase4", "phase4-extensions"]
    core_only, _ = select_targets(4, None, None, None)
    assert [t.id for t in core_only] == ["phase4"]


def test_missing_server_is_one_clear_failure(tmp_path):
    """A submission without server.py: one failure naming what was expected and what was
    found, every server check counted as failed, no crash, no traceback."""
    (tmp_path / "chat_server.py").write_text("")
    (tmp_path / "utils.py").write_text("")
    out = tmp_path / "results.json"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:benchmark",
         "tests/checks/test_cli.py", "-k", "not client", "--phase=3",
         f"--submission={tmp_path}", f"--results-json={out}"],
        cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    expected = (f"expected server.py in {tmp_path}; found chat_server.py, utils.py: "
                "rename chat_server.py to server.py")
    assert run.returncode == 1, run.stdout + run.stderr
    assert expected in run.stdout and "Traceback" not in run.stdout, run.stdout
    assert "1 failed" in run.stdout, run.stdout
    data = json.loads(out.read_text())
    assert data["tests"] and all(t["score"] == 0 and t["max_score"] > 0 and
                                 t["output"] == f"not run: {expected}" for t in data["tests"])
    assert data["score"] == 0 and data["max_score"] == sum(t["max_score"] for t in data["tests"])


def test_submission_folder_outside_the_repository_with_a_space(tmp_path, pytestconfig):
    """`pytest --phase 1 --submission DIR`, written with a space as the docs do, grades a
    folder outside the course (see tests/options.py for why that needs care)."""
    from tests import options
    if not pytestconfig.pluginmanager.has_plugin(options.PLUGIN_NAME):
        pytest.skip("the course is not installed here: run `python -m pip install -r "
                    "requirements.txt` (its `-e .` line registers the grader's options)")
    for program in ("server.py", "client.py"):
        (tmp_path / program).write_bytes((REPO / "phase1_echo" / program).read_bytes())
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "--phase", "1",
         "--submission", str(tmp_path), "-k", "test_prints_real_port"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
