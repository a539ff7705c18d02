"""The phase_diff build hook: a marker line becomes the diff of two phase folders."""

import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

pytestmark = pytest.mark.repo

PHASES = ["phase1_echo", "phase2_threads", "phase3_usernames", "phase4_select"]


@pytest.fixture
def root(tmp_path):
    """A repository root with two small phase folders, a/ and b/."""
    files = {
        "a/server.py": "import socket\n# --8<-- [start:main]\nprint('echo')\n# --8<-- [end:main]\n",
        "a/client.py": "import socket\n",
        "a/gone.py": "OLD = 1\n",
        "b/server.py": "import socket\nimport threading\n    # --8<-- [start:main]\nprint('chat')\n",
        "b/client.py": "import socket\n",
        "b/added.py": "NEW = 2\n",
        "a/notes.txt": "not Python: never diffed\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_marker_becomes_a_diff_of_every_python_file(phase_diff, root):
    out = phase_diff.expand_markers("Before.\n<!-- phase-diff: a b -->\nAfter.\n", root)
    assert out.startswith("Before.\n") and out.endswith("\nAfter.\n")
    assert "phase-diff:" not in out
    assert '```{ .diff .phase-diff title="a → b" }' in out
    headers = re.findall(r"^(?:---|\+\+\+) (\S+)$", out, re.MULTILINE)
    assert headers == [
        "/dev/null", "b/added.py",  # only in b: added
        "a/gone.py", "/dev/null",  # only in a: removed
        "a/server.py", "b/server.py",  # changed (client.py is identical: no hunk)
    ]
    assert "+import threading" in out and "-print('echo')" in out and "+print('chat')" in out
    assert "notes.txt" not in out


def test_snippet_section_markers_are_left_out(phase_diff, root):
    out = phase_diff.expand_markers("<!-- phase-diff: a b -->\n", root)
    assert "--8<--" not in out


def test_two_files_and_an_indented_marker(phase_diff, root):
    out = phase_diff.expand_markers(
        '!!! note\n\n    <!-- phase-diff: a/server.py b/server.py -->\n', root
    )
    lines = [line for line in out.splitlines() if line]
    assert lines[1] == '    ```{ .diff .phase-diff title="a/server.py → b/server.py" }'
    assert lines[2:4] == ["    --- a/server.py", "    +++ b/server.py"]
    assert all(line.startswith("    ") for line in lines[1:])


def test_fence_outgrows_backticks_in_the_code(phase_diff, root):
    (root / "b" / "client.py").write_text('DOC = """```python"""\n', encoding="utf-8")
    out = phase_diff.expand_markers("<!-- phase-diff: a b -->\n", root)
    assert "\n````{ .diff" in out and out.rstrip().endswith("````")


@pytest.mark.parametrize(
    "marker, message",
    [
        ("<!-- phase-diff: a -->", "malformed marker"),
        ("<!-- phase-diff: a b c -->", "malformed marker"),
        ("<!-- phase-diff a b -->", "malformed marker"),
        ("<!-- phase-diff: a b", "malformed marker"),
        ("<!-- phase-diff: a nowhere -->", "no folder or file 'nowhere'"),
        ("<!-- phase-diff: a ../outside -->", "no folder or file '../outside'"),
        ("<!-- phase-diff: a/server.py b -->", "must be two folders or two files"),
        ("<!-- phase-diff: a a -->", "identical"),
    ],
)
def test_bad_marker_raises_a_clear_error(phase_diff, root, marker, message):
    (root.parent / "outside").mkdir(exist_ok=True)
    with pytest.raises(ValueError, match=re.escape(message)):
        phase_diff.expand_markers(f"# Page\n\n{marker}\n", root)


def test_hook_error_names_the_page(phase_diff, root):
    page = SimpleNamespace(file=SimpleNamespace(src_uri="phase2.md"))
    config = {"config_file_path": str(root / "mkdocs.yml")}
    with pytest.raises(phase_diff.PluginError, match=r"phase_diff: in phase2\.md: no folder"):
        phase_diff.on_page_markdown("<!-- phase-diff: a zz -->\n", page=page, config=config)


def test_bad_marker_fails_a_real_build(repo_root, root):
    (root / "docs").mkdir()
    (root / "docs" / "index.md").write_text("# Home\n\n<!-- phase-diff: a missing -->\n")
    hook = repo_root / "docs" / "hooks" / "phase_diff.py"
    (root / "mkdocs.yml").write_text(f"site_name: t\nhooks:\n  - {hook}\n")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(root / "site")],
        cwd=root, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "phase_diff: in index.md: no folder or file 'missing'" in result.stderr


@pytest.mark.parametrize("old, new", list(zip(PHASES, PHASES[1:])))
def test_real_phases_diff_cleanly(phase_diff, repo_root, old, new):
    out = phase_diff.expand_markers(f"<!-- phase-diff: {old} {new} -->\n", repo_root)
    assert f"--- {old}/server.py" in out and f"+++ {new}/server.py" in out
    assert "--8<--" not in out
