"""The grader's output that docs/grading.md shows, produced by the grader itself.

    python -m tests.sessions.grader_samples             # rewrites docs/grader-output/
    python -m tests.sessions.grader_samples --out DIR   # writes somewhere else

Two runs, on examples from tests/examples/broken.py:

- a student checks a phase 3 that has the framing mistake (p3_framing), on a few checks:
  ``pytest --phase 3 --submission my_phase3 -k ...`` -> student.txt (its failures and
  its grade);
- a teacher grades a class of four, the same run tests/test_grader.py makes
  (``python -m tests.grade_class``) -> gradebook.csv and report-bob.txt.

What differs from run to run (temporary folders, ports, clock times, durations) is
replaced by fixed text, so the files change only when the grader's output does.
tests/test_grader.py compares its own runs with these files.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "tests" / "examples"
OUT = REPO / "docs" / "grader-output"

STUDENT_CHECKS = ["test_welcome_and_joined", "test_chat_line", "test_lines_in_one_piece",
                  "test_crlf"]
CLASS_CHECKS = ["test_welcome_and_joined", "test_chat_line", "test_line_in_pieces",
                "test_lines_in_one_piece", "test_client_leaves"]
CLASS_TIME_LIMIT = 10  # seconds; carol's server never says it listens, so she reaches it
SHOWN_FOLDER = "/home/you"  # what the temporary folder is shown as
ENV = {**os.environ, "COLUMNS": "100", "PYTHONDONTWRITEBYTECODE": "1"}


def load_broken():
    spec = importlib.util.spec_from_file_location("chat_examples_broken",
                                                  EXAMPLES / "broken.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


broken = load_broken()


# --------------------------------------------------------------------------- the runs


def student_argv(folder: Path) -> list:
    """Build the student's phase 3 in folder/my_phase3; the command that checks it."""
    broken.BY_NAME["p3_framing"].build(folder / "my_phase3")
    return [sys.executable, "-m", "pytest", "--phase", "3", "--submission",
            str(folder / "my_phase3"), "-k", " or ".join(STUDENT_CHECKS), "-p", "no:xdist"]


def class_argv(folder: Path) -> list:
    """Build a class of four in folder/class; the command that grades it into
    folder/grading-output. alice is right, bob has the framing mistake, carol's server
    never says it listens, dave named his files chat_server.py and chat_client.py."""
    class_dir = folder / "class"
    class_dir.mkdir()
    shutil.copytree(EXAMPLES / "alt_asyncio", class_dir / "alice",
                    ignore=shutil.ignore_patterns("__pycache__"))
    broken.BY_NAME["p3_framing"].build(class_dir / "bob")
    broken.BY_NAME["p3_silent_start"].build(class_dir / "carol")
    dave = class_dir / "dave"
    dave.mkdir()
    for program in ("server.py", "client.py"):
        shutil.copyfile(EXAMPLES / "alt_asyncio" / program, dave / f"chat_{program}")
    return [sys.executable, "-m", "tests.grade_class", str(class_dir), "--phase", "3",
            "--out", str(folder / "grading-output"), "--jobs", "3",
            "--time-limit", str(CLASS_TIME_LIMIT), "-k", " or ".join(CLASS_CHECKS)]


# --------------------------------------------------------------------------- the samples


def normalise(text: str, folder: Path) -> str:
    """Replace what varies between runs by fixed text."""
    text = text.replace(str(folder), SHOWN_FOLDER)
    ports: dict = {}
    text = re.sub(r"127\.0\.0\.1:(\d+)",
                  lambda m: f"127.0.0.1:{ports.setdefault(m[1], 40001 + len(ports))}", text)
    text = re.sub(r"\b\d\d:\d\d:\d\d\b", "12:00:00", text)  # clock times in logs
    return re.sub(r"\b\d+(\.\d+)? s\b", "N s", text)  # durations


def student_sample(output: str, folder: Path) -> str:
    """The failures and the grade: from the FAILURES banner to the short summary."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if " FAILURES " in line)
    end = next(i for i, line in enumerate(lines) if " short test summary info " in line)
    return normalise("\n".join(lines[start:end]) + "\n", folder)


def class_samples(output_dir: Path, folder: Path) -> dict:
    """{file name: text} for the gradebook and bob's report."""
    return {
        "gradebook.csv": normalise((output_dir / "gradebook.csv").read_text("utf-8"), folder),
        "report-bob.txt": normalise((output_dir / "reports" / "bob.txt").read_text("utf-8"),
                                    folder),
    }


def comparable(text: str) -> str:
    """A sample without carol's gradebook row: how many checks her hanging server got
    through before the time limit depends on the machine's speed."""
    return "".join(line for line in text.splitlines(keepends=True)
                   if not line.startswith("carol,"))


def differences(samples: dict, where: Path = OUT) -> list:
    """The names of the samples that differ from the files in where."""
    return [name for name, text in samples.items()
            if not (where / name).is_file()
            or comparable((where / name).read_text("utf-8")) != comparable(text)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grader-samples-") as tmp:
        folder = Path(tmp)
        student = subprocess.run(student_argv(folder), cwd=REPO, env=ENV, text=True,
                                 capture_output=True, timeout=300)
        subprocess.run(class_argv(folder), cwd=REPO, env=ENV, check=True,
                       capture_output=True, timeout=300)
        samples = {"student.txt": student_sample(student.stdout, folder),
                   **class_samples(folder / "grading-output", folder)}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in samples.items():
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / name}")


if __name__ == "__main__":
    main()
