"""The grader's command-line options, registered before pytest reads its arguments.

pytest looks for its configuration (and so for tests/conftest.py) where the paths
on its command line are. In ``pytest --phase 3 --submission DIR``, an option pytest
does not know yet makes it take DIR for a test path, look for its configuration
there, and stop with "unrecognized arguments". So pyproject.toml declares this module
as a pytest plugin (an entry point in the group "pytest11"), installed by
``pip install -r requirements.txt`` (its line ``-e .``): pytest then knows these
options from the start, and DIR is just their value. tests/conftest.py registers them
itself when this repository was not installed, where ``--submission=DIR`` still works.
"""

import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN_NAME = "chat-course-grader"  # the entry point's name in pyproject.toml


def pytest_addoption(parser):
    group = parser.getgroup("grading", "grading a chat server and client")
    group.addoption("--phase", type=int, choices=(1, 2, 3, 4), default=None,
                    help="the phase to check (1-4); needed with a single-phase submission "
                         "or a command")
    group.addoption("--submission", metavar="DIR", default=None,
                    help="a folder with server.py and client.py (give --phase), or with "
                         "phaseN_* folders")
    group.addoption("--server-cmd", metavar="CMD", default=None,
                    help='command that starts your server, with {port} (and {host}), '
                         'e.g. "./server --port {port}"')
    group.addoption("--client-cmd", metavar="CMD", default=None,
                    help="command that starts your client, with {port} (and {host})")
    group.addoption("--extensions", action="store_true", default=False,
                    help="also grade phase 4's extensions snapshot (its extensions/ folder, "
                         "or the folder given): core and extension checks")
    group.addoption("--results-json", metavar="PATH", default=None,
                    help="write the score in Gradescope's results.json format")
    group.addoption("--docs-url", metavar="URL", default=None,
                    help="base of the links in hints (default: the docs_url ini value)")
    parser.addini("docs_url", "base of the links in check hints", default="docs/")


TAKES_A_VALUE = ("--submission", "--server-cmd", "--client-cmd", "--results-json", "--docs-url")


def course_folder() -> Path | None:
    """The course repository pytest runs in (the current folder), if it is one."""
    here = Path.cwd().resolve()
    return here if (here / "tests" / "options.py").is_file() else None


def pytest_load_initial_conftests(early_config, parser, args):
    """Undo pytest's misreading of ``--submission DIR``.

    Even with these options known, pytest chooses its root folder and configuration
    before it loads any plugin, from every argument that names an existing path, so an
    option's value DIR still counts. Run from the course's folder, that is always
    wrong: pytest is started again with each such value glued to its option
    (--submission=DIR), which it cannot mistake for a path.
    """
    course = course_folder()
    if course is None or Path(early_config.rootpath).resolve() == course:
        return
    glued, rest = [], list(args)
    while rest:
        word = rest.pop(0)
        if word in TAKES_A_VALUE and rest:
            word = f"{word}={rest.pop(0)}"
        glued.append(word)
    if glued != list(args):
        raise SystemExit(subprocess.call([sys.executable, "-m", "pytest", *glued]))


def pytest_configure(config):
    """Graders run from the course's folder; elsewhere pytest would collect other tests."""
    option = config.option
    grading = option.submission or option.server_cmd or option.client_cmd
    course = course_folder()
    if grading and (course is None or Path(config.rootpath).resolve() != course):
        where = Path(__file__).resolve().parent.parent
        raise pytest.UsageError(f"run the grader from the course's folder, e.g. cd {where}")
