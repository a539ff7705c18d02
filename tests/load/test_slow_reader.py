"""A slow reader: one client stops reading while the others send megabytes.

Phase 4 queues what the slow client cannot take, evicts it once more than 1 MiB is
waiting, and nobody else notices: their latency stays low throughout. (Phase 3 sends
while holding its lock, so one client that stops reading freezes everyone: see
docs/performance.md, which measures it; no test waits for a freeze.)
"""

import pytest

from tests.load import loadgen

pytestmark = pytest.mark.repo

LINE = 1000  # bytes per chat line: a megabyte is about a thousand lines


@pytest.fixture(scope="module")
def swarm():
    server = loadgen.start_server(4)
    try:
        with loadgen.Swarm(server.host, server.port, "chat", pid=server.pid) as swarm:
            swarm.connect(3, slow=1, timeout=10)
            swarm.sync(timeout=10)
            yield swarm
    finally:
        server.stop()


def test_under_the_limit_the_slow_reader_stays(swarm):
    # 2 senders x 200 lines x 1000 bytes: 0.4 MB for the slow reader, under 1 MiB
    result = swarm.run(senders=2, messages=200, size=LINE, timeout=20, idle_timeout=5)
    assert loadgen.problems(result) == [], loadgen.report(result)
    assert result["evicted"] == []


def test_past_the_limit_it_is_evicted_and_nobody_waits(swarm):
    """Megabyte after megabyte for the slow reader, until the server gives up on it.

    The kernel holds the first few megabytes (the server's socket send buffer grows to
    4 MiB on Linux); past those, phase 4's own output buffer fills, and the server
    disconnects the client once more than 1 MiB waits there."""
    results = []
    for megabytes in range(1, 17):
        # 2 senders x 500 lines x 1000 bytes: one more megabyte for the slow reader
        result = swarm.run(senders=2, messages=500, size=LINE, timeout=20, idle_timeout=5)
        results.append(result)
        assert loadgen.problems(result) == [], loadgen.report(result)
        # the others never waited for it: what they got came at once, every time
        assert result["delivered"] == result["expected"] == 2 * 500 * 2
        assert result["latency_ms"]["max"] < 1000, loadgen.report(result)
        if result["evicted"]:
            break
    assert result["evicted"] == ["u3"], f"still connected after {megabytes} MB"
    # each of the three readers was told, once, that it left
    assert sum(r["leave_notices"] for r in results) == 3, loadgen.report(result)
    # and the server never held much more than its 1 MiB for it
    if "server" in results[0]:  # Linux: /proc shows its memory
        assert max(r["server"]["rss_peak"] for r in results) \
            - results[0]["server"]["rss_before"] < 8 * 2**20
