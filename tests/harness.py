"""Black-box tools for checking a chat server and client (standard library only).

Everything here talks to the programs under test the way a user would: servers and
clients run as separate processes, and the checks reach them over TCP and through
standard input and output. Nothing imports the code under test.

- ``ServerProcess`` starts a server on ``--port 0`` and reads the real port from its
  ``Listening on HOST:PORT`` line.
- ``Conn`` is a line-oriented TCP connection with deadlines (``expect``, ``recv_line``,
  ``expect_closed``).
- ``ClientProcess`` runs a client program with piped standard input and output.
- ``FakeServer`` and ``RefusingPort`` stand in for a server when checking a client.
- ``CheckFailed`` is the one failure type; its ``str()`` is the message a student sees.
- ``Transcript`` records what a check did, so that every failure can say so.

Waiting is always for something (a line, a closed connection, a process exit) with a
deadline; nothing sleeps to let a program "catch up".
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import queue
from pathlib import Path

WAIT = 2.0  # seconds any single expected event may take
START_TIMEOUT = 5.0  # seconds a server may take to print its Listening line
POLL = 0.005  # seconds between two looks at a file or /proc
LISTENING = re.compile(r"^Listening on (?P<host>.+):(?P<port>\d+)\s*$")
POSIX = os.name == "posix"
DOCS_URL = "docs/"  # base for hints; the grader plugin may set a site URL instead


def set_docs_url(base: str) -> None:
    """Hints are relative doc paths such as ``protocol.md#lines``; this sets their base."""
    global DOCS_URL
    DOCS_URL = base


def hint_url(hint: str) -> str:
    if not hint:
        return ""
    if re.match(r"https?://", hint):
        return hint
    if re.match(r"https?://", DOCS_URL):
        # The built site serves protocol.md as protocol.html (mkdocs.yml: use_directory_urls).
        page, _, anchor = hint.partition("#")
        page = re.sub(r"\.md$", ".html", page)
        return DOCS_URL.rstrip("/") + "/" + page + ("#" + anchor if anchor else "")
    return DOCS_URL + hint


