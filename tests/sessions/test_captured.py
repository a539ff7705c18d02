"""The sample sessions in the chapters are what the phases print today.

docs/captured/ holds what each terminal showed in a scripted session of each phase
(see capture.py). This test plays the sessions again and compares.
"""

import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.repo

REPO = Path(__file__).resolve().parents[2]
CAPTURED = REPO / "docs" / "captured"
REFRESH = "run `python -m tests.sessions.capture` to refresh them"


def texts(folder: Path) -> dict:
    return {path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
            for path in sorted(folder.glob("*/*.txt"))}


@pytest.mark.skipif(os.name == "nt", reason="the capture stops servers with SIGINT (POSIX)")
def test_captured_sessions_are_current(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tests.sessions.capture", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    if result.returncode != 0:
        pytest.fail("the session scripts in tests/sessions/capture.py no longer match what "
                    f"the phases do; fix the script, then {REFRESH}:\n{result.stderr}",
                    pytrace=False)
    fresh, committed = texts(tmp_path), texts(CAPTURED)
    problems = []
    for name in sorted(fresh.keys() | committed.keys()):
        if name not in committed:
            problems.append(f"docs/captured/{name} is missing")
        elif name not in fresh:
            problems.append(f"docs/captured/{name} is no longer captured")
        elif fresh[name] != committed[name]:
            diff = difflib.unified_diff(
                committed[name].splitlines(), fresh[name].splitlines(),
                f"docs/captured/{name}", "captured now", lineterm="",
            )
            problems.append("\n".join(diff))
    if problems:
        pytest.fail(f"docs/captured/ is out of date: {REFRESH}.\n\n" + "\n\n".join(problems),
                    pytrace=False)
