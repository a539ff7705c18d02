"""Churn: 500 connections join and leave (by /quit, by closing, by reset) while others
chat. Afterwards the server holds exactly the threads and open files it held before,
every leave was announced exactly once, and the chat still works."""

import collections
import re

import pytest

from tests.load import loadgen
from tests.load.lines import join

pytestmark = pytest.mark.repo

CHURNERS = 500
WAVE = 50  # connections alive at once
HOW = ["quit"] * 5 + ["close"] * 4 + ["reset"]  # by i % 10: half /quit, 40% close, 10% reset
NOTICE = re.compile(r"--- (\S+) has (joined|left) the chat ---")


@pytest.mark.parametrize("phase", [3, 4])
def test_churn_leaves_nothing_behind(phase):
    server = loadgen.start_server(phase)
    clients = []
    try:
        host, port = server.host, server.port
        observers = [join(host, port, f"obs{i}") for i in range(3)]
        clients += observers
        sync(observers, "ready")
        before = loadgen.process_stats(server.pid)

        for wave in range(CHURNERS // WAVE):
            numbers = range(wave * WAVE, (wave + 1) * WAVE)
            churners = {i: join(host, port, f"c{i}") for i in numbers}
            clients += churners.values()
            observers[0].send(f"tick {wave}")
            for i, conn in churners.items():
                if HOW[i % 10] == "quit":
                    conn.send("/quit")
                elif HOW[i % 10] == "close":
                    conn.close()
                else:
                    conn.reset()
            for i, conn in churners.items():
                if HOW[i % 10] == "quit":
                    conn.until(f"--- Goodbye, c{i}! ---")
                    conn.until_closed()  # then the server closes the connection
                    conn.close()

        seen = {}
        for obs in observers:  # every churner's leave has reached every observer
            lines, leaves = [], 0
            while leaves < CHURNERS:
                line = obs.line()
                lines.append(line)
                leaves += bool(re.fullmatch(r"--- c\d+ has left the chat ---", line))
            seen[obs.name] = lines
        observers[1].send("done")  # nothing is still on its way: a duplicate would be here
        for obs in (observers[0], observers[2]):
            seen[obs.name] += obs.until("[obs1]: done")
        observers[0].send("done")
        seen["obs1"] += observers[1].until("[obs0]: done")

        for name, lines in seen.items():
            notices = collections.Counter(NOTICE.fullmatch(l).groups() for l in lines
                                          if NOTICE.fullmatch(l))
            for i in range(CHURNERS):
                assert notices[(f"c{i}", "joined")] == 1, (name, f"c{i}", "joined")
                assert notices[(f"c{i}", "left")] == 1, (name, f"c{i}", "left")
            ticks = [l for l in lines if l.startswith("[obs0]: tick")]
            if name != "obs0":
                assert ticks == [f"[obs0]: tick {w}" for w in range(CHURNERS // WAVE)], name
            others = [l for l in lines if not NOTICE.fullmatch(l) and l not in ticks]
            assert others == [], (name, others[:5])

        after = loadgen.wait_for_stats(
            server.pid, lambda s: (s["fds"], s["threads"]) == (before["fds"], before["threads"]))
        if before is not None:  # Linux: /proc shows the server's threads and open files
            assert (after["fds"], after["threads"]) == (before["fds"], before["threads"]), \
                f"before the churn: {before}; after it: {after}"

        late = join(host, port, "late")
        clients.append(late)
        late.send("still chatting")
        assert observers[1].until("[late]: still chatting") == ["--- late has joined the chat ---"]
        assert server.proc.poll() is None
    finally:
        for conn in clients:
            conn.close()
        server.stop()


def sync(observers, word):
    """The first observer says word; the others read until they have it."""
    observers[0].send(word)
    for obs in observers[1:]:
        obs.until(f"[obs0]: {word}")