def show(text, limit: int = 160) -> str:
    """A line as a student should see it in a message: quoted, escapes visible, long
    lines shortened in the middle."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("utf-8", "replace")
    if len(text) > limit:
        head, tail = text[: limit // 2], text[-limit // 4 :]
        hidden = len(text) - len(head) - len(tail)
        return f"{head!r} … ({hidden} more characters) … {tail!r}"
    return repr(text)


# --------------------------------------------------------------------------- failures


class CheckFailed(Exception):
    """A check's verdict on the program under test (not a bug in the grader).

    ``str()`` is the whole student-facing message: what the check did, what it
    expected, what arrived instead, what the program wrote to stderr, where to read.
    """

    MAX_STEPS = 40

    def __init__(self, expected: str, got: str, *, did=(), logs=(), hint: str = "",
                 title: str = ""):
        self.expected = expected
        self.got = got
        self.did = list(did)
        self.logs = list(logs)  # [(label, [lines])]
        self.hint = hint
        self.title = title
        super().__init__(expected)

    def __str__(self) -> str:
        out = []
        if self.title:
            out.append(f"Check: {self.title}")
        if self.did:
            out.append("What the check did:")
            steps = list(enumerate(self.did, 1))
            if len(steps) > self.MAX_STEPS:
                keep = self.MAX_STEPS - 5
                hidden = len(steps) - 5 - keep
                steps = steps[:5] + [("", f"… ({hidden} more steps) …")] + steps[-keep:]
            width = len(str(len(self.did))) + 1
            for n, step in steps:
                out.append(f"  {str(n) + '.' if n else '':>{width}} {step}")
        out.append(f"Expected: {self.expected}")
        got = self.got.splitlines() or [""]
        out.append(f"Got:      {got[0]}")
        out.extend(f"          {line}" for line in got[1:])
        for who, lines in self.logs:
            if lines:
                out.append(f"Last lines {who} wrote to stderr:")
                out.extend(f"  | {line}" for line in lines)
            else:
                out.append(f"{who[0].upper()}{who[1:]} wrote nothing to stderr.")
        if self.hint:
            out.append(f"Read: {hint_url(self.hint)}")
        return "\n".join(out)


class Transcript:
    """What one check did so far, and which programs it started (for their stderr)."""

    def __init__(self, hint: str = "", title: str = ""):
        self.steps: list[str] = []
        self.programs: list = []
        self.hint = hint
        self.title = title
        self._quiet: list = []  # summaries of the bulk work under way
        self._muted = 0
        self._recent: collections.deque = collections.deque(maxlen=5)

    def step(self, text: str) -> None:
        if self._muted:
            return
        if self._quiet:
            self._recent.append(text)
        else:
            self.steps.append(text)

    @contextlib.contextmanager
    def muted(self):
        """Steps the check describes itself (a session's own lines): not recorded."""
        self._muted += 1
        try:
            yield
        finally:
            self._muted -= 1

    @contextlib.contextmanager
    def quiet(self, summary: str | None = None):
        """Bulk work (hundreds of connections) is logged as one summary step; if it
        fails half-way, the failure shows the summary and the last few steps."""
        self._quiet.append(summary)
        try:
            yield
        finally:
            self._quiet.pop()
        if summary:
            self.step(summary)

    def logs(self):
        return [(p.log_label(), p.stderr_tail(20)) for p in self.programs]

    def failure(self, expected: str, got: str) -> CheckFailed:
        did = list(self.steps)
        if self._quiet:
            summary = next((s for s in self._quiet if s), "repeated steps")
            did.append(f"(under way) {summary}; the last steps were:")
            did.extend(f"   {step}" for step in self._recent)
        return CheckFailed(expected, got, did=did, logs=self.logs(), hint=self.hint,
                           title=self.title)

    def fail(self, expected: str, got: str):
        raise self.failure(expected, got)


_NO_TRANSCRIPT = Transcript()


# --------------------------------------------------------------------------- processes

_LIVE: set = set()
_LIVE_LOCK = threading.Lock()


def kill_all() -> None:
    """Session-end and atexit sweep: nothing the grader started may survive it."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.kill()


atexit.register(kill_all)


def _die_cleanly(signum, frame):
    kill_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # then die of the same signal, as if untouched


def kill_all_on_signals() -> None:
    """Make SIGTERM and SIGHUP (e.g. ``timeout``, a closed terminal) sweep away every
    program started here before this process dies: they run in sessions of their own, so
    nothing else would reach them. Only where those signals still have their default
    action, and only from the main thread. (SIGKILL cannot be caught: whoever sends it
    should kill the process groups of this process's children too.)"""
    if not POSIX or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, _die_cleanly)


def _session_kwargs() -> dict:
    if POSIX:
        return {"start_new_session": True}
    return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}


def _child_env(extra: dict | None) -> dict:
    env = dict(os.environ)
    env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8", PYTHONDONTWRITEBYTECODE="1")
    if extra:
        env.update(extra)
    return env


def fill(template, host: str, port) -> list[str]:
    """Substitute {host} and {port} in every word of an argv template."""
    return [str(w).replace("{host}", host).replace("{port}", str(port)) for w in template]


def describe_argv(argv, cwd=None) -> str:
    words = []
    for w in argv:
        if w == sys.executable:
            w = "python"
        elif os.path.isabs(w) and cwd and os.path.exists(w):
            with contextlib.suppress(ValueError):
                w = os.path.relpath(w, cwd)
        words.append(w if w and not re.search(r"\s", w) else repr(w))
    return " ".join(words)


def _terminate_group(proc: subprocess.Popen) -> None:
    """Ask politely: SIGTERM to the whole process group (CTRL_BREAK on Windows)."""
    if POSIX:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
    else:
        with contextlib.suppress(OSError):
            proc.send_signal(signal.CTRL_BREAK_EVENT)


def _kill_group(proc: subprocess.Popen) -> None:
    """Insist: SIGKILL to the whole process group (taskkill /T on Windows), children
    included even if the leader has already exited."""
    if POSIX:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    else:
        subprocess.run(["taskkill", "/T", "/F", "/PID", str(proc.pid)],
                       capture_output=True, check=False)
        with contextlib.suppress(OSError):
            proc.kill()


