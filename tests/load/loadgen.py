"""A load generator for the chat servers: one process, one selectors loop, thousands of sockets.

    python -m tests.load.loadgen --phase 4 --clients 100 --senders 10 --messages 200
    python -m tests.load.loadgen --phase 3 --clients 100 --senders 10 --messages 40 --rate 20
    python -m tests.load.loadgen --connect 127.0.0.1:7007 --protocol chat --pid 4242

What one run does:

1. It starts the server of ``--phase`` with ``--port 0`` (or uses the one already running
   at ``--connect HOST:PORT``; give ``--pid`` to see its memory and threads too).
2. It connects ``--clients`` clients, at most ``--connect-batch`` at a time, and registers
   them: a username each with the ``chat`` protocol (phases 3 and 4); nothing with ``raw``
   (phase 2 relays bytes as they come) and ``echo`` (phase 1).
3. It synchronises: one client sends a marker line and the tool waits until every other
   client has received it, so every client is really being served (a raw server sends no
   welcome line to wait for).
4. ``--senders`` of the clients send ``--messages`` messages each, flat out or at
   ``--rate`` messages per second each. A message is ``#W.SENDER.SEQ.STAMP.``: which
   workload, who sent it, its sequence number, and when it was sent (microseconds).
   Flat out is closed-loop: a sender keeps at most ``--window`` messages in flight
   (sent, and not yet seen by a watching client), as a real chat client does not send
   faster than a chat can carry forever.
5. While messages flow, the receivers only store what arrives and count the messages
   (cheap, so the tool does not slow the server down). The run ends when every expected
   message arrived, or nothing happened for ``--idle-timeout`` seconds (a stall).
6. Afterwards every line is checked: for each receiver and sender the sequence numbers
   must arrive as 0, 1, 2, ...; what never came is lost, what came twice duplicated, what
   came after a later one out of order. Latency is arrival time minus the stamp.

It reports deliveries per second (messages received, counted at every receiver),
latency p50/p99/max, the server's memory (RSS), threads and open files (from Linux's
/proc), the time it took to connect the clients, and the lost, duplicated and
out-of-order counts, which must all be zero (the exit status is 1 otherwise).

Standard library only. Phase 1 serves one client at a time, so with it use --clients 1.
"""

from __future__ import annotations

import argparse
import collections
import errno
import json
import os
import re
import selectors
import signal
import socket
import sys
import time
from operator import itemgetter
from pathlib import Path

try:
    from tests import harness
except ImportError:  # run from elsewhere than the repository's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests import harness

REPO = Path(__file__).resolve().parents[2]
PHASES = {1: "phase1_echo", 2: "phase2_threads", 3: "phase3_usernames", 4: "phase4_select"}
PROTOCOLS = {1: "echo", 2: "raw", 3: "chat", 4: "chat"}
RAW_RECV = 4096  # phase 2 relays what one recv(4096) returns: see window_for()
RECV_SIZE = 256 * 1024  # the tool's own reads: large, so reading costs little
SLOW_RCVBUF = 4096  # a slow reader's receive buffer: small, so it fills up quickly
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class LoadError(Exception):
    """The run could not go on (a client could not connect or join, a deadline passed)."""


# --------------------------------------------------------------------------- servers


def server_argv(phase: int) -> list:
    return [sys.executable, str(REPO / PHASES[phase] / "server.py"),
            "--host", "{host}", "--port", "{port}"]


def start_server(phase: int) -> "harness.ServerProcess":
    """Start a reference server on a free port (``.host``, ``.port``, ``.pid``, ``.stop()``)."""
    return harness.ServerProcess(server_argv(phase), cwd=REPO, start_timeout=10,
                                 label=f"the phase {phase} server")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_stats(pid: int | None) -> dict | None:
    """A process's memory (RSS, bytes), threads, open file descriptors and CPU seconds,
    read from Linux's /proc. None where there is no /proc (or no such process)."""
    if pid is None:
        return None
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    after_name = stat.rpartition(")")[2].split()  # fields 3 and on; utime, stime are 14, 15
    return {"rss": int(fields["VmRSS"].split()[0]) * 1024,
            "vms": int(fields["VmSize"].split()[0]) * 1024,  # address space, mostly untouched
            "threads": int(fields["Threads"]),
            "fds": fds,
            "cpu_s": (int(after_name[11]) + int(after_name[12])) / CLOCK_TICKS}


