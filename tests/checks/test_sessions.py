"""The example sessions of docs/protocol.md (docs/sessions/*.txt), replayed step by step."""

import pytest

from tests import harness
from tests import replay
from tests.grading import EXTENSIONS, check


def play(chat, filename: str) -> None:
    path = replay.SESSIONS / filename
    if not path.exists():
        pytest.skip(f"{path} is missing")
    steps = replay.load(filename)
    server = chat.server
    conns = {}
    for step in steps:
        chat.step(step.where(filename))
        with chat.transcript.muted():  # the session's own words say what each step does
            if step.kind == "connects":
                conns[step.who] = chat.connect(step.who)
                # in phase 2 nothing answers a connection: wait until the server has
                # accepted it, so that it is among those a message is relayed to
                harness.wait_until_accepted(server.host, server.port)
            elif step.kind == "send":
                conns[step.who].send_line(step.text)
            elif step.kind == "expect":
                conns[step.who].expect(step.text)
            elif step.kind == "closes":
                conns[step.who].close()
            elif step.kind == "is closed":
                conns[step.who].expect_closed()
            elif step.kind == "server stops":
                server.terminate()


@check("follows the example session of phase 1 (docs/sessions/phase1.txt)", points=1,
       phases=(1,), hint="protocol.md#phase-1-echo")
def test_session_phase1(chat):
    play(chat, "phase1.txt")


@check("follows the example session of phase 2 (docs/sessions/phase2.txt)", points=1,
       phases=(2,), hint="protocol.md#phase-2-broadcast")
def test_session_phase2(chat):
    play(chat, "phase2.txt")


@check("follows the example session of phase 3 (docs/sessions/phase3.txt)", points=1,
       phases=(3, 4), hint="protocol.md#example-session")
def test_session_phase3(chat):
    play(chat, "phase3.txt")


@check("follows the example session of phase 4 (docs/sessions/phase4.txt)", points=1,
       phases=(4,), hint="protocol.md#phase-4-limits")
def test_session_phase4(chat):
    play(chat, "phase4.txt")


@check("follows the example session of the extensions (docs/sessions/extensions.txt)",
       points=1, phases=(4,), group=EXTENSIONS, hint="protocol.md#phase-4-extensions")
def test_session_extensions(chat):
    play(chat, "extensions.txt")