class _Program:
    """What ServerProcess and ClientProcess share: a process group we always kill."""

    proc: subprocess.Popen
    label: str

    def _track(self):
        with _LIVE_LOCK:
            _LIVE.add(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self):
        return self.proc.poll()

    def log_label(self) -> str:
        return self.label

    def kill(self, grace: float = 1.0) -> None:
        """SIGTERM to the whole group, a short wait, then SIGKILL to the whole group
        (children included, even if the leader already exited)."""
        if self.proc.poll() is None:
            _terminate_group(self.proc)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        _kill_group(self.proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def send_signal(self, sig, transcript_text: str | None = None) -> None:
        """Signal the program itself (not its group), as a user pressing Ctrl-C would."""
        self.transcript.step(transcript_text or f"sent {signal.Signals(sig).name} to {self.label}")
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = WAIT) -> int:
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.transcript.fail(f"{self.label} exits within {timeout:g} s",
                                 f"{self.label} was still running after {timeout:g} s")
        self.transcript.step(f"{self.label} exited with status {status}")
        return status

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _tail_lines(path: Path, n: int) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65536))
            data = f.read()
    except OSError:
        return []
    lines = data.decode("utf-8", "replace").splitlines()
    return [line.rstrip("\r") for line in lines[-n:]]


class ServerProcess(_Program):
    """A server started with ``--port 0``; ``.port`` is the port it printed.

    stdout and stderr go to temporary files (a chatty server never blocks on a full
    pipe). The server runs in its own session, and ``stop()`` kills the whole group.
    """

    def __init__(self, argv_template, *, host: str = "127.0.0.1", port: int = 0,
                 cwd=None, env: dict | None = None, transcript: Transcript | None = None,
                 label: str = "the server", start_timeout: float = START_TIMEOUT,
                 wait: bool = True):
        """Start the server and, unless ``wait`` is False, wait for its Listening line
        (then call ``ready()``: several servers can start side by side)."""
        self.transcript = transcript or _NO_TRANSCRIPT
        self.start_timeout = start_timeout
        self.label = label
        self.requested_host = host
        self.argv = fill(argv_template, host, port)
        self._dir = Path(tempfile.mkdtemp(prefix="chat-check-"))
        self.stdout_path = self._dir / "stdout.txt"
        self.stderr_path = self._dir / "stderr.txt"
        self._final: dict | None = None
        shown = describe_argv(self.argv, cwd)
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            try:
                self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=err, cwd=cwd, env=_child_env(env),
                                             **_session_kwargs())
            except OSError as e:
                shutil.rmtree(self._dir, ignore_errors=True)
                self.transcript.step(f"tried to start {label}: {shown}")
                self.transcript.fail("the server program starts", f"it could not be started: {e}")
        self._track()
        self.transcript.programs.append(self)
        self._shown = shown
        self._started = time.monotonic()
        self.host = self.printed_host = self.port = None
        if wait:
            self.ready()

    def ready(self) -> "ServerProcess":
        """Wait for the ``Listening on HOST:PORT`` line; sets ``.host`` and ``.port``."""
        if self.port is not None:
            return self
        try:
            line = self._wait_listening(self._started + self.start_timeout - time.monotonic())
        except BaseException:
            self.transcript.step(f"started {self.label}: {self._shown}")
            raise
        m = LISTENING.match(line)
        # Connect where we asked it to listen; remember what it printed.
        self.printed_host, self.port = m["host"], int(m["port"])
        self.host = self.requested_host
        self.transcript.step(f"started {self.label}: {self._shown} (it printed {show(line)})")
        if self.port == 0:
            self.transcript.fail("the real port in 'Listening on HOST:PORT' (never 0)",
                                 f"{show(line)}: print the port the socket actually got, "
                                 "from sock.getsockname()")
        return self

    def _wait_listening(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = b""
        with open(self.stdout_path, "rb") as out:
            while True:
                seen += out.read()
                for raw in seen.split(b"\n")[:-1] if b"\n" in seen else []:
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    if LISTENING.match(line):
                        return line
                status = self.proc.poll()
                if status is not None or time.monotonic() > deadline:
                    seen += out.read()
                    break
                time.sleep(POLL)
        expected = "a line 'Listening on HOST:PORT' on standard output (flushed)"
        if status is not None:
            got = f"the server exited with status {status} before printing it"
        else:
            got = f"no such line within {self.start_timeout:g} s"
        printed = seen.decode("utf-8", "replace").splitlines()[-20:]
        if printed:
            got += "; its standard output was:\n" + "\n".join(f"  | {l}" for l in printed)
        if any("Listening on" in l for l in _tail_lines(self.stderr_path, 200)):
            got += ("\n(it printed 'Listening on' to standard error: print it to standard "
                    "output instead)")
        elif status is None and not printed:
            got += "\n(did it flush? print(..., flush=True))"
        self.transcript.fail(expected, got)

    def stderr_tail(self, n: int = 20) -> list[str]:
        if self._final is not None:
            return self._final["err"][-n:]
        return _tail_lines(self.stderr_path, n)

    def all_stderr(self) -> list[str]:
        return _tail_lines(self.stderr_path, 10**6) if self._final is None else \
            self._final["err"]

    def stdout_tail(self, n: int = 20) -> list[str]:
        if self._final is not None:
            return self._final["out"][-n:]
        return _tail_lines(self.stdout_path, n)

    def terminate(self) -> None:
        """SIGTERM (CTRL_BREAK on Windows) to the server process itself."""
        self.send_signal(signal.SIGTERM if POSIX else signal.CTRL_BREAK_EVENT,
                         f"sent SIGTERM to {self.label}")

    def stop(self) -> None:
        if self._final is not None:
            return
        self.kill()
        self._final = {"out": _tail_lines(self.stdout_path, 50),
                       "err": _tail_lines(self.stderr_path, 50)}
        shutil.rmtree(self._dir, ignore_errors=True)


class ClientProcess(_Program):
    """A client program with piped stdin; its stdout and stderr are read into lines by
    background threads (clients print little)."""

    def __init__(self, argv_template, *, host: str = "127.0.0.1", port: int,
                 cwd=None, env: dict | None = None, transcript: Transcript | None = None,
                 label: str = "the client"):
        self.transcript = transcript or _NO_TRANSCRIPT
        self.label = label
        self.argv = fill(argv_template, host, port)
        self.lines: list[str] = []  # everything printed so far
        self.err_lines: list[str] = []
        self._queue: queue.Queue = queue.Queue()
        self._stopped = False
        shown = describe_argv(self.argv, cwd)
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         cwd=cwd, env=_child_env(env), **_session_kwargs())
        except OSError as e:
            self.transcript.step(f"tried to start {label}: {shown}")
            self.transcript.fail("the client program starts", f"it could not be started: {e}")
        self._track()
        self.transcript.programs.append(self)
        self.transcript.step(f"started {label}: {shown}")
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, pipe, is_stdout: bool) -> None:
        with contextlib.suppress(Exception):
            for raw in iter(pipe.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r")
                if is_stdout:
                    self.lines.append(line)
                    self._queue.put(line)
                else:
                    self.err_lines.append(line)
        if is_stdout:
            self._queue.put(None)

    def stderr_tail(self, n: int = 20) -> list[str]:
        return self.err_lines[-n:]

    def all_stderr(self) -> list[str]:
        """Everything it wrote to stderr; complete once it has exited."""
        if self.proc.poll() is not None:
            self._threads[1].join(WAIT)
        return list(self.err_lines)

    def type(self, line: str) -> None:
        self.transcript.step(f"typed {show(line)} into {self.label}")
        try:
            self.proc.stdin.write(line.encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except OSError:
            self.transcript.fail(f"{self.label} reads what is typed",
                                 f"{self.label} had already exited "
                                 f"(status {self.proc.poll()})")

    def close_stdin(self) -> None:
        self.transcript.step(f"closed {self.label}'s standard input (end of input, Ctrl-D)")
        with contextlib.suppress(OSError):
            self.proc.stdin.close()

    def expect_output(self, expected, timeout: float = WAIT) -> str:
        """Wait until the client prints a line equal to ``expected`` (a str, or a compiled
        regex that must match the whole line); earlier lines are skipped."""
        if isinstance(expected, re.Pattern):
            matches, want = expected.fullmatch, f"a line matching {expected.pattern!r}"
        else:
            matches, want = (lambda s: s == expected), show(expected)
        deadline = time.monotonic() + timeout
        skipped: list[str] = []
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line, ended = None, False
            else:
                ended = line is None
            if line is not None and matches(line):
                self.transcript.step(f"{self.label} printed {show(line)}")
                return line
            if line is not None:
                skipped.append(line)
                continue
            if ended:
                self._queue.put(None)  # later waits see the end too
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(WAIT)
                got = (f"{self.label}'s output ended (it exited with status "
                       f"{self.proc.poll()})")
            else:
                got = f"no such line within {timeout:g} s"
            if skipped:
                got += "; it printed:\n" + "\n".join(f"  {show(s)}" for s in skipped[-20:])
            else:
                got += "; it printed nothing"
            self.transcript.fail(f"{self.label} prints {want}", got)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.kill(grace=0.5)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                pipe.close()
        for t in self._threads:
            t.join(1.0)


# --------------------------------------------------------------------------- sockets


class Conn:
    """One TCP connection, read line by line with deadlines. Every action is recorded
    in the transcript as a step ("alice sent 'hi'")."""

    def __init__(self, host: str | None = None, port: int | None = None, *,
                 name: str = "the connection", transcript: Transcript | None = None,
                 timeout: float = WAIT, rcvbuf: int | None = None, sock=None,
                 peer_label: str = "the server"):
        self.name = name
        self.transcript = transcript or _NO_TRANSCRIPT
        self.peer_label = peer_label
        self._buf = bytearray()
        self.closed_by_peer = False
        if sock is None:
            sock = socket.socket(socket.AF_INET6 if host and ":" in host else socket.AF_INET)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(timeout)
            try:
                sock.connect((host, port))
            except OSError as e:
                sock.close()
                self.transcript.fail(f"{name} connects to {host}:{port}",
                                     f"the connection failed: {e}")
            self.transcript.step(f"{name} connected")
        self.sock = sock
        try:
            self.local, self.peer = sock.getsockname()[:2], sock.getpeername()[:2]
        except OSError:  # already reset by the other end: reads will say so
            self.local = self.peer = ("0.0.0.0", 0)
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # sending
    def send_line(self, text: str) -> None:
        self.transcript.step(f"{self.name} sent {show(text)}")
        self._send(text.encode("utf-8") + b"\n")

    def send_raw(self, data: bytes, description: str | None = None,
                 timeout: float = WAIT) -> None:
        self.transcript.step(description or f"{self.name} sent the bytes {show_bytes(data)}")
        self._send(data, timeout)

    def _send(self, data: bytes, timeout: float = WAIT) -> None:
        self.sock.settimeout(timeout)  # for the whole sendall()
        try:
            self.sock.sendall(data)
        except socket.timeout:
            self.transcript.fail(f"{self.peer_label} reads what {self.name} sends",
                                 f"it had not read it all after {timeout:g} s")
        except OSError as e:
            self.transcript.fail(f"{self.name} can send to {self.peer_label}",
                                 f"sending failed: {e} ({self.peer_label} closed the "
                                 "connection?)")

    # receiving
    def recv_raw_line(self, timeout: float = WAIT, expected: str | None = None) -> bytes:
        """The next line as bytes (without its "\\n")."""
        deadline = time.monotonic() + timeout
        expected = expected or f"a line for {self.name}"
        while True:
            i = self._buf.find(b"\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[: i + 1]
                return line
            remaining = deadline - time.monotonic()
            data = None
            if remaining > 0 and not self.closed_by_peer:
                data = self._recv(remaining)
            if data:
                self._buf += data
                continue
            if data is None and not self.closed_by_peer:  # deadline passed
                got = f"nothing within {timeout:g} s"
            else:
                got = f"{self.peer_label} closed the connection"
            if self._buf:
                got += f" (after a partial line without \\n: {show(bytes(self._buf))})"
            self.transcript.fail(expected, got)

    def _recv(self, remaining: float):
        """bytes; b"" when the peer closed (or reset); None on timeout."""
        self.sock.settimeout(max(remaining, 0.001))
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, BlockingIOError):
            return None
        except OSError:  # reset counts as closed
            data = b""
        if not data:
            self.closed_by_peer = True
        return data

    def recv_line(self, timeout: float = WAIT, expected: str | None = None) -> str:
        line = self.recv_raw_line(timeout, expected).decode("utf-8", "replace")
        self.transcript.step(f"{self.name} received {show(line)}")
        return line

    def expect(self, line, timeout: float = WAIT) -> str:
        """The next line must be exactly ``line``, byte for byte (or, for a compiled
        regex, the whole line must match it)."""
        if isinstance(line, re.Pattern):
            want = f"{self.name} receives a line like {line.pattern!r}"
            got = self.recv_raw_line(timeout, want).decode("utf-8", "replace")
            if not line.fullmatch(got):
                self.transcript.fail(want, show(got))
            self.transcript.step(f"{self.name} received {show(got)}")
            return got
        want = f"{self.name} receives {show(line)}"
        raw = self.recv_raw_line(timeout, want)
        got = raw.decode("utf-8", "replace")
        if raw != line.encode("utf-8"):
            detail = show(got)
            if got == line:  # same text once decoded: the bytes differ
                detail = (f"{show_bytes(raw)}, which is not the UTF-8 encoding of the expected "
                          "line")
            elif got.rstrip("\r") == line:
                detail += " (lines end in \\n alone, not \\r\\n)"
            self.transcript.fail(want, detail)
        self.transcript.step(f"{self.name} received {show(got)}")
        return got

    def next_event(self, timeout: float = WAIT):
        """("line", text), ("closed", None) or ("timeout", None): for a stand-in server
        that must react to whatever a client does next."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf and not self.closed_by_peer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout", None
            data = self._recv(remaining)
            if data:
                self._buf += data
        if b"\n" in self._buf:
            return "line", self.recv_line(0)
        self.transcript.step(f"{self.peer_label} closed the connection")
        return "closed", None

    def expect_closed(self, timeout: float = WAIT) -> None:
        """The peer closes the connection (a reset counts) and sends nothing more."""
        want = f"{self.peer_label} closes {self.name}'s connection"
        deadline = time.monotonic() + timeout
        while not self._buf and not self.closed_by_peer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.transcript.fail(want, f"the connection was still open after {timeout:g} s")
            data = self._recv(remaining)
            if data:
                self._buf += data
        if self._buf:
            line, _, _ = bytes(self._buf).partition(b"\n")
            self.transcript.fail(want, f"{self.name} received {show(line)}")
        self.transcript.step(f"{self.peer_label} closed {self.name}'s connection")

    def drain_until_closed(self, timeout: float = WAIT) -> int:
        """Read and discard everything until the peer closes; the number of bytes read.
        Each recv() may wait up to ``timeout``."""
        total = len(self._buf)
        self._buf.clear()
        while not self.closed_by_peer:
            data = self._recv(timeout)
            if data is None:
                self.transcript.fail(f"{self.peer_label} closes {self.name}'s connection",
                                     f"it was still open, with nothing more arriving for "
                                     f"{timeout:g} s (after {total} bytes)")
            total += len(data)
        self.transcript.step(f"{self.peer_label} closed {self.name}'s connection "
                             f"({total} bytes were still on their way)")
        return total

    def pending(self) -> bytes:
        """Whatever has already arrived, without waiting (kept for later reads)."""
        self.sock.setblocking(False)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.closed_by_peer = True
                    break
                self._buf += data
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.closed_by_peer = True
        finally:
            self.sock.setblocking(True)
        return bytes(self._buf)

    # ending
    def close(self) -> None:
        if self.sock.fileno() != -1:
            self.transcript.step(f"{self.name} closed its connection")
        self._close()

    def reset(self) -> None:
        """Abort the connection: SO_LINGER 0, then close, which sends a TCP RST."""
        self.transcript.step(f"{self.name} reset its connection (TCP RST)")
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._close()

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    stop = _close  # cleanup after a check: close without recording a step

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._close()


def show_bytes(data: bytes, limit: int = 80) -> str:
    if len(data) > limit:
        return f"{bytes(data[:limit // 2])!r} … ({len(data) - limit // 2} more bytes)"
    return repr(bytes(data))


class FakeServer:
    """A listening socket in the check itself, to drive a client program."""

    def __init__(self, transcript: Transcript | None = None, host: str = "127.0.0.1"):
        self.transcript = transcript or _NO_TRANSCRIPT
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(8)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.transcript.step(f"the check listened on {host}:{self.port} as a stand-in server")

    def accept(self, name: str = "the stand-in server", timeout: float = WAIT) -> Conn:
        self.sock.settimeout(timeout)
        try:
            sock, _ = self.sock.accept()
        except socket.timeout:
            self.transcript.fail("the client connects to the server",
                                 f"nothing connected within {timeout:g} s")
        self.transcript.step("the client connected to the stand-in server")
        return Conn(sock=sock, name=name, transcript=self.transcript, peer_label="the client")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    stop = close


class RefusingPort:
    """A port where connections are refused: bound, never listening, kept open so no
    other program can take it meanwhile."""

    def __init__(self, host: str = "127.0.0.1"):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.host, self.port = host, self.sock.getsockname()[1]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    stop = close


# --------------------------------------------------------------------------- /proc helpers
#
# Linux shows every TCP socket in /proc/net/tcp, with the bytes its owner has not read
# yet. That lets a check wait until a server has *read* something (say, the first half
# of a line) before sending more, so "two pieces" really arrive as two pieces: a wait
# for an event, not a guess. Elsewhere the helpers report False and checks carry on.

PROC_NET_TCP = Path("/proc/net/tcp")


def _hex_addr(host: str, port: int) -> str:
    return "%08X:%04X" % (struct.unpack("=I", socket.inet_aton(host))[0], port)


def _tcp_table():
    try:
        text = PROC_NET_TCP.read_text()
    except OSError:
        return None
    rows = []
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) > 4:
            tx, _, rx = f[4].partition(":")
            rows.append((f[1], f[2], f[3], int(tx, 16), int(rx, 16)))
    return rows


def _wait_proc(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        rows = _tcp_table()
        if rows is None:
            return False
        if predicate(rows):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)


def wait_until_read(conn, timeout: float = WAIT) -> bool:
    """Wait until the program at the other end has read everything ``conn`` (anything
    with a connected ``.sock``) sent: its socket's receive queue is empty. True if
    seen, False if not knowable."""
    try:
        theirs = _hex_addr(*conn.sock.getpeername()[:2])
        ours = _hex_addr(*conn.sock.getsockname()[:2])
    except (OSError, ValueError):
        return False

    def read_all(rows):
        return any(l == theirs and r == ours and rx == 0 for l, r, _, _, rx in rows)

    found = _wait_proc(read_all, timeout)
    if not found and not PROC_NET_TCP.exists():
        time.sleep(0.05)  # no /proc: give the pieces a moment to arrive separately
    return found


def wait_until_closed_by_peer(conn: Conn, timeout: float = WAIT) -> bool:
    """After ``conn`` closed, wait until the program at the other end has closed its
    side too (its socket leaves CLOSE_WAIT), so whatever it does on a disconnect is done."""
    try:
        theirs, ours = _hex_addr(*conn.peer), _hex_addr(*conn.local)
    except (OSError, ValueError):
        return False

    def closed(rows):
        return not any(l == theirs and r == ours and st == "08" for l, r, st, _, _ in rows)

    return _wait_proc(closed, timeout)


def wait_until_accepted(host: str, port: int, timeout: float = WAIT) -> bool:
    """Wait until a listening server has accept()ed every pending connection (its
    accept queue, shown as rx_queue of the LISTEN socket, is empty)."""
    try:
        addrs = {_hex_addr(host, port), _hex_addr("0.0.0.0", port)}
    except OSError:
        return False

    def accepted(rows):
        return any(l in addrs and st == "0A" and rx == 0 for l, _, st, _, rx in rows)

    return _wait_proc(accepted, timeout)


def group_pids(pgid: int) -> list:
    """Linux: every process in a process group (a server and any children it started)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def proc_status(pid: int, key: str) -> int | None:
    """Linux: a number from /proc/PID/status, e.g. VmHWM (peak memory, kB) or Threads."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files (children inherit it)."""
    try:
        import resource
    except ImportError:
        return wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return wanted
    new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
