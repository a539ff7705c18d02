"""Chat server for protocol v1 (phases 3 and 4), written with asyncio streams.

This is NOT the course's reference code. It is a second, independent
implementation of docs/protocol.md that the grader must give full marks, as
phase 3 and as phase 4: it proves that the checks test behaviour, not one
particular way of writing the server. It also serves as the base file of the
deliberately broken examples (see tests/examples/broken.py).

Design, in contrast with the reference phases:

- one thread, one asyncio event loop; each connection is a coroutine
  (`serve_connection`) reading with `StreamReader.read()`;
- the server frames lines itself (`LineFramer`), so a line split across reads,
  or several lines in one read, both work, and at most ~1 KiB of an unfinished
  line is ever kept;
- output is never awaited: `StreamWriter.write()` only appends to the
  transport's buffer, so nobody waits for a slow reader; when a client's
  unsent output passes 1 MiB (`transport.get_write_buffer_size()`), the client
  is evicted;
- SIGINT and SIGTERM say goodbye to every connection and exit 0;
- the log goes to standard error through `logging`; standard output only
  carries the `Listening on HOST:PORT` line.

Run it:  python server.py [--host HOST] [--port PORT]
"""

import argparse
import asyncio
import logging
import re
import signal
import socket
import sys

MAX_LINE = 1024  # bytes in one line, not counting its "\n" or "\r\n"
MAX_UNSENT = 1024 * 1024  # bytes queued for one client before it is evicted
READ_CHUNK = 16 * 1024

TOO_LONG = object()  # what LineFramer yields for a line over MAX_LINE bytes

USERNAME = re.compile(r"[A-Za-z0-9_-]{1,16}")
# C0 controls except tab, DEL and C1 controls: never forwarded to anyone's terminal.
CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
BLANKS = " \t"

HELP = (
    "--- You can type:",
    "---   TEXT                         say TEXT to everyone else",
    "---   /who   (or /list, /users)    see who is online",
    "---   /whisper NAME TEXT  (or /w, /msg)   say TEXT to NAME only",
    "---   /help                        show this list",
    "---   /quit                        leave the chat",
)

log = logging.getLogger("chat")


class LineFramer:
    """Cut a byte stream into lines, whatever pieces it arrives in."""

    def __init__(self):
        self.pending = bytearray()  # the unfinished line, at most MAX_LINE + 1 bytes
        self.skipping = False  # inside a line already known to be too long

    def feed(self, data):
        """Return the lines completed by `data`: bytes, or TOO_LONG."""
        lines = []
        start = 0
        while start <= len(data):
            end = data.find(b"\n", start)
            piece = data[start:] if end < 0 else data[start:end]
            if self.skipping:
                if end >= 0:
                    self.skipping = False
            elif end >= 0:
                line = bytes(self.pending + piece)
                self.pending.clear()
                if line.endswith(b"\r"):
                    line = line[:-1]
                lines.append(TOO_LONG if len(line) > MAX_LINE else line)
            else:
                self.pending += piece
                # MAX_LINE bytes plus a "\r" still fit; anything more cannot.
                if len(self.pending) > MAX_LINE and not (
                    len(self.pending) == MAX_LINE + 1 and self.pending.endswith(b"\r")
                ):
                    lines.append(TOO_LONG)
                    self.pending.clear()
                    self.skipping = True
            if end < 0:
                break
            start = end + 1
        return lines


def clean(raw):
    """Bytes of one line -> the text the protocol works with."""
    text = raw.decode("utf-8", errors="replace")
    return CONTROL.sub("", text).strip(BLANKS)


def first_word(text):
    """("/w", "bob  hi") from "/w bob  hi": split at the first space or tab."""
    for i, char in enumerate(text):
        if char in BLANKS:
            return text[:i], text[i + 1 :]
    return text, ""


