"""MkDocs hook: show what changed from one phase to the next.

A line holding only

    <!-- phase-diff: phase1_echo phase2_threads -->

becomes a ```diff block (class "phase-diff", titled "phase1_echo → phase2_threads")
holding the unified diff of every .py file in the two folders, sorted; a file found in
one folder only is diffed against /dev/null. Two files work too, for a narrower diff:

    <!-- phase-diff: phase2_threads/server.py phase3_usernames/server.py -->

Paths are relative to the repository root (the folder of mkdocs.yml). The marker may
be indented, e.g. inside an admonition; the diff is indented to match. Snippet section
markers (lines whose stripped text starts with "# --8<--") are left out of the diff.
A malformed marker, an unknown path or an empty diff fails the build.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from mkdocs.exceptions import PluginError

USAGE = "<!-- phase-diff: FOLDER_A FOLDER_B -->"
# Any line that looks like an attempt at a marker...
ATTEMPT = re.compile(r"^[ \t]*<!--\s*phase-diff\b.*$", re.MULTILINE)
# ...must be exactly this.
MARKER = re.compile(
    r"(?P<indent>[ \t]*)<!--\s*phase-diff\s*:\s*(?P<old>[^\s>]+)\s+(?P<new>[^\s>]+)\s*-->\s*"
)


def on_page_markdown(markdown: str, page, config, **kwargs) -> str:
    root = Path(config["config_file_path"]).parent
    try:
        return expand_markers(markdown, root)
    except ValueError as error:
        raise PluginError(f"phase_diff: in {page.file.src_uri}: {error}") from None


def expand_markers(markdown: str, root: Path) -> str:
    """Replace every marker line in `markdown` with its diff block."""

    def replace(attempt: re.Match) -> str:
        marker = MARKER.fullmatch(attempt.group())
        if marker is None:
            raise ValueError(f"malformed marker {attempt.group().strip()!r}; write {USAGE}")
        block = diff_block(root, marker["old"], marker["new"])
        indented = (marker["indent"] + line if line else line for line in block.splitlines())
        return "\n" + "\n".join(indented) + "\n"  # blank lines around the fence

    return ATTEMPT.sub(replace, markdown)


def diff_block(root: Path, old: str, new: str) -> str:
    """A fenced ```diff block comparing two folders, or two files, under `root`."""
    text = diff(root, old, new)
    fence = "`" * max(3, longest_backtick_run(text) + 1)
    return f'{fence}{{ .diff .phase-diff title="{old} → {new}" }}\n{text}\n{fence}\n'


def diff(root: Path, old: str, new: str) -> str:
    """The unified diff of two folders (all their .py files) or of two files."""
    old_path, new_path = locate(root, old), locate(root, new)
    if old_path.is_file() and new_path.is_file():
        pairs = [(old, new)]
    elif old_path.is_dir() and new_path.is_dir():
        names = sorted(python_files(old_path) | python_files(new_path))
        if not names:
            raise ValueError(f"no .py files in {old!r} or {new!r}")
        pairs = [(f"{old}/{name}", f"{new}/{name}") for name in names]
    else:
        raise ValueError(f"{old!r} and {new!r} must be two folders or two files")
    lines = []
    for old_name, new_name in pairs:
        old_file, new_file = root / old_name, root / new_name
        lines += difflib.unified_diff(
            source_lines(old_file),
            source_lines(new_file),
            old_name if old_file.exists() else "/dev/null",
            new_name if new_file.exists() else "/dev/null",
            lineterm="",
        )
    if not lines:
        raise ValueError(f"{old!r} and {new!r} are identical: nothing to show")
    return "\n".join(lines)


def locate(root: Path, name: str) -> Path:
    path = (root / name).resolve()
    if not path.is_relative_to(root.resolve()) or not path.exists():
        raise ValueError(f"no folder or file {name!r} in the repository ({root})")
    return path


def python_files(folder: Path) -> set[str]:
    return {
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*.py")
        if "__pycache__" not in path.parts
    }


def source_lines(path: Path) -> list[str]:
    """The lines of a file, without snippet section markers; none if it is missing."""
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [line for line in text.splitlines() if not line.strip().startswith("# --8<--")]


def longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)
