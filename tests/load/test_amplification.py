"""Command amplification: one client asks for far more output than it could ever read.

A "/who" line is 5 bytes; its answer, with hundreds of users online, is kilobytes. So
one 64 KiB read of "/who" lines asks the server for tens of megabytes. A phase 4 server
stops answering a client as soon as it owes that client more than its output limit
(1 MiB) and evicts it at once: what one client can cost is bounded by the limit, and
nobody else waits (docs/protocol.md, "Phase 4: limits"). Both phase 4 snapshots are
checked: the core and the extensions.
"""

import socket
import sys

import pytest

from tests import harness
from tests.load import loadgen

pytestmark = pytest.mark.repo

USERS = 400  # online while the attack runs: each /who answer is about 4 KB
ATTACK = b"/who\n" * (64 * 1024 // 5)  # one 64 KiB read: 13,107 commands, about 50 MB of answers
MAX_OUTPUT = 1024 * 1024


@pytest.mark.parametrize("folder", ["phase4_select", "phase4_select/extensions"])
def test_a_flood_of_commands_costs_at_most_the_output_limit(folder):
    server = harness.ServerProcess(
        [sys.executable, str(loadgen.REPO / folder / "server.py"), "--host", "{host}",
         "--port", "{port}"], cwd=loadgen.REPO, start_timeout=10, label=f"the {folder} server")
    try:
        with loadgen.Swarm(server.host, server.port, "chat", pid=server.pid) as swarm:
            swarm.connect(USERS, timeout=30)
            swarm.sync(timeout=30)
            before = loadgen.process_stats(server.pid)

            attacker = socket.create_connection((server.host, server.port), timeout=10)
            attacker.sendall(b"mallory\n")
            attacker.sendall(ATTACK)
            received = 0
            try:
                while chunk := attacker.recv(65536):  # until the server closes it
                    received += len(chunk)
            except ConnectionResetError:
                pass
            attacker.close()

            # The others never noticed: every message of a run arrives, in order.
            result = swarm.run(senders=2, messages=100, timeout=20, idle_timeout=5)
            after = loadgen.process_stats(server.pid)
    finally:
        server.stop()

    assert loadgen.problems(result) == [], loadgen.report(result)
    print(f"{folder}: the attacker got {received:,} bytes before its eviction; the "
          f"others' latency meanwhile: max {result['latency_ms']['max']:.1f} ms")
    # Evicted, not served: it never got anything near the 50 MB it asked for.
    assert received < 2 * MAX_OUTPUT, f"the server sent the attacker {received:,} bytes"
    if before and after:  # Linux: /proc shows the server's memory
        growth = after["rss"] - before["rss"]
        assert growth < 16 * 2**20, f"the server grew by {growth / 2**20:.0f} MiB"
