"""Deliberately broken chat servers: one classic mistake each, and the check that
must catch it.

Each broken example is a correct implementation from this folder (its *base*) with
ONE mistake patched in: a list of (old, new) text replacements applied to the
base's server.py, every ``old`` occurring exactly once. The examples are built
into a temporary folder when tests/test_grader.py runs, instead of being stored
as a dozen near-identical copies: a copy would drift from its base unnoticed,
while a patch whose ``old`` text no longer occurs fails loudly, and the patch
itself is the clearest statement of the mistake.

See one, or grade it yourself:

    python tests/examples/broken.py                        # the list
    python tests/examples/broken.py show p3_framing        # the patch, as a diff
    python tests/examples/broken.py build p3_framing /tmp/framing
    pytest --phase 3 --submission /tmp/framing

``catches`` names the check functions (in tests/checks/) that must fail. The
meta-tests run only those (``-k``), so they stay fast; ``says`` is text the failure
message must contain, so the check fails for the right reason.
"""

from __future__ import annotations

import difflib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Broken:
    name: str
    phase: int  # the phase it is graded as
    base: str  # folder in tests/examples/ whose server.py is patched
    mistake: str  # what a student did wrong, in one sentence
    catches: tuple  # check functions that must fail
    patches: tuple = ()  # ((old, new), ...) applied to the base's server.py
    client_from: str | None = None  # folder whose client.py to ship (default: base)
    says: str = ""  # text every failure message must contain

    def server_source(self) -> str:
        source = (HERE / self.base / "server.py").read_text(encoding="utf-8")
        for old, new in self.patches:
            count = source.count(old)
            if count != 1:
                raise ValueError(f"{self.name}: the text to replace occurs {count} times in "
                                 f"{self.base}/server.py (must be once): {old!r}")
            source = source.replace(old, new)
        header = f'# BROKEN ON PURPOSE ({self.name}): {self.mistake}\n'
        return header + source

    def build(self, dest: Path) -> Path:
        """Write server.py and client.py into ``dest`` (created); return ``dest``."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "server.py").write_text(self.server_source(), encoding="utf-8")
        shutil.copyfile(HERE / (self.client_from or self.base) / "client.py",
                        dest / "client.py")
        return dest

    def diff(self) -> str:
        before = (HERE / self.base / "server.py").read_text(encoding="utf-8")
        return "".join(difflib.unified_diff(
            before.splitlines(keepends=True), self.server_source().splitlines(keepends=True),
            f"{self.base}/server.py", f"{self.name}/server.py"))


BROKEN = [
    # ---------------------------------------------------------------- phase 1
    Broken(
        "p1_one_client_only", 1, "alt_phase1",
        "accept() is outside the loop: the server stops after its first client",
        catches=("test_serves_next_client",),
        patches=(("        try:\n            while True:\n                serve_one(listener)\n",
                  "        try:\n            serve_one(listener)\n"),),
    ),
    Broken(
        "p1_ignores_port", 1, "alt_phase1",
        "binds the hard-coded port 7007 whatever --port says",
        catches=("test_two_servers_two_ports",),
        patches=(("socket.create_server((args.host, args.port))",
                  "socket.create_server((args.host, 7007))"),),
    ),
    Broken(
        "p1_crashes_at_start", 1, "alt_phase1",
        "a typo that only runs at start-up: a traceback before 'Listening on'",
        catches=("test_echoes_lines",),
        patches=(("listener.getsockname()[:2]", "listener.getsocketname()[:2]"),),
        says="exited with status 1 before printing it",
    ),
    # ---------------------------------------------------------------- phase 2
    Broken(
        "p2_keeps_dead_clients", 2, "alt_socketserver_phase2",
        "never removes a client that left, and lets a failed send escape: the next "
        "broadcast dies on the dead socket and the clients after it get nothing",
        catches=("test_survives_disconnect", "test_survives_reset"),
        patches=(
            ("                try:\n                    sock.sendall(data)\n"
             "                except OSError:\n                    self.drop(sock)\n",
             "                sock.sendall(data)\n"),
            ("    def finish(self):\n        self.server.drop(self.request)\n",
             "    def finish(self):\n"),
        ),
    ),
    # ---------------------------------------------------------------- phase 3
    Broken(
        "p3_framing", 3, "alt_asyncio",
        "treats each read() as one message: a line split across two reads breaks, and "
        "two lines in one read become one",
        catches=("test_line_in_pieces", "test_lines_in_one_piece"),
        patches=(("for line in conn.framer.feed(data):",
                  "for line in [data.rstrip(b\"\\r\\n\")]:"),),
    ),
    Broken(
        "p3_echoes_sender", 3, "alt_asyncio",
        "broadcasts to everyone, the sender included",
        catches=("test_chat_line",),
        patches=(("            if conn is not sender:\n                self.send(conn, line)\n",
                  "            self.send(conn, line)\n"),),
    ),
    Broken(
        "p3_names_case_sensitive", 3, "alt_asyncio",
        "checks whether a username is taken with its exact case, so Alice and ALICE can "
        "both join",
        catches=("test_taken_username",),
        patches=(("        elif name.lower() in self.users:\n",
                  "        elif any(c.name == name for c in self.users.values()):\n"),),
        says="is taken",
    ),
    Broken(
        "p3_whisper_to_all", 3, "alt_asyncio",
        "sends a whisper with broadcast(), so everyone reads it",
        catches=("test_whisper",),
        patches=(('        self.send(target, f"[{conn.name} -> you]: {text}")\n',
                  '        self.broadcast(f"[{conn.name} -> you]: {text}", sender=conn)\n'),),
    ),
    Broken(
        "p3_silent_start", 3, "alt_asyncio",
        "prints 'Listening on' after waiting for the server to stop instead of before (as "
        "with a print after serve_forever()): it accepts connections, but nobody learns "
        "its port, and the grader waits in vain",
        catches=("test_welcome_and_joined",),
        patches=(('    print(f"Listening on {bound_host}:{bound_port}", flush=True)\n'
                  '    log.info("ready; Ctrl-C or SIGTERM stops the server")\n\n'
                  '    await stop.wait()\n',
                  '    log.info("ready; Ctrl-C or SIGTERM stops the server")\n\n'
                  '    await stop.wait()\n'
                  '    print(f"Listening on {bound_host}:{bound_port}", flush=True)\n'),),
        says="no such line within",
    ),
    Broken(
        "p3_never_answers", 3, "alt_asyncio",
        "reads with reader.read() and no size, which waits for the end of the stream: the "
        "server prints 'Listening on', accepts, and never answers anyone",
        catches=("test_welcome_and_joined",),
        patches=(("data = await reader.read(READ_CHUNK)", "data = await reader.read()"),),
        says="nothing within",
    ),
    # ---------------------------------------------------------------- phase 4
    Broken(
        "p4_thread_per_client", 4, "alt_socketserver_phase3",
        "a correct phase 3 server (a thread per client) handed in as phase 4",
        catches=("test_one_thread",),
        client_from="alt_asyncio",
    ),
    Broken(
        "p4_blocking_send", 4, "alt_asyncio",
        "sends with a blocking sendall() from the event loop: one client that stops "
        "reading freezes everyone",
        catches=("test_slow_reader_evicted",),
        patches=(('        conn.writer.write(line.encode("utf-8") + b"\\n")\n',
                  '        raw = conn.writer.get_extra_info("socket").dup()\n'
                  '        raw.setblocking(True)  # like sendall() on a blocking socket\n'
                  '        raw.sendall(line.encode("utf-8") + b"\\n")\n'
                  '        raw.close()\n'),),
    ),
]

BY_NAME = {b.name: b for b in BROKEN}


def main(argv) -> int:
    if not argv:
        for b in BROKEN:
            print(f"{b.name:26} phase {b.phase}  {b.mistake}")
        return 0
    if argv[0] == "show" and len(argv) == 2 and argv[1] in BY_NAME:
        print(BY_NAME[argv[1]].diff(), end="")
        return 0
    if argv[0] == "build" and len(argv) == 3 and argv[1] in BY_NAME:
        b = BY_NAME[argv[1]]
        dest = b.build(Path(argv[2]))
        print(f"built {dest}: grade it with  pytest --phase {b.phase} --submission {dest}")
        return 0
    print("usage: python tests/examples/broken.py [show NAME | build NAME DEST]\n"
          f"names: {', '.join(BY_NAME)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
