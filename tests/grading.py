"""How a check is declared, what it runs against, and what it can do.

A check is a pytest test declared with ``@check``::

    @check("relays a message to every other client, not the sender",
           points=2, phases=(2,), hint="protocol.md#phase-2-broadcast")
    def test_relays_to_others(chat):
        alice, bob, carol = chat.relay_group("alice", "bob", "carol")
        ...

The plugin in conftest.py runs it once per selected *target* (a reference phase, a
student's submission, or a command) whose phase is in ``phases``, and hands it a
``Chat``: the check's toolbox, which records every step so that a failure can tell the
student exactly what happened.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import harness
from tests.harness import (ClientProcess, Conn, FakeServer, RefusingPort, ServerProcess,
                           Transcript)

REPO = Path(__file__).resolve().parent.parent
PHASES = (1, 2, 3, 4)
PHASE_DIR = re.compile(r"phase([1-4])(?:_.*)?$")
SERVER, CLIENT = "server", "client"
CORE, EXTENSIONS = "core", "extensions"


# --------------------------------------------------------------------------- declaring


@dataclass(frozen=True)
class CheckInfo:
    name: str
    points: int
    phases: tuple
    hint: str
    program: str  # SERVER or CLIENT: the program under test
    timeout: float
    group: str  # CORE, or EXTENSIONS: run only on phase 4's extensions snapshot (--extensions)


def check(name: str, *, points: int, phases, hint: str, program: str = SERVER,
          timeout: float = 20, group: str = CORE):
    """Declare a graded check. ``name`` is the sentence a student reads; ``hint`` a doc
    path (``protocol.md#lines``); ``program`` the program it tests; ``group`` CORE or
    EXTENSIONS (run only on an extensions target: phase4_select/extensions, or a
    submission graded with --extensions)."""
    if program not in (SERVER, CLIENT):
        raise ValueError(f"program must be {SERVER!r} or {CLIENT!r}")
    if group not in (CORE, EXTENSIONS):
        raise ValueError(f"group must be {CORE!r} or {EXTENSIONS!r}")
    phases = tuple(phases)
    if not set(phases) <= set(PHASES):
        raise ValueError(f"phases must be among {PHASES}")

    def decorate(fn):
        fn.check_info = CheckInfo(name, points, phases, hint, program, timeout, group)
        fn = pytest.mark.check(fn)
        kwargs = {"method": "signal"} if harness.POSIX else {}
        return pytest.mark.timeout(timeout, **kwargs)(fn)

    return decorate


def info_of(item) -> CheckInfo | None:
    return getattr(getattr(item, "function", None), "check_info", None)


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    """One thing to grade: a phase's server and/or client."""

    phase: int
    label: str  # shown in the summary: "reference phase3_usernames", "submission DIR"
    server: list | None = None  # argv template with {host} and {port}
    client: list | None = None
    cwd: str | None = None
    yours: bool = False  # a submission: messages say "your server"
    problems: dict = field(default_factory=dict)  # program -> why it cannot run
    extensions: bool = False  # phase 4's extensions snapshot: core and EXTENSIONS checks

    @property
    def id(self) -> str:
        return f"phase{self.phase}" + ("-extensions" if self.extensions else "")

    def argv(self, program: str):
        return self.server if program == SERVER else self.client

    def who(self, program: str) -> str:
        return f"{'your' if self.yours else 'the'} {program}"


def python_argv(script: Path) -> list:
    return [sys.executable, str(script), "--host", "{host}", "--port", "{port}"]


def _python_files(folder: Path) -> list:
    return sorted(p.name for p in folder.glob("*.py"))


def _missing(folder: Path, program: str) -> str:
    found = _python_files(folder)
    text = f"expected {program}.py in {folder}; found {', '.join(found) or 'no .py files'}"
    candidates = [f for f in found if program in f.lower()]
    if len(candidates) == 1:
        text += f": rename {candidates[0]} to {program}.py"
    elif not found:
        text += f": put your {program} in {program}.py"
    return text


def folder_target(phase: int, folder: Path, *, yours: bool, extensions: bool = False) -> Target:
    kind = "submission" if yours else "reference"
    shown = folder if yours else folder.relative_to(REPO).as_posix()
    target = Target(phase, f"{kind} {shown}", cwd=str(folder), yours=yours,
                    extensions=extensions)
    for program in (SERVER, CLIENT):
        script = folder / f"{program}.py"
        if script.is_file():
            setattr(target, program, python_argv(script))
        else:
            target.problems[program] = _missing(folder, program)
    return target


def phase_folders(root: Path) -> dict:
    found = {}
    for sub in sorted(root.iterdir()):
        m = PHASE_DIR.match(sub.name)
        if sub.is_dir() and m:
            found.setdefault(int(m.group(1)), sub)
    return found


class UsageProblem(Exception):
    """Options that make no sense together; the plugin turns it into pytest.UsageError."""


def with_extensions(phase: int, folder: Path, *, yours: bool) -> list:
    """Phase 4's core folder, then its extensions/ snapshot (core and extension checks)."""
    targets = [folder_target(phase, folder, yours=yours)]
    if phase == 4:
        snapshot = folder / "extensions"
        if snapshot.is_dir():
            targets.append(folder_target(4, snapshot, yours=yours, extensions=True))
        else:
            target = Target(4, f"submission {snapshot}", yours=yours, extensions=True)
            target.problems = {p: f"expected the extensions in {snapshot}/ "
                                  "(server.py and client.py)" for p in (SERVER, CLIENT)}
            targets.append(target)
    return targets


def select_targets(phase: int | None, submission: str | None, server_cmd: str | None,
                   client_cmd: str | None, extensions: bool = False):
    """Targets, and notes for the student about what will not be checked.

    With ``extensions``, phase 4 is graded twice: its core folder on the core checks,
    and its extensions snapshot (the folder ``extensions/`` inside it, or the folder or
    command given alone) on the core checks and the extension checks."""
    notes = []
    if phase is not None and phase not in PHASES:
        raise UsageProblem(f"--phase must be one of 1, 2, 3, 4 (got {phase})")
    if extensions and phase not in (None, 4):
        raise UsageProblem("--extensions goes with phase 4: the extensions are a phase 4 "
                           "snapshot")
    if server_cmd or client_cmd:
        if submission:
            raise UsageProblem("give either --submission or --server-cmd/--client-cmd, "
                               "not both")
        if phase is None:
            raise UsageProblem("--server-cmd and --client-cmd need --phase N: "
                               "which phase does your program implement?")
        target = Target(phase, "your command", yours=True, cwd=None, extensions=extensions)
        for program, cmd in ((SERVER, server_cmd), (CLIENT, client_cmd)):
            if not cmd:
                notes.append(f"{program.capitalize()} checks were not run: no "
                             f"--{program}-cmd given.")
                continue
            if "{port}" not in cmd:
                raise UsageProblem(f"--{program}-cmd must contain {{port}}, where the "
                                   "grader puts the port number, e.g. "
                                   f"--{program}-cmd \"./{program} --port {{port}}\"")
            setattr(target, program, shlex.split(cmd))
        return [target], notes
    if submission:
        root = Path(submission).expanduser().resolve()
        if not root.is_dir():
            raise UsageProblem(f"--submission {submission}: no such folder")
        if (root / "server.py").exists() or (root / "client.py").exists():
            if phase is None:
                raise UsageProblem(f"{submission} holds one phase's server.py/client.py: "
                                   "say which phase it is with --phase N (1-4)")
            if extensions and not (root / "extensions").is_dir():  # the snapshot alone
                return [folder_target(phase, root, yours=True, extensions=True)], notes
            if extensions:
                return with_extensions(phase, root, yours=True), notes
            return [folder_target(phase, root, yours=True)], notes
        folders = phase_folders(root)
        if folders:
            wanted = [phase] if phase else list(folders)
            if phase is None or phase in folders:
                return [t for n in wanted for t in (
                    with_extensions(n, folders[n], yours=True) if extensions
                    else [folder_target(n, folders[n], yours=True)])], notes
            target = Target(phase, f"submission {root}", yours=True)
            for program in (SERVER, CLIENT):
                target.problems[program] = (f"expected a folder phase{phase}_... in {root}; "
                                            f"found {', '.join(f.name for f in folders.values())}")
            return [target], notes
        if phase is None:
            raise UsageProblem(f"{submission} has no server.py or client.py and no phaseN_... "
                               "folders: point --submission at the folder holding your "
                               "server.py, and give --phase N")
        return [folder_target(phase, root, yours=True)], notes
    folders = phase_folders(REPO)
    wanted = [phase] if phase else list(PHASES)
    targets = []
    for n in wanted:
        if n in folders and (extensions or phase is None):  # the reference extensions too
            targets += with_extensions(n, folders[n], yours=False)
        elif n in folders:
            targets.append(folder_target(n, folders[n], yours=False))
        else:
            target = Target(n, f"reference phase {n}")
            target.problems = {p: f"no phase{n}_... folder in {REPO}" for p in (SERVER, CLIENT)}
            targets.append(target)
    return targets, notes


# --------------------------------------------------------------------------- exact lines
# The exact lines of docs/protocol.md, in one place.

INVALID_NAME = "! Invalid username: use 1-16 letters, digits, _ or -"
TOO_LONG = "! Line too long (max 1024 bytes)"
USAGE = "! Usage: /whisper <username> <message>"
SHUTDOWN = "--- Server shutting down ---"
DISCONNECTED = "Disconnected from server"


def welcome(name):
    return f"--- Welcome to the chat, {name}! Type /help for commands ---"


def joined(name):
    return f"--- {name} has joined the chat ---"


def left(name):
    return f"--- {name} has left the chat ---"


def taken(name):
    return f"! Username {name} is taken"


def chat_line(name, text):
    return f"[{name}]: {text}"


def online(*names):
    return f"--- Online ({len(names)}): {', '.join(sorted(names, key=str.lower))} ---"


def whisper_in(sender, text):
    return f"[{sender} -> you]: {text}"


def whisper_out(target, text):
    return f"[you -> {target}]: {text}"


def no_such_user(name):
    return f"! No such user: {name}"


def unknown(cmd):
    return f"! Unknown command: {cmd} (type /help)"


def goodbye(name):
    return f"--- Goodbye, {name}! ---"


# --------------------------------------------------------------------------- the toolbox


class Chat:
    """What a check uses to drive the target; everything it starts is cleaned up by the
    plugin after the check, pass or fail."""

    def __init__(self, target: Target, info: CheckInfo):
        self.target = target
        self.info = info
        self.phase = target.phase
        self.transcript = Transcript(hint=info.hint, title=info.name)
        self._servers: list[ServerProcess] = []
        self._things: list = []  # conns, clients, fake servers: closed at cleanup

    # -- recording
    def step(self, text: str) -> None:
        self.transcript.step(text)

    def fail(self, expected: str, got: str):
        self.transcript.fail(expected, got)

    def quiet(self, summary: str | None = None):
        return self.transcript.quiet(summary)

    # -- servers
    def start_server(self, env: dict | None = None) -> ServerProcess:
        return self.start_servers(1, env)[0]

    def start_servers(self, count: int, env: dict | None = None) -> list:
        """Start ``count`` servers side by side, then wait until each is listening."""
        servers = []
        for _ in range(count):
            servers.append(ServerProcess(self.target.server, cwd=self.target.cwd, env=env,
                                         transcript=self.transcript,
                                         label=self.target.who(SERVER), wait=False))
            self._servers.append(servers[-1])
        return [server.ready() for server in servers]

    @property
    def server(self) -> ServerProcess:
        """The check's server, started on first use."""
        return self._servers[0] if self._servers else self.start_server()

    def connect(self, name: str, server: ServerProcess | None = None, **kwargs) -> Conn:
        server = server or self.server
        conn = Conn(server.host, server.port, name=name, transcript=self.transcript,
                    peer_label=server.label, **kwargs)
        self._things.append(conn)
        return conn

    def join(self, *names: str, server: ServerProcess | None = None) -> list:
        """Phases 3 and 4: connect and register each user in turn; everyone already in
        sees each newcomer's joined line, so nothing is left unread."""
        users = []
        for name in names:
            conn = self.connect(name, server)
            conn.send_line(name)
            conn.expect(welcome(name))
            for other in users:
                other.expect(joined(name))
            users.append(conn)
        return users

    def relay_group(self, *names: str, server: ServerProcess | None = None) -> list:
        """Phase 2: connect each client in turn and prove it is relayed to and from:
        each newcomer says hello and everyone already connected receives it."""
        conns = []
        for name in names:
            conn = self.connect(name, server)
            if conns:
                conn.send_line(f"{name} is here")
                for other in conns:
                    other.expect(f"{name} is here")
            conns.append(conn)
        if len(conns) > 1:  # and the first one's words reach the last one
            conns[0].send_line(f"{names[0]} is here")
            for other in conns[1:]:
                other.expect(f"{names[0]} is here")
        return conns

    def probe(self, server: ServerProcess, tag: str) -> None:
        """Show that a server answers, in the way its phase answers."""
        if self.phase == 1:
            conn = self.connect(tag, server)
            conn.send_line(f"ping {tag}")
            conn.expect(f"ping {tag}")
        elif self.phase == 2:
            self.relay_group(f"{tag}1", f"{tag}2", server=server)
        else:
            self.join(tag, server=server)
        return None

    def wait_until_read(self, conn: Conn) -> None:
        """Wait until the peer has read what ``conn`` sent (Linux /proc), so that the next
        bytes arrive as a separate piece. Never fails: it only shapes the input."""
        harness.wait_until_read(conn)

    def send_in_pieces(self, conn: Conn, pieces, description: str) -> None:
        """Send ``pieces`` (bytes) so that the peer reads each one separately."""
        self.step(description)
        with self.transcript.muted():
            for i, piece in enumerate(pieces):
                if i:
                    self.wait_until_read(conn)
                conn.send_raw(piece)

    # -- clients
    def start_client(self, port: int, host: str = "127.0.0.1", extra_args=()) -> ClientProcess:
        client = ClientProcess([*self.target.client, *extra_args], host=host, port=port,
                               cwd=self.target.cwd, transcript=self.transcript,
                               label=self.target.who(CLIENT))
        self._things.append(client)
        return client

    def client_session(self, name: str = "alice", extra_args=()):
        """A client connected to a stand-in server; in phases 3 and 4 it has joined as
        ``name``. Returns (client, the stand-in server's side of the connection)."""
        fake = self.fake_server()
        client = self.start_client(fake.port, extra_args=extra_args)
        server_side = fake.accept()
        if self.phase >= 3:
            client.type(name)
            server_side.expect(name)
            server_side.send_line(welcome(name))
            client.expect_output(welcome(name))
        return client, server_side

    def client_leaves(self, client: ClientProcess, server_side: Conn, how: str,
                      name: str = "alice") -> None:
        """Type ``how`` (or end the input if it is None) and play the server's part while
        the client leaves: a /quit gets the goodbye, then the connection is closed.
        The client must exit with status 0, having printed nothing more than that."""
        printed = len(client.lines)
        if how is None:
            client.close_stdin()
        else:
            client.type(how)
        kind, line = server_side.next_event()
        while kind == "line" and line.strip() != "/quit":
            kind, line = server_side.next_event()
        if kind == "line" and self.phase >= 3:
            server_side.send_line(goodbye(name))
            client.expect_output(goodbye(name))
        server_side.close()
        status = client.wait_exit()
        if status != 0:
            self.fail(f"{client.label} exits with status 0", f"exit status {status}")
        extra = client.lines[printed:]
        if self.phase >= 3 and kind == "line":
            extra = [l for l in extra if l != goodbye(name)]
        if extra:
            self.fail(f"{client.label} prints nothing more than the server's goodbye",
                      "it printed:\n" + "\n".join(f"  {harness.show(l)}" for l in extra))
        self.no_traceback(client)

    def fake_server(self) -> FakeServer:
        fake = FakeServer(self.transcript)
        self._things.append(fake)
        return fake

    def refusing_port(self) -> RefusingPort:
        port = RefusingPort()
        self._things.append(port)
        return port

    def no_traceback(self, program) -> None:
        """No user ever sees a Python traceback, from a client or a server."""
        lines = program.all_stderr()
        for i, line in enumerate(lines):
            if line.startswith("Traceback (most recent call last)") or \
                    line.startswith("Exception in thread"):
                self.fail(f"{program.label} writes no Python traceback",
                          "it wrote one:\n" + "\n".join(f"  | {l}" for l in lines[i:i + 25]))
        self.step(f"{program.label} wrote no traceback")

    # -- cleanup
    def cleanup(self) -> None:
        for thing in reversed(self._things):
            try:
                thing.stop()
            except Exception:  # keep cleaning up
                pass
        for server in self._servers:
            server.stop()
