"""Phase 4 only: one thread, slow readers evicted, more than 1,024 clients, clean shutdown
(docs/protocol.md, "Phase 4: limits")."""

import signal

import pytest

from tests import harness
from tests.grading import INVALID_NAME, SHUTDOWN, chat_line, check, joined, left, online, welcome

HINT = "protocol.md#phase-4-limits"


def needs_proc():
    if not harness.PROC_NET_TCP.exists():
        pytest.skip("this check reads Linux's /proc")


@check("runs in a single thread", points=2, phases=(4,), hint=HINT)
def test_one_thread(chat):
    needs_proc()
    alice, bob, carol = chat.join("alice", "bob", "carol")
    alice.send_line("hello")
    bob.expect(chat_line("alice", "hello"))
    carol.expect(chat_line("alice", "hello"))
    pids = harness.group_pids(chat.server.pid) or [chat.server.pid]
    threads = max(harness.proc_status(pid, "Threads") or 1 for pid in pids)
    chat.step(f"counted the server's threads in /proc: {threads}")
    if threads != 1:
        chat.fail("1 thread, however many clients", f"{threads} threads for 3 clients")


def collect(conn, want: str, *extra):
    """The next line is ``want``, but each of ``extra`` may come first (once each);
    returns the extras that came."""
    seen = []
    while True:
        line = conn.recv_line(expected=f"{conn.name} receives {harness.show(want)}")
        if line == want:
            return seen
        if line in extra and line not in seen:
            seen.append(line)
            continue
        conn.transcript.fail(f"{conn.name} receives {harness.show(want)}", harness.show(line))


@check("evicts a client that stops reading once 1 MiB waits for it, and nobody else waits",
       points=3, phases=(4,), hint=HINT, timeout=30)
def test_slow_reader_evicted(chat):
    alice, bob = chat.join("alice", "bob")
    slow = chat.connect("slow", rcvbuf=4096)
    slow.send_line("slow")
    slow.expect(welcome("slow"))
    alice.expect(joined("slow"))
    bob.expect(joined("slow"))
    chat.step("from now on slow reads nothing")
    gone = left("slow")
    heard = {"alice": False, "bob": False}  # who has received `gone` (exactly once)

    def receive(conn, line):
        if collect(conn, line, *([] if heard[conn.name] else [gone])):
            heard[conn.name] = True

    text, batch, sent, limit = "x" * 1000, 32, 0, 8 * 1024 * 1024
    with chat.quiet():
        while not heard["bob"] and sent < limit:
            lines = [chat_line("alice", f"{sent + i:07d} {text}") for i in range(batch)]
            alice.send_raw("".join(l[len("[alice]: "):] + "\n" for l in lines).encode())
            for line in lines:
                receive(bob, line)
            sent += sum(len(l) + 1 for l in lines)
            bob.send_line(f"ack {sent}")
            receive(alice, chat_line("bob", f"ack {sent}"))
    chat.step(f"alice sent 1 KB lines in batches of {batch}; bob read each batch within 2 s "
              f"and answered it, and alice read the answer; about {sent // 1024} KiB were "
              "sent to slow meanwhile")
    if not heard["bob"]:
        chat.fail(f"bob receives {gone!r} once more than 1 MiB waits for slow",
                  f"nothing after {sent // (1024 * 1024)} MiB")
    chat.step(f"bob received {gone!r}")
    bob.send_line("/who")
    bob.expect(online("alice", "bob"))
    alice.send_line("/who")
    receive(alice, online("alice", "bob"))
    if not heard["alice"]:
        chat.fail(f"alice receives {gone!r}", "she did not")
    slow.drain_until_closed()


@check("serves more than 1,024 connections at once (select() cannot: use selectors)",
       points=3, phases=(4,), hint=HINT, timeout=30)
def test_many_connections(chat):
    count = 1100
    if harness.raise_fd_limit(count + 200) < count + 200:
        pytest.skip(f"this system does not allow {count + 200} open files")
    (alice,) = chat.join("alice")
    conns, wave = [], 5  # a few at a time: even listen(5) keeps up
    with chat.quiet(f"{count} more clients connected, a few at a time, each sent 'no name!' "
                    f"and received {INVALID_NAME!r}; all stayed connected"):
        for start in range(0, count, wave):
            batch = [chat.connect(f"client {start + i + 1}") for i in range(wave)]
            for conn in batch:
                conn.send_line("no name!")
            for conn in batch:
                conn.expect(INVALID_NAME)
            conns += batch
    alice.send_line("/who")
    alice.expect(online("alice"))
    (zed,) = chat.join("zed")
    alice.expect(joined("zed"))
    zed.send_line("hi from far away")
    alice.expect(chat_line("zed", "hi from far away"))
    with chat.quiet(f"the {count} clients closed their connections"):
        for conn in conns:
            conn.close()
    alice.send_line("/who")
    alice.expect(online("alice", "zed"))


def shutdown_check(chat, sig):
    alice, bob = chat.join("alice", "bob")
    carol = chat.connect("carol")  # connected, not joined
    carol.send_line("carol!")
    carol.expect(INVALID_NAME)
    server = chat.server
    server.send_signal(sig)
    for conn in (alice, bob):
        conn.expect(SHUTDOWN)
        conn.expect_closed()
    kind, line = carol.next_event()  # may get the line too ("every client")
    if kind == "line" and line == SHUTDOWN:
        kind, line = carol.next_event()
    if kind != "closed":
        chat.fail("the server closes carol's connection",
                  f"carol received {line!r}" if kind == "line" else "it stayed open")
    status = server.wait_exit(2.0)
    if status != 0:
        chat.fail("exit status 0", f"exit status {status}")
    chat.no_traceback(server)


@check("on SIGTERM, tells every client '--- Server shutting down ---', closes every "
       "connection, and exits with status 0", points=2, phases=(4,), hint=HINT)
def test_sigterm(chat):
    shutdown_check(chat, signal.SIGTERM)


@check("on Ctrl-C (SIGINT), does the same", points=1, phases=(4,), hint=HINT)
def test_sigint(chat):
    if not harness.POSIX:
        pytest.skip("sending SIGINT to another process needs a POSIX system")
    shutdown_check(chat, signal.SIGINT)
