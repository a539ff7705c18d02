"""The example sessions in docs/sessions/, read step by step.

The notation is explained at the end of docs/protocol.md:

    alice connects        open a new connection called alice
    alice > TEXT          alice sends TEXT and a newline
    alice < TEXT          the next line alice receives is exactly TEXT
    alice closes          alice closes its connection
    alice is closed       the server closes alice's connection
    server stops          the server gets SIGTERM
    # ...                 a comment
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SESSIONS = Path(__file__).resolve().parent.parent / "docs" / "sessions"

_STEP = re.compile(r"^(?:(?P<who>[A-Za-z0-9_-]+) (?:(?P<event>connects|closes|is closed)"
                   r"|(?P<dir>[<>])(?: (?P<text>.*))?)|(?P<stop>server stops))$")


@dataclass(frozen=True)
class Step:
    kind: str  # connects, send, expect, closes, is closed, server stops
    who: str | None
    text: str | None
    line: int  # 1-based line number in the file
    source: str  # the line as written

    def where(self, name: str) -> str:
        return f"{name} line {self.line}: {self.source}"


class SessionError(ValueError):
    pass


def parse(text: str) -> list[Step]:
    steps = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _STEP.match(line)
        if not m:
            raise SessionError(f"line {number}: cannot read {line!r}")
        if m["stop"]:
            kind, who, said = "server stops", None, None
        elif m["event"]:
            kind, who, said = m["event"], m["who"], None
        else:
            kind = "send" if m["dir"] == ">" else "expect"
            who, said = m["who"], m["text"] or ""
        steps.append(Step(kind, who, said, number, line))
    return steps


def load(name: str) -> list[Step]:
    return parse((SESSIONS / name).read_text(encoding="utf-8"))