def wait_for_stats(pid: int, predicate, timeout: float = 5.0) -> dict | None:
    """Poll /proc until predicate(stats) holds (say, open files back to a baseline) or
    the timeout passes; return the last stats seen."""
    deadline = time.monotonic() + timeout
    while True:
        stats = process_stats(pid)
        if stats is None or predicate(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(harness.POLL)


def window_for(protocol: str, window: int | None, line_bytes: int) -> int | None:
    """The most messages a sender may have in flight.

    Phase 2 does not cut the stream into lines: it relays whatever one recv(4096)
    returns, so two senders' half lines could interleave at a receiver and no message
    could be checked. While a sender never has more than 4096 bytes in flight, every
    recv() the server makes returns whole lines only, and the relay stays checkable.
    """
    if protocol != "raw":
        return window
    most = max(1, RAW_RECV // line_bytes)
    return most if window is None else min(window, most)


# --------------------------------------------------------------------------- the swarm


class Client:
    """One connection of the swarm."""

    __slots__ = ("index", "name", "sock", "state", "slow", "events", "partial", "outbuf",
                 "synced", "received", "counted", "expected", "closed_at")

    def __init__(self, index: int, name: str, sock: socket.socket, slow: bool):
        self.index, self.name, self.sock, self.slow = index, name, sock, slow
        self.state = "connecting"  # then "joining" (chat only), "ready", "closed"
        self.events = 0  # what the selector watches for this socket
        self.partial = b""  # the start of a line whose end has not arrived yet
        self.outbuf = bytearray()  # bytes the socket did not take yet
        self.synced = False
        self.received = []  # (arrival time, complete lines) while a workload runs
        self.counted = 0  # messages of the running workload seen so far
        self.expected = 0  # messages of the running workload it should get
        self.closed_at = None


class Workload:
    """The state of one batch of messages while it flows."""

    def __init__(self, number: int, senders: list, messages: int, rate, window, pad: bytes):
        self.number = number
        self.marker = b"#%d." % number  # every message of this workload contains it
        self.senders = senders
        self.messages = messages
        self.rate = rate
        self.window = window
        self.pad = pad
        self.next_seq = {c.index: 0 for c in senders}
        self.progress = {c.index: 0 for c in senders}  # messages its watcher has seen
        self.watcher = {}  # sender index -> the Client that watches its progress
        self.watches = {}  # Client -> the sender indexes it watches
        self.ids = re.compile(rb"#%d\.(\d+)\." % number)
        self.remaining = 0
        self.start = self.first_send = self.last_delivery = self.last_send = None


class Swarm:
    """N client connections to one chat server, driven by one selectors loop."""

    def __init__(self, host: str, port: int, protocol: str, *, pid: int | None = None,
                 prefix: str = "u", recv_size: int = RECV_SIZE):
        if protocol not in ("chat", "raw", "echo"):
            raise ValueError(f"unknown protocol {protocol!r}")
        self.host, self.port, self.protocol, self.pid = host, port, protocol, pid
        self.prefix = prefix
        self.recv_size = recv_size
        self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.selector = selectors.DefaultSelector()
        self.clients: list[Client] = []
        self.t0 = time.perf_counter()
        self.nonce = f"{os.getpid()}-{int(self.t0 * 1000) % 100000}"
        self.sync_round = 0
        self.sync_marker = None
        self.sync_missing = 0
        self.work: Workload | None = None
        self.workloads = 0
        self.joining = 0  # connections started and not ready yet
        self.ready = 0
        self.closed_unexpectedly: list[str] = []
        harness.raise_fd_limit(20000)

    # ----------------------------------------------------------------- time

    def us(self, t: float) -> int:
        """Microseconds since the swarm began: the unit of the stamps in messages."""
        return int((t - self.t0) * 1_000_000)

    # ----------------------------------------------------------------- selector

    def _watch(self, client: Client) -> None:
        wanted = 0
        if client.state == "connecting":
            wanted = WRITE
        elif client.state != "closed":
            if not (client.slow and client.state == "ready"):  # a slow reader stops reading
                wanted = READ
            if client.outbuf:
                wanted |= WRITE
        if wanted == client.events:
            return
        if client.events == 0:
            self.selector.register(client.sock, wanted, client)
        elif wanted == 0:
            self.selector.unregister(client.sock)
        else:
            self.selector.modify(client.sock, wanted, client)
        client.events = wanted

    def _poll(self, timeout: float) -> None:
        for key, mask in self.selector.select(timeout):
            client = key.data
            if mask & READ:
                self._read(client)
            if mask & WRITE and client.state != "closed":
                if client.state == "connecting":
                    self._connected(client)
                else:
                    self._flush(client)

    # ----------------------------------------------------------------- connecting

    def connect(self, count: int, *, slow: int = 0, batch: int = 100,
                timeout: float = 120.0) -> float:
        """Connect count clients and slow slow readers (and register them); return the
        seconds it took. A slow reader joins, then never reads again.

        At most batch connections are on their way at once: a server that calls
        listen() with Python's default backlog (128) has room for no more in its
        accept queue, and Linux drops the connections that do not fit (their clients
        then wait seconds to try again). A chat client is on its way until its welcome
        line arrives; a raw server sends nothing, so each batch is synchronised (a
        marker line that all must receive) before the next one starts."""
        start = time.perf_counter()
        deadline = start + timeout
        todo = [False] * count + [True] * slow
        target = self.ready + len(todo)
        while self.ready < target:
            opened = 0
            while todo and self.joining < batch:
                self._open(todo.pop(0))
                opened += 1
            if opened and self.protocol != "chat":
                while self.joining and time.perf_counter() < deadline:
                    self._poll(0.05)
                # Linux shows a listening socket's accept queue: once it is empty the
                # server has accepted the batch, and the marker line finds them all.
                harness.wait_until_accepted(self.host, self.port, timeout=5.0)
                self.sync(timeout=max(1.0, deadline - time.perf_counter()), retry=0.1)
            if time.perf_counter() > deadline:
                raise LoadError(f"only {self.ready} of {target} clients were connected and "
                                f"served after {timeout:g} s")
            self._poll(0.05)
        return time.perf_counter() - start

    def _open(self, slow: bool) -> None:
        index = len(self.clients)
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        # The tool sends its small messages at once (no Nagle delay on its side):
        # what is measured is the server, not the tool's TCP settings.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if slow:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
        client = Client(index, f"{self.prefix}{index}", sock, slow)
        self.clients.append(client)
        self.joining += 1
        status = sock.connect_ex((self.host, self.port))
        if status not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            raise LoadError(f"client {index} could not connect to {self.host}:{self.port}: "
                            f"{os.strerror(status)}")
        self._watch(client)

    def _connected(self, client: Client) -> None:
        status = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if status:
            raise LoadError(f"client {client.index} could not connect to "
                            f"{self.host}:{self.port}: {os.strerror(status)}")
        if self.protocol == "chat":
            client.state = "joining"
            self.send(client, client.name.encode() + b"\n")
        else:
            self._now_ready(client)
        self._watch(client)

    def _now_ready(self, client: Client) -> None:
        client.state = "ready"
        self.joining -= 1
        self.ready += 1
        self._watch(client)

    # ----------------------------------------------------------------- sending

    def send(self, client: Client, data: bytes) -> None:
        if client.state == "closed":
            return
        waiting = bool(client.outbuf)  # then the selector flushes it when writable
        client.outbuf += data
        if not waiting:
            self._flush(client)

    def _flush(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.outbuf)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._closed(client)
            return
        del client.outbuf[:sent]
        self._watch(client)  # write interest while something is left, none after

    # ----------------------------------------------------------------- receiving

    def _read(self, client: Client) -> None:
        try:
            data = client.sock.recv(self.recv_size)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._closed(client)
            return
        now = time.perf_counter()
        if client.partial:
            data = client.partial + data
        cut = data.rfind(b"\n") + 1
        if cut < len(data):
            client.partial = data[cut:]
            data = data[:cut]
        else:
            client.partial = b""
        if not data:
            return
        if client.state == "joining":
            self._joining_lines(client, data)
        if self.sync_marker is not None and not client.synced and self.sync_marker in data:
            client.synced = True
            self.sync_missing -= 1
        work = self.work
        if work is not None:
            client.received.append((now, data))
            found = data.count(work.marker)
            if found:
                work.last_delivery = now
                if client.counted < client.expected:
                    work.remaining -= min(found, client.expected - client.counted)
                client.counted += found
                watched = work.watches.get(client)
                if watched:
                    for sender, n in collections.Counter(work.ids.findall(data)).items():
                        sender = int(sender)
                        if sender in watched:
                            work.progress[sender] += n

    def _joining_lines(self, client: Client, data: bytes) -> None:
        for line in data.split(b"\n"):
            if line.startswith(b"--- Welcome"):
                self._now_ready(client)
                return
            if line.startswith(b"! "):
                raise LoadError(f"{client.name} could not join: {line.decode(errors='replace')}")

    def _closed(self, client: Client) -> None:
        if client.state == "closed":
            return
        if client.state != "ready":
            raise LoadError(f"the server closed the connection of {client.name} before it "
                            "was served")
        client.closed_at = time.perf_counter()
        if not client.slow:
            self.closed_unexpectedly.append(client.name)
        if client.events:
            self.selector.unregister(client.sock)
            client.events = 0
        client.state = "closed"
        client.sock.close()

    # ----------------------------------------------------------------- synchronising

    def readers(self) -> list:
        """The clients that read what they get (not slow readers, not closed)."""
        return [c for c in self.clients if not c.slow and c.state == "ready"]

    def sync(self, timeout: float = 60.0, *, retry: float | None = None) -> float:
        """One client sends a marker line; wait until every other reader has received it.

        Phases 3 and 4 send a client everything in order, so afterwards nothing sent to
        anyone before the marker is still on its way. A raw server (phase 2) has no
        welcome line: a client it has not accepted yet misses the marker, so the marker
        is sent again every ``retry`` seconds until all have one (one is enough: it
        proves the server had the client in its list)."""
        start = time.perf_counter()
        deadline = start + timeout
        if retry is None and self.protocol == "raw":
            retry = 0.5
        readers = self.readers()
        if not readers:
            raise LoadError("no client left to synchronise")
        sender = readers[0]
        targets = readers if self.protocol == "echo" else readers[1:]
        for client in self.clients:
            client.synced = False
        self.sync_round += 1
        self.sync_missing = len(targets)
        self.sync_marker = f"sync-{self.nonce}-{self.sync_round}-".encode()
        attempt, last = 0, start
        try:
            while self.sync_missing > 0:
                now = time.perf_counter()
                if attempt == 0 or (retry and now - last >= retry):
                    attempt += 1
                    last = now
                    self.send(sender, self.sync_marker + b"%d\n" % attempt)
                if now > deadline:
                    raise LoadError(f"{self.sync_missing} of {len(targets)} clients did not "
                                    f"receive a marker line within {timeout:g} s")
                if sender.state == "closed":
                    raise LoadError(f"the server closed {sender.name}'s connection")
                self._poll(0.05)
        finally:
            self.sync_marker = None
        return time.perf_counter() - start

    # ----------------------------------------------------------------- a workload

    def run(self, *, senders: int = 10, messages: int = 200, rate: float | None = None,
            window: int | None = 64, size: int = 0, timeout: float = 300.0,
            idle_timeout: float = 10.0, post_sync: bool = True) -> dict:
        """Send, receive, then check every message; return the measurements."""
        readers = self.readers()
        if senders > len(readers):
            raise LoadError(f"{senders} senders but only {len(readers)} clients")
        self.workloads += 1
        number = self.workloads
        chosen = [readers[i * len(readers) // senders] for i in range(senders)]
        longest = len(b"#%d.%d.%d.%d.\n" % (number, len(self.clients), messages, 10**11))
        line_bytes = max(longest, size + 1)
        pad = b"x" * max(0, size - longest + 1)
        window = window_for(self.protocol, window, line_bytes)
        work = Workload(number, chosen, messages, rate, window, pad)
        ids = {c.index for c in chosen}
        for client in self.clients:
            client.received, client.counted, client.expected = [], 0, 0
        for client in readers:
            if self.protocol == "echo":
                client.expected = messages if client.index in ids else 0
            else:
                client.expected = messages * (len(chosen) - (client.index in ids))
            work.remaining += client.expected
        expected_total = work.remaining
        for sender in chosen:  # who tells us how far each sender's messages got
            if self.protocol == "echo":
                watcher = sender
            else:
                watcher = next(c for c in reversed(readers) if c is not sender)
            work.watcher[sender.index] = watcher
            work.watches.setdefault(watcher, set()).add(sender.index)

        before = process_stats(self.pid)
        peak_rss = before["rss"] if before else None
        cpu_before = os.times()
        self.work = work
        work.start = time.perf_counter()
        deadline = work.start + timeout
        next_sample = work.start
        stalled = timed_out = False
        try:
            while work.remaining > 0:
                now = time.perf_counter()
                wait = self._send_due(work, now)
                if now >= next_sample and self.pid is not None:
                    stats = process_stats(self.pid)
                    if stats:
                        peak_rss = max(peak_rss or 0, stats["rss"])
                    next_sample = now + 0.1
                if now > deadline:
                    timed_out = True
                    break
                last = max(work.last_delivery or work.start, work.last_send or work.start)
                if now - last > idle_timeout:
                    stalled = True
                    break
                self._poll(min(wait, 0.05))
            end = work.last_delivery or time.perf_counter()
            cpu_after = os.times()
            during = process_stats(self.pid)
            post_sync_error = None
            if post_sync and not (stalled or timed_out):
                # Anything the server sent before the marker has arrived: duplicates too.
                try:
                    self.sync(timeout=max(10.0, idle_timeout))
                except LoadError as error:
                    post_sync_error = str(error)
        finally:
            self.work = None
        result = self._verify(work, readers, expected_total)
        result.update(
            protocol=self.protocol, clients=len(readers), slow_readers=sum(
                c.slow for c in self.clients), senders=len(chosen), messages=messages,
            rate=rate, window=window, line_bytes=line_bytes, stalled=stalled,
            timed_out=timed_out, post_sync_error=post_sync_error,
            evicted=[c.name for c in self.clients if c.slow and c.name in result["left"]],
            closed_unexpectedly=list(self.closed_unexpectedly),
            loadgen_cpu_s=round((cpu_after.user - cpu_before.user)
                                + (cpu_after.system - cpu_before.system), 3))
        duration = max(end - (work.first_send or work.start), 1e-9)
        result["duration_s"] = round(duration, 4)
        result["deliveries_per_s"] = round(result["delivered"] / duration)
        if before and during:
            result["server"] = {"rss_before": before["rss"], "rss_peak": max(peak_rss,
                                                                             during["rss"]),
                                "threads": during["threads"], "fds": during["fds"],
                                "cpu_s": round(during["cpu_s"] - before["cpu_s"], 3)}
        return result

    def _send_due(self, work: Workload, now: float) -> float:
        """Send every message that is due; return the seconds until the next one is."""
        wait = 0.05
        for sender in work.senders:
            index = sender.index
            seq = work.next_seq[index]
            if seq >= work.messages or sender.outbuf or sender.state == "closed":
                continue
            allowed = work.messages - seq
            if work.window is not None:
                allowed = min(allowed, work.window - (seq - work.progress[index]))
            if work.rate:
                due = min(work.messages, int((now - work.start) * work.rate) + 1)
                allowed = min(allowed, due - seq)
                # message number `due` falls due at start + due / rate
                wait = min(wait, max(0.0, work.start + due / work.rate - now))
            if allowed <= 0:
                continue
            stamp = self.us(now)
            head = b"#%d.%d." % (work.number, index)
            tail = b".%d.%s\n" % (stamp, work.pad)
            data = b"".join(head + b"%d" % n + tail for n in range(seq, seq + allowed))
            work.next_seq[index] = seq + allowed
            if work.first_send is None:
                work.first_send = now
            work.last_send = now
            self.send(sender, data)
        return wait

    def _verify(self, work: Workload, readers: list, expected_total: int) -> dict:
        """Check every message each reader received; measure the latencies."""
        pattern = re.compile(rb"#%d\.(\d+)\.(\d+)\.(\d+)\." % work.number)
        ids = [c.index for c in work.senders]
        tally = collections.Counter()
        latencies = []
        unexpected = []
        left = set()  # who the readers were told has left
        for client in readers:  # as they were when the run began, closed since or not
            if self.protocol == "echo":
                wanted = {client.index} & set(ids)
            else:
                wanted = set(ids) - {client.index}
            found_all = []
            for arrived, data in client.received:
                found = pattern.findall(data)
                if len(found) != data.count(b"\n"):
                    self._other_lines(pattern, data, tally, unexpected, left)
                if found:
                    now = self.us(arrived)
                    latencies.extend(map(now.__sub__, map(int, map(itemgetter(2), found))))
                    found_all += found
            tally["delivered"] += len(found_all)
            # The usual case, checked at C speed: sorted by sender (a stable sort keeps
            # each sender's messages in their order of arrival), the sequence numbers
            # read 0, 1, ..., M-1 for each expected sender.
            found_all.sort(key=itemgetter(0))
            order = sorted(b"%d" % s for s in wanted)
            if (list(map(itemgetter(0), found_all)) == [s for s in order
                                                        for _ in range(work.messages)]
                    and list(map(int, map(itemgetter(1), found_all)))
                    == list(range(work.messages)) * len(order)):
                continue
            self._tally_problems(found_all, wanted, work.messages, tally)
        latencies.sort()

        def ms(fraction):
            if not latencies:
                return None
            return round(latencies[min(len(latencies) - 1, int(fraction * len(latencies)))]
                         / 1000, 3)

        return {"expected": expected_total, "delivered": tally["delivered"],
                "lost": tally["lost"], "duplicated": tally["duplicated"],
                "out_of_order": tally["out_of_order"], "misdirected": tally["misdirected"],
                "latency_ms": {"p50": ms(0.50), "p99": ms(0.99),
                               "max": round(latencies[-1] / 1000, 3) if latencies else None},
                "join_notices": tally["joins"], "leave_notices": tally["leaves"],
                "left": sorted(left),
                "unexpected_lines": tally["unexpected"], "unexpected_samples": unexpected}

    @staticmethod
    def _other_lines(pattern, data: bytes, tally, unexpected: list, left: set) -> None:
        """Sort out the lines of a chunk that are not messages of the workload."""
        for line in data.split(b"\n")[:-1]:
            if pattern.search(line) or b"sync-" in line:
                continue
            if line.endswith(b"has joined the chat ---"):
                tally["joins"] += 1
            elif line.endswith(b"has left the chat ---"):
                tally["leaves"] += 1
                left.add(line[4:-len(" has left the chat ---")].decode("utf-8", "replace"))
            else:
                tally["unexpected"] += 1
                if len(unexpected) < 5:
                    unexpected.append(line[:120].decode("utf-8", "replace"))

    @staticmethod
    def _tally_problems(found: list, wanted: set, messages: int, tally) -> None:
        """One reader's messages, one by one (found: sorted by sender, each sender's in
        order of arrival): count the lost, duplicated, out-of-order and misdirected."""
        seen = {s: bytearray(messages) for s in wanted}
        highest = dict.fromkeys(wanted, -1)
        for sender, seq, _ in found:
            sender, seq = int(sender), int(seq)
            if sender not in seen or seq >= messages:
                tally["misdirected"] += 1  # its own message came back, or a stranger's
                continue
            if seen[sender][seq]:
                tally["duplicated"] += 1
                continue
            seen[sender][seq] = 1
            if seq < highest[sender]:
                tally["out_of_order"] += 1
            highest[sender] = max(highest[sender], seq)
        tally["lost"] += sum(messages - bits.count(1) for bits in seen.values())

    # ----------------------------------------------------------------- the end

    def close(self) -> None:
        for client in self.clients:
            if client.state != "closed":
                client.state = "closed"
                try:
                    client.sock.close()
                except OSError:
                    pass
        self.selector.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------- one measurement


def measure(phase: int | None = None, *, clients: int, senders: int = 10,
            messages: int = 200, rate: float | None = None, window: int | None = 64,
            size: int = 0, slow_readers: int = 0, connect_batch: int = 100,
            timeout: float = 300.0, idle_timeout: float = 10.0, address=None,
            protocol: str | None = None, pid: int | None = None) -> dict:
    """Start a server (or use the one at address), connect, run one workload, stop."""
    if phase == 1 and clients + slow_readers > 1:
        raise LoadError("phase 1 serves one client at a time: use --clients 1")
    server = None
    if address is None:
        server = start_server(phase)
        address, pid = (server.host, server.port), server.pid
        protocol = PROTOCOLS[phase]
    try:
        with Swarm(address[0], address[1], protocol, pid=pid) as swarm:
            baseline = process_stats(pid)
            connect_s = swarm.connect(clients, slow=slow_readers, batch=connect_batch,
                                      timeout=timeout)
            sync_s = swarm.sync(timeout=timeout)
            connected = process_stats(pid)
            result = swarm.run(senders=senders, messages=messages, rate=rate, window=window,
                               size=size, timeout=timeout, idle_timeout=idle_timeout)
    finally:
        if server is not None:
            server.stop()
    result.update(phase=phase, connect_s=round(connect_s, 3), sync_s=round(sync_s, 3))
    if baseline and connected:
        n = clients + slow_readers
        result["server_idle"] = {
            "rss_base": baseline["rss"], "rss_connected": connected["rss"],
            "rss_per_client": round((connected["rss"] - baseline["rss"]) / n),
            "threads": connected["threads"], "fds": connected["fds"]}
    return result


def problems(result: dict) -> list:
    """What went wrong in a run, as sentences (empty: nothing)."""
    found = []
    for key in ("lost", "duplicated", "out_of_order", "misdirected"):
        if result.get(key):
            found.append(f"{result[key]} messages {key.replace('_', ' ')}")
    if result.get("stalled"):
        found.append("the run stalled: nothing arrived for the idle timeout")
    if result.get("timed_out"):
        found.append("the run timed out")
    if result.get("closed_unexpectedly"):
        found.append(f"the server closed {len(result['closed_unexpectedly'])} readers")
    if result.get("post_sync_error"):
        found.append(result["post_sync_error"])
    return found


def mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def report(result: dict) -> str:
    """The human-readable summary of one measurement."""
    lines = []
    label = f"phase {result['phase']}" if result.get("phase") else "server"
    mode = (f"at {result['rate']:g} messages/s each" if result.get("rate")
            else f"flat out (at most {result['window']} in flight each)")
    lines.append(f"{label} ({result['protocol']}): {result['clients']} clients"
                 + (f" + {result['slow_readers']} slow readers" if result["slow_readers"]
                    else ""))
    if "connect_s" in result:
        lines.append(f"  connected and served all in {result['connect_s']:.3f} s "
                     f"(+ {result['sync_s']:.3f} s to synchronise)")
    idle = result.get("server_idle")
    if idle:
        lines.append(f"  server when all are connected: {mib(idle['rss_connected'])} RSS "
                     f"({idle['rss_per_client'] / 1024:.1f} KiB per client), "
                     f"{idle['threads']} threads, {idle['fds']} open files")
    lines.append(f"  {result['senders']} senders x {result['messages']} messages, {mode}")
    lines.append(f"  {result['delivered']:,} of {result['expected']:,} deliveries in "
                 f"{result['duration_s']:.3f} s: {result['deliveries_per_s']:,} deliveries/s")
    lat = result["latency_ms"]
    if lat["p50"] is not None:
        lines.append(f"  latency: p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, "
                     f"max {lat['max']:.2f} ms")
    server = result.get("server")
    if server:
        lines.append(f"  server during the run: peak {mib(server['rss_peak'])} RSS, "
                     f"{server['threads']} threads, {server['cpu_s']:.2f} s CPU; "
                     f"load generator {result['loadgen_cpu_s']:.2f} s CPU")
    lines.append(f"  lost {result['lost']}, duplicated {result['duplicated']}, "
                 f"out of order {result['out_of_order']}, misdirected {result['misdirected']}")
    if result["evicted"] or result["slow_readers"]:
        lines.append(f"  slow readers disconnected by the server: {len(result['evicted'])} "
                     f"of {result['slow_readers']}; leave notices seen: "
                     f"{result['leave_notices']}")
    if result["unexpected_lines"]:
        lines.append(f"  {result['unexpected_lines']} unexpected lines, e.g. "
                     + "; ".join(repr(s) for s in result["unexpected_samples"]))
    for problem in problems(result):
        lines.append(f"  PROBLEM: {problem}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m tests.load.loadgen",
        description="Load a chat server with many clients and measure it.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--phase", type=int, choices=sorted(PHASES),
                       help="start this reference phase's server (on a free port)")
    where.add_argument("--connect", metavar="HOST:PORT",
                       help="use a server that is already running")
    parser.add_argument("--protocol", choices=("chat", "raw", "echo"),
                        help="with --connect: chat (phases 3, 4; the default), raw (phase 2) "
                             "or echo (phase 1)")
    parser.add_argument("--pid", type=int, help="with --connect: the server's process id, to "
                                                "report its memory and threads")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=200, help="messages per sender")
    parser.add_argument("--rate", type=float, default=None,
                        help="messages per second per sender (default: flat out)")
    parser.add_argument("--window", type=int, default=None,
                        help="most messages in flight per sender (default: 64 flat out, "
                             "none at a fixed rate; phase 2 is always held to 4096 bytes)")
    parser.add_argument("--size", type=int, default=0,
                        help="pad every message to this many bytes")
    parser.add_argument("--slow-readers", type=int, default=0,
                        help="extra clients that join and then never read")
    parser.add_argument("--connect-batch", type=int, default=100,
                        help="most connections being set up at once")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--idle-timeout", type=float, default=10.0,
                        help="end the run when nothing arrives for this long (a stall)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.window is None and args.rate is None:
        args.window = 64
    if args.connect:
        host, _, port = args.connect.rpartition(":")
        if not host or not port.isdigit():
            parser.error("--connect wants HOST:PORT")
        args.address = (host.strip("[]"), int(port))
        args.protocol = args.protocol or "chat"
    else:
        args.address = None
    return args


def exit_on_sigterm() -> None:
    """Turn SIGTERM (from `timeout`, say) into an ordinary exit, so that the finally
    blocks stop the servers this process started instead of leaving them running."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def main(argv=None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    try:
        result = measure(args.phase, clients=args.clients, senders=args.senders,
                         messages=args.messages, rate=args.rate, window=args.window,
                         size=args.size, slow_readers=args.slow_readers,
                         connect_batch=args.connect_batch, timeout=args.timeout,
                         idle_timeout=args.idle_timeout, address=args.address,
                         protocol=args.protocol, pid=args.pid)
    except (LoadError, harness.CheckFailed) as error:
        print(f"load test failed: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 1 if problems(result) else 0


if __name__ == "__main__":
    sys.exit(main())