class Connection:
    """One TCP connection, joined or not."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername") or ("?", "?")  # None if already reset
        self.address = f"{peer[0]}:{peer[1]}"
        self.framer = LineFramer()
        self.name = None  # set once the username is accepted
        self.closed = False  # no more output goes to this connection

    def unsent(self):
        return self.writer.transport.get_write_buffer_size()


class ChatServer:
    def __init__(self):
        self.connections = set()
        self.users = {}  # username.lower() -> Connection, joined users only
        self.stopping = False

    # -- output ---------------------------------------------------------

    def send(self, conn, line):
        """Queue one line for `conn`; never waits. Evicts a client that stopped reading."""
        if conn.closed or conn.writer.is_closing():
            return
        conn.writer.write(line.encode("utf-8") + b"\n")
        if conn.unsent() > MAX_UNSENT:
            self.evict(conn)

    def broadcast(self, line, sender=None):
        for conn in list(self.users.values()):
            if conn is not sender:
                self.send(conn, line)

    def evict(self, conn):
        log.warning("evicting %s (%s): %d bytes unsent", conn.name, conn.address, conn.unsent())
        conn.closed = True
        conn.writer.transport.abort()
        # Announce it once the current broadcast is over, not in the middle of it.
        asyncio.get_running_loop().call_soon(self.leave, conn)

    def leave(self, conn):
        """Forget a user and tell the others; safe to call more than once."""
        if conn.name and self.users.get(conn.name.lower()) is conn:
            del self.users[conn.name.lower()]
            log.info("%s left", conn.name)
            if not self.stopping:
                self.broadcast(f"--- {conn.name} has left the chat ---")

    # -- input ----------------------------------------------------------

    async def serve_connection(self, reader, writer):
        conn = Connection(reader, writer)
        self.connections.add(conn)
        log.debug("%s connected", conn.address)
        try:
            while not conn.closed:
                data = await reader.read(READ_CHUNK)
                if not data:
                    break
                for line in conn.framer.feed(data):
                    if conn.closed:
                        break
                    self.handle_line(conn, line)
        except (ConnectionError, OSError):
            pass  # a reset is just another way of leaving
        finally:
            self.connections.discard(conn)
            self.leave(conn)
            conn.closed = True
            writer.close()  # sends what is still queued (a goodbye), then closes
            log.debug("%s disconnected", conn.address)

    def handle_line(self, conn, raw):
        if raw is TOO_LONG:
            self.send(conn, f"! Line too long (max {MAX_LINE} bytes)")
            return
        text = clean(raw)
        if not text:
            return
        if conn.name is None:
            self.try_username(conn, text)
        elif text.startswith("/"):
            self.run_command(conn, text)
        else:
            self.broadcast(f"[{conn.name}]: {text}", sender=conn)

    def try_username(self, conn, name):
        if not USERNAME.fullmatch(name):
            self.send(conn, "! Invalid username: use 1-16 letters, digits, _ or -")
        elif name.lower() in self.users:
            self.send(conn, f"! Username {name} is taken")
        else:
            conn.name = name
            self.users[name.lower()] = conn
            log.info("%s joined from %s", name, conn.address)
            self.send(conn, f"--- Welcome to the chat, {name}! Type /help for commands ---")
            self.broadcast(f"--- {name} has joined the chat ---", sender=conn)

    def run_command(self, conn, text):
        word, rest = first_word(text)
        command = word.lower()
        if command in ("/who", "/list", "/users"):
            names = sorted((c.name for c in self.users.values()), key=str.lower)
            self.send(conn, f"--- Online ({len(names)}): {', '.join(names)} ---")
        elif command in ("/whisper", "/w", "/msg"):
            self.whisper(conn, rest)
        elif command == "/help":
            for line in HELP:
                self.send(conn, line)
        elif command == "/quit":
            self.send(conn, f"--- Goodbye, {conn.name}! ---")
            conn.closed = True  # serve_connection stops reading and closes
        else:
            self.send(conn, f"! Unknown command: {word} (type /help)")

    def whisper(self, conn, rest):
        name, text = first_word(rest.lstrip(BLANKS))
        text = text.lstrip(BLANKS)
        if not name or not text:
            self.send(conn, "! Usage: /whisper <username> <message>")
            return
        target = self.users.get(name.lower())
        if target is None:
            self.send(conn, f"! No such user: {name}")
            return
        self.send(target, f"[{conn.name} -> you]: {text}")
        self.send(conn, f"[you -> {target.name}]: {text}")

    # -- shutdown -------------------------------------------------------

    def say_goodbye(self):
        self.stopping = True
        for conn in list(self.connections):
            self.send(conn, "--- Server shutting down ---")
            conn.closed = True
            conn.writer.close()


def raise_fd_limit():
    """Let one process hold thousands of sockets (the soft limit is often 1024)."""
    try:
        import resource
    except ImportError:  # Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except (ValueError, OSError):
            pass


async def closed(writer):
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


async def run(host, port):
    chat = ChatServer()
    # Binding ourselves (rather than start_server(host=...)) keeps the resolver
    # out of asyncio's thread pool: this process runs exactly one thread.
    listener = socket.create_server((host, port), backlog=4096)
    server = await asyncio.start_server(chat.serve_connection, sock=listener, backlog=4096)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, AttributeError, ValueError):
            pass  # Windows: Ctrl-C still arrives as KeyboardInterrupt

    bound_host, bound_port = listener.getsockname()[:2]
    print(f"Listening on {bound_host}:{bound_port}", flush=True)
    log.info("ready; Ctrl-C or SIGTERM stops the server")

    await stop.wait()
    log.info("shutting down, %d connections", len(chat.connections))
    server.close()
    connections = list(chat.connections)
    chat.say_goodbye()
    if connections:
        # Give the goodbyes half a second to leave; a client that stopped
        # reading does not get to hold the shutdown up.
        closing = [asyncio.ensure_future(closed(c.writer)) for c in connections]
        await asyncio.wait(closing, timeout=0.5)
        for conn in connections:
            conn.writer.transport.abort()


def main():
    parser = argparse.ArgumentParser(description="Chat server (protocol v1) on asyncio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)-7s %(message)s",
        datefmt="%H:%M:%S",
    )
    raise_fd_limit()
    try:
        asyncio.run(run(args.host, args.port))
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"Cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
