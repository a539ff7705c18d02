"""Capture what each terminal shows in a short session of every phase, for the chapters.

    python -m tests.sessions.capture             # rewrites docs/captured/
    python -m tests.sessions.capture --out DIR   # writes somewhere else (the test does)

For each session below it starts the phase's real server with --port 0, starts the
phase's real clients with their standard input and output piped, and plays the
session's script: it types each line into a client, then waits for every line the
script says should appear before it types the next one. Nothing is timed, so every
run shows the same thing. A line that differs from the script stops the capture.

What each terminal showed goes to docs/captured/SESSION/TERMINAL.txt: the command that
started it, then the lines typed into it (after "> ") and the lines it printed, in
order. With piped input the clients show no prompt, so the typed lines stand in for
what a person would see. The server's real port is shown as 7007, and the clients'
ports as 55012, 55014, ... in the order they first appear.

Standard library only. Linux and macOS: servers are stopped with SIGINT, as Ctrl-C does.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "captured"
WAIT = 10.0  # seconds any one expected event may take (they take milliseconds)
SHOWN_PORT = 7007  # the default port, which is what a reader runs the server on
FIRST_CLIENT_PORT = 55012  # the clients' real ports are shown as 55012, 55014, ...
ADDRESS = re.compile(r"127\.0\.0\.1:(\d+)")
LISTENING = re.compile(r"Listening on (\S+):(\d+)")
STEP = re.compile(r"(?P<who>\w+) (?:(?P<op>[>|])(?: (?P<text>.*))?"
                  r"|(?P<verb>starts|stops|exits (?P<status>\d+)))")

# Python itself, and its output as text: unbuffered (we wait on each line), UTF-8 on
# every system, and no terminal features (TERM=dumb keeps readline from writing
# escape sequences).
ENV = {
    **os.environ,
    "PYTHONUNBUFFERED": "1",
    "PYTHONIOENCODING": "utf-8",
    "PYTHONUTF8": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "TERM": "dumb",
}


@dataclass
class Session:
    """A scripted conversation with one phase's server and clients.

    Script steps, one a line (blank lines and # comments are skipped):

        server starts     start the server; its "Listening on" line is shown
        NAME starts       start a client called NAME (its terminal is NAME.txt)
        NAME > TEXT       type TEXT and Enter into NAME
        NAME | TEXT       wait for NAME's next output line, which must be TEXT
        server stops      press Ctrl-C in the server's terminal (SIGINT)
        NAME exits N      wait for NAME to end with status N, printing nothing more
    """

    name: str  # its folder under docs/captured/
    phase: str  # the phase folder whose programs it runs
    script: str
    files: dict = field(default_factory=dict)  # NAME -> {path: bytes} in its folder at start
    saved: dict = field(default_factory=dict)  # NAME -> {path: bytes} it must write


NOTES = b"Lunch at noon, by the fountain.\n"

SESSIONS = [
    Session("phase1", "phase1_echo", r"""
        server starts
        alice starts
        server | Connection from 127.0.0.1:55012
        alice > hello
        alice | hello
        server | Received from 127.0.0.1:55012: b'hello\n'
        # bob connects while alice is being served: no answer until she leaves.
        bob starts
        bob > is anyone there?
        alice > quit
        alice exits 0
        server | 127.0.0.1:55012 disconnected
        server | Connection from 127.0.0.1:55014
        server | Received from 127.0.0.1:55014: b'is anyone there?\n'
        bob | is anyone there?
        bob > Grüße, 世界!
        bob | Grüße, 世界!
        server | Received from 127.0.0.1:55014: b'Gr\xc3\xbc\xc3\x9fe, \xe4\xb8\x96\xe7\x95\x8c!\n'
        bob > quit
        bob exits 0
        server | 127.0.0.1:55014 disconnected
        server stops
        server | Server stopped
        server exits 0
    """),
    Session("phase2", "phase2_threads", r"""
        server starts
        alice starts
        server | Connection from 127.0.0.1:55012 (1 connected)
        bob starts
        server | Connection from 127.0.0.1:55014 (2 connected)
        carol starts
        server | Connection from 127.0.0.1:55016 (3 connected)
        carol > hi all
        alice | hi all
        bob | hi all
        alice > hi carol
        bob | hi carol
        carol | hi carol
        carol > quit
        carol exits 0
        server | 127.0.0.1:55016 disconnected (2 connected)
        bob > still here?
        alice | still here?
        server stops
        server | Server stopped
        server exits 0
        alice | Disconnected from server
        alice exits 1
        bob | Disconnected from server
        bob exits 1
    """),
    Session("phase3", "phase3_usernames", r"""
        server starts
        alice starts
        alice > alice
        alice | --- Welcome to the chat, alice! Type /help for commands ---
        server | alice joined from 127.0.0.1:55012
        bob starts
        bob > Alice
        bob | ! Username Alice is taken
        bob > bob
        bob | --- Welcome to the chat, bob! Type /help for commands ---
        alice | --- bob has joined the chat ---
        server | bob joined from 127.0.0.1:55014
        alice > hi bob!
        bob | [alice]: hi bob!
        bob > /who
        bob | --- Online (2): alice, bob ---
        bob > /whisper alice lunch?
        alice | [bob -> you]: lunch?
        bob | [you -> alice]: lunch?
        alice > /dance
        alice | ! Unknown command: /dance (type /help)
        bob > /quit
        bob | --- Goodbye, bob! ---
        bob exits 0
        alice | --- bob has left the chat ---
        server | bob left
        server stops
        server | Server stopped
        server exits 0
        alice | Disconnected from server
        alice exits 1
    """),
    Session("phase4", "phase4_select", r"""
        server starts
        alice starts
        alice > alice
        alice | --- Welcome to the chat, alice! Type /help for commands ---
        server | alice joined from 127.0.0.1:55012
        bob starts
        bob > bob
        bob | --- Welcome to the chat, bob! Type /help for commands ---
        alice | --- bob has joined the chat ---
        server | bob joined from 127.0.0.1:55014
        bob > one thread serves us both now
        alice | [bob]: one thread serves us both now
        alice > /who
        alice | --- Online (2): alice, bob ---
        # Ctrl-C: every client gets a goodbye line before its connection closes.
        server stops
        server | Server stopped
        server exits 0
        alice | --- Server shutting down ---
        alice | Disconnected from server
        alice exits 1
        bob | --- Server shutting down ---
        bob | Disconnected from server
        bob exits 1
    """),
    Session("extensions", "phase4_select/extensions", r"""
        server starts
        alice starts
        alice > alice
        alice | --- Welcome to the chat, alice! Type /help for commands ---
        server | alice joined from 127.0.0.1:55012
        alice > anyone here?
        # The answer to /who also tells us the chat line above has been handled.
        alice > /who
        alice | --- Online (1): alice ---
        bob starts
        bob > bob
        bob | --- Welcome to the chat, bob! Type /help for commands ---
        bob | --- Last 1 message ---
        bob | [alice]: anyone here?
        bob | --- End of history ---
        alice | --- bob has joined the chat ---
        server | bob joined from 127.0.0.1:55014
        bob > /status at lunch
        bob | --- Status set: at lunch ---
        alice > /nick ally
        alice | --- You are now known as ally ---
        bob | --- alice is now known as ally ---
        alice > /who
        alice | --- Online (2): ally, bob (at lunch) ---
        alice > /sendfile bob notes.txt
        bob | --- ally is sending you notes.txt (32 bytes) ---
        bob | --- Saved notes.txt from ally as downloads/notes.txt ---
        alice | --- Sent notes.txt (32 bytes) to bob ---
        bob > /quit
        bob | --- Goodbye, bob! ---
        bob exits 0
        alice | --- bob has left the chat ---
        server | bob left
        alice > /quit
        alice | --- Goodbye, ally! ---
        alice exits 0
        server | ally left
        server stops
        server | Server stopped
        server exits 0
    """, files={"alice": {"notes.txt": NOTES}}, saved={"bob": {"downloads/notes.txt": NOTES}}),
]


class ScriptError(Exception):
    """The programs did not do what the script says."""


class Ports:
    """Shows the server's port as 7007 and each client's port as a fixed stand-in."""

    def __init__(self):
        self.server = None
        self.clients = {}  # real port -> shown port

    def __call__(self, line: str) -> str:
        def swap(match):
            port = int(match[1])
            if port == self.server:
                return f"127.0.0.1:{SHOWN_PORT}"
            if port not in self.clients:
                self.clients[port] = FIRST_CLIENT_PORT + 2 * len(self.clients)
            return f"127.0.0.1:{self.clients[port]}"

        return ADDRESS.sub(swap, line)


class Terminal:
    """One program with piped input and output, and what its terminal shows."""

    def __init__(self, name: str, program: str, argv: list, cwd: Path, ports: Ports):
        self.name, self.ports = name, ports
        self.screen = [f"$ python {program}"]
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / program), *argv], cwd=cwd, env=ENV,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.output = queue.Queue()  # lines as printed; None once output ends
        self.errors = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.output.put)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors.append)),
        ]
        for reader in self.readers:
            reader.daemon = True
            reader.start()

    @staticmethod
    def _read(stream, put):
        for raw in stream:
            put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
        put(None)

    def next_line(self, waiting_for: str, raw: bool = False):
        try:
            line = self.output.get(timeout=WAIT)
        except queue.Empty:
            raise ScriptError(f"{self.name} printed nothing for {WAIT:g} s; "
                              f"expected {waiting_for}") from None
        return line if line is None or raw else self.ports(line)

    def type(self, text: str):
        try:
            early = self.output.get_nowait()
        except queue.Empty:
            early = False
        if early is not False:
            raise ScriptError(f"{self.name} printed {early!r} before {text!r} was typed, "
                              "and the script does not expect it there")
        self.screen.append(f"> {text}")
        try:
            self.process.stdin.write((text + "\n").encode("utf-8"))
            self.process.stdin.flush()
        except OSError:
            raise ScriptError(f"{self.name} is not reading: cannot type {text!r}") from None

    def expect(self, text: str):
        line = self.next_line(repr(text))
        if line is None:
            raise ScriptError(f"{self.name} ended its output; expected {text!r}")
        if line != text:
            raise ScriptError(f"{self.name} printed {line!r}; expected {text!r}")
        self.screen.append(line)

    def interrupt(self):
        self.screen.append("^C")
        self.process.send_signal(signal.SIGINT)

    def expect_exit(self, status: int):
        try:
            code = self.process.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            raise ScriptError(f"{self.name} still runs after {WAIT:g} s; "
                              f"expected it to exit with status {status}") from None
        for reader in self.readers:
            reader.join(WAIT)
        line = self.next_line("the end of its output")
        if line is not None:
            raise ScriptError(f"{self.name} printed {line!r} before it exited, "
                              "and the script does not expect it")
        errors = "".join(line + "\n" for line in self.errors if line is not None)
        if errors:
            raise ScriptError(f"{self.name} wrote to standard error:\n{errors}")
        if code != status:
            raise ScriptError(f"{self.name} exited with status {code}; expected {status}")

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            pipe.close()


def play(session: Session) -> dict:
    """Run one session; return {terminal name: what its terminal showed}."""
    ports = Ports()
    terminals = {}
    with tempfile.TemporaryDirectory(prefix=f"capture-{session.name}-") as scratch:
        try:
            for number, step in enumerate(session.script.splitlines(), 1):
                step = step.strip()
                if not step or step.startswith("#"):
                    continue
                try:
                    run_step(session, step, terminals, ports, Path(scratch))
                except ScriptError as error:
                    raise ScriptError(f"session {session.name}, script line {number} "
                                      f"({step!r}): {error}") from None
            running = [name for name, terminal in terminals.items()
                       if terminal.process.poll() is None]
            if running:
                raise ScriptError(f"session {session.name}: the script ends with "
                                  f"{', '.join(running)} still running")
            for name, files in session.saved.items():
                for path, content in files.items():
                    saved = Path(scratch) / name / path
                    if not saved.is_file() or saved.read_bytes() != content:
                        raise ScriptError(f"session {session.name}: {name} did not save "
                                          f"{path} with the content that was sent")
        finally:
            for terminal in terminals.values():
                terminal.stop()
    return {name: "\n".join(terminal.screen) + "\n" for name, terminal in terminals.items()}


def run_step(session, step, terminals, ports, scratch):
    match = STEP.fullmatch(step)
    if match is None:
        raise ScriptError("not a step: see the Session docstring")
    who, op, verb = match["who"], match["op"], match["verb"]
    if verb == "starts":
        if who in terminals:
            raise ScriptError(f"{who} has already started")
        start(session, who, terminals, ports, scratch)
        return
    if who not in terminals:
        raise ScriptError(f"{who} has not started")
    terminal = terminals[who]
    if op == ">":
        terminal.type(match["text"] or "")
    elif op == "|":
        terminal.expect(match["text"] or "")
    elif verb == "stops":
        terminal.interrupt()
    else:
        terminal.expect_exit(int(match["status"]))


def start(session, who, terminals, ports, scratch):
    folder = scratch / who  # each program runs in a folder of its own
    folder.mkdir()
    for path, content in session.files.get(who, {}).items():
        (folder / path).write_bytes(content)
    if who == "server":
        server = Terminal(who, f"{session.phase}/server.py", ["--port", "0"], folder, ports)
        terminals[who] = server
        line = server.next_line("its 'Listening on HOST:PORT' line", raw=True)
        listening = LISTENING.fullmatch(line or "")
        if listening is None:
            raise ScriptError(f"the server printed {line!r}; expected 'Listening on HOST:PORT'")
        ports.server = int(listening[2])
        server.screen.append(ports(line))
        return
    if ports.server is None:
        raise ScriptError("start the server first")
    terminals[who] = Terminal(who, f"{session.phase}/client.py",
                              ["--port", str(ports.server)], folder, ports)


def capture(out: Path) -> list:
    """Play every session and write its terminals under `out`; return the files written."""
    # The sessions are independent: play them side by side, and write only once all worked.
    with concurrent.futures.ThreadPoolExecutor(len(SESSIONS)) as pool:
        screens = dict(zip((session.name for session in SESSIONS), pool.map(play, SESSIONS)))
    written = []
    for name, terminals in screens.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.txt"):
            stale.unlink()
        for terminal, text in terminals.items():
            path = folder / f"{terminal}.txt"
            path.write_text(text, encoding="utf-8", newline="\n")
            written.append(path)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="where to write (default: docs/captured)")
    args = parser.parse_args()
    if os.name == "nt":
        raise SystemExit("capture needs Linux or macOS: it stops servers with SIGINT, as Ctrl-C does")
    # A child inherits an ignored SIGINT (as in a background job) and Python then never
    # raises KeyboardInterrupt in it; a handled one is reset to the default in the child.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        written = capture(args.out)
    except ScriptError as error:
        raise SystemExit(f"capture failed: {error}") from None
    for path in written:
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        print(f"wrote {shown}")


if __name__ == "__main__":
    main()
