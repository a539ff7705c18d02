"""Graceful shutdown under load: SIGTERM while 100 clients chat gives every client the
shutdown line and a clean close (end of stream, not a reset), and phase 4 exits with
status 0."""

import selectors
import signal
import time

import pytest

from tests.load import loadgen
from tests.load.lines import join

pytestmark = pytest.mark.repo

CLIENTS = 100
CHATTERS = 10
GOODBYE = b"--- Server shutting down ---\n"


def test_sigterm_while_a_hundred_clients_chat():
    server = loadgen.start_server(4)
    clients = []
    try:
        clients = [join(server.host, server.port, f"c{i}") for i in range(CLIENTS)]
        selector = selectors.DefaultSelector()
        received = {c: bytearray(c.buffer) for c in clients}  # what arrived after welcome
        ended = {}  # client -> "end of stream" or "reset"
        for c in clients:
            c.sock.setblocking(False)
            selector.register(c.sock, selectors.EVENT_READ, c)
        chatters = clients[:CHATTERS]
        sent = 0
        signalled_at = None
        deadline = time.monotonic() + 15
        while len(ended) < CLIENTS:
            assert time.monotonic() < deadline, f"{CLIENTS - len(ended)} clients still open"
            for chatter in chatters:  # everyone talks, all the time
                if chatter not in ended:
                    try:
                        chatter.sock.send(f"message {sent}\n".encode())
                        sent += 1
                    except OSError:  # the server is going, or gone
                        pass
            for key, _ in selector.select(0.005):
                c = key.data
                try:
                    data = c.sock.recv(65536)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = None
                if data:
                    received[c] += data
                    continue
                ended[c] = "end of stream" if data == b"" else "reset"
                selector.unregister(c.sock)
            # SIGTERM once the chat is in full swing: the last client has seen 200 lines
            if signalled_at is None and received[clients[-1]].count(b"\n") >= 200:
                server.proc.send_signal(signal.SIGTERM)
                signalled_at = time.monotonic()
        assert signalled_at is not None
        status = server.proc.wait(5)
        selector.close()

        assert status == 0, f"exit status {status}: {server.stderr_tail(5)}"
        unclean = [c.name for c in clients if ended[c] != "end of stream"]
        assert unclean == [], f"reset instead of closed: {unclean}"
        missing = [c for c in clients if not received[c].endswith(GOODBYE)]
        assert missing == [], (f"{len(missing)} clients did not get the shutdown line last; "
                               f"{missing[0].name} got {bytes(received[missing[0]][-80:])!r}")
    finally:
        for c in clients:
            c.close()
        server.stop()
