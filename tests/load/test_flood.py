"""A connection flood: 2,000 connections opened at once against phase 4 are all
accepted, all join, and all are served, by one thread."""

import re

import pytest

from tests.load import loadgen
from tests.load.lines import join

pytestmark = pytest.mark.repo

FLOOD = 2000


def test_two_thousand_connections_at_once():
    server = loadgen.start_server(4)
    try:
        with loadgen.Swarm(server.host, server.port, "chat", pid=server.pid) as swarm:
            before = loadgen.process_stats(server.pid)
            # batch=FLOOD: every connect() is started before the first one is answered
            swarm.connect(FLOOD, batch=FLOOD, timeout=30)  # each got its welcome line
            swarm.sync(timeout=30)  # and each received a chat line from u0
            assert swarm.ready == FLOOD and not swarm.closed_unexpectedly
            counter = join(server.host, server.port, "counter")
            try:
                counter.send("/who")
                counter.until(re.compile(r"--- Online \(\d+\): .*"))
                assert counter.matched.startswith(f"--- Online ({FLOOD + 1}): ")
            finally:
                counter.close()
            during = loadgen.process_stats(server.pid)
            if before and during:  # Linux: one thread, and one more open file per client
                assert during["threads"] == 1
                assert during["fds"] >= before["fds"] + FLOOD
            assert server.proc.poll() is None
    finally:
        server.stop()
