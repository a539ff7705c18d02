"""Phase 4: one thread, one event loop, and what a real server needs.

Phase 3 spent a thread on every client, each waiting in recv() or sendall().
Here one thread waits for all of them at once: the selectors module (select()
and its faster successors, epoll on Linux and kqueue on macOS) says which
sockets are ready, and we only call recv() or send() when they can answer at
once. Since we can no longer wait inside sendall(), each client gets an output
buffer that we flush whenever its socket can take more.

The protocol is phase 3's, byte for byte. What one loop makes possible:
- a client that stops reading no longer freezes everyone: its unsent output
  grows, and past MAX_OUTPUT we disconnect it;
- thousands of clients cost a few kilobytes each, not a thread each;
- no locks: only one thing ever happens at a time;
- Ctrl-C or SIGTERM gives every client a goodbye line and a clean close.

Run it:  python phase4_select/server.py [--host HOST] [--port PORT]
"""

import argparse
import re
import selectors
import signal
import socket

try:
    import resource  # Unix only: lets us raise the open-files limit
except ImportError:
    resource = None

MAX_LINE = 1024  # bytes in one line, not counting its "\n"
MAX_OUTPUT = 1024 * 1024  # unsent bytes a client may fall behind before it is evicted
VALID_USERNAME = re.compile(r"[A-Za-z0-9_-]{1,16}")
# C0 controls except tab, DEL, and C1 controls: the characters a terminal may
# obey instead of printing (an escape sequence can clear someone's screen).
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")

HELP = [
    "--- /who (or /list, /users): see who is online ---",
    "--- /whisper NAME TEXT (or /w, /msg): send TEXT to NAME only ---",
    "--- /help: show this help ---",
    "--- /quit: leave the chat ---",
]

TOO_LONG = None  # stands in for a line that broke the MAX_LINE limit


class LineSplitter:
    """Cuts a stream of bytes back into lines, however the bytes arrive."""

    def __init__(self):
        self.unfinished = b""
        self.discarding = False  # inside a line already reported as too long

    def feed(self, data):
        """Add received bytes; return the lines they complete (TOO_LONG for overlong ones)."""
        pieces = (self.unfinished + data).split(b"\n")
        self.unfinished = pieces.pop()  # what follows the last "\n" is not a line yet
        lines = []
        for piece in pieces:
            if self.discarding:  # the end of an overlong line: already answered
                self.discarding = False
                continue
            piece = piece.removesuffix(b"\r")  # telnet and nc -C end lines with "\r\n"
            lines.append(piece if len(piece) <= MAX_LINE else TOO_LONG)
        if self.discarding:
            self.unfinished = b""
        elif len(self.unfinished) > MAX_LINE + 1:  # + 1: room for a "\r"
            lines.append(TOO_LONG)
            self.unfinished = b""
            self.discarding = True
        return lines


def clean(raw_line):
    """Decode a line, remove control characters and surrounding blanks."""
    text = raw_line.decode("utf-8", errors="replace")  # bad bytes become "\ufffd"
    return CONTROL_CHARACTERS.sub("", text).strip(" \t")


# --8<-- [start:state]
class Client:
    """What the server remembers about one connection between events.

    In phase 3 this lived in local variables of the client's thread; with one
    thread for everyone, it has to live in an object.
    """

    def __init__(self, sock, address):
        self.sock = sock
        self.address = address
        self.name = None  # None until the client has joined
        self.splitter = LineSplitter()
        self.output = bytearray()  # bytes the socket has not taken yet
        self.watching_writable = False  # asked the selector to wake us when it can send
        self.quitting = False  # said /quit: close once its goodbye is sent


selector = selectors.DefaultSelector()  # epoll, kqueue, or select: the best this OS has
clients = set()  # every open connection
users = {}  # lower-case username -> Client, for every client that has joined
to_flush = set()  # clients given new output since the loop last sent
# --8<-- [end:state]


class Shutdown(Exception):
    """Raised by the signal handler to leave the event loop."""


def request_shutdown(signum, frame):
    raise Shutdown


# --8<-- [start:output]
def send(client, text):
    """Queue one line for one client; the event loop sends it when it can."""
    client.output += (text + "\n").encode("utf-8")
    to_flush.add(client)


def broadcast(text, sender=None):
    """Queue one line for every user except the sender."""
    data = (text + "\n").encode("utf-8")  # encoded once, not once per user
    for client in users.values():
        if client is not sender:
            client.output += data
            to_flush.add(client)


def flush(client):
    """Send as much of a client's output as its socket takes without waiting."""
    try:
        sent = client.sock.send(client.output)
    except BlockingIOError:  # its send buffer is full: the client is not reading
        sent = 0
    except OSError:  # the connection is broken
        disconnect(client)
        return
    del client.output[:sent]
    if len(client.output) > MAX_OUTPUT:
        print(f"{client.name or client.address} is not reading: evicted", flush=True)
        disconnect(client)
    elif not client.output and client.quitting:
        disconnect(client)
    else:
        watch_writable(client, bool(client.output))


def watch_writable(client, wanted):
    """Ask the selector to report when the client's socket can take more, or to stop."""
    if wanted != client.watching_writable:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if wanted else 0)
        selector.modify(client.sock, events, client)
        client.watching_writable = wanted
# --8<-- [end:output]


# --8<-- [start:lines]
def handle_line(client, line):
    """Act on one complete, cleaned line from a client."""
    if client.name is None:
        join(client, line)
    elif not line.startswith("/"):
        broadcast(f"[{client.name}]: {line}", sender=client)
    else:
        handle_command(client, line)


def join(client, name):
    if not VALID_USERNAME.fullmatch(name):
        send(client, "! Invalid username: use 1-16 letters, digits, _ or -")
    elif name.lower() in users:
        send(client, f"! Username {name} is taken")
    else:
        client.name = name
        users[name.lower()] = client
        print(f"{name} joined from {client.address}", flush=True)
        send(client, f"--- Welcome to the chat, {name}! Type /help for commands ---")
        broadcast(f"--- {name} has joined the chat ---", sender=client)


def handle_command(client, line):
    words = line.split(maxsplit=2)  # command word, then at most two arguments
    command = words[0].lower()
    if command in ("/who", "/list", "/users"):
        names = sorted((user.name for user in users.values()), key=str.lower)
        send(client, f"--- Online ({len(names)}): {', '.join(names)} ---")
    elif command in ("/whisper", "/w", "/msg"):
        if len(words) < 3:
            send(client, "! Usage: /whisper <username> <message>")
        elif words[1].lower() not in users:
            send(client, f"! No such user: {words[1]}")
        else:
            target = users[words[1].lower()]
            send(target, f"[{client.name} -> you]: {words[2]}")
            send(client, f"[you -> {target.name}]: {words[2]}")
    elif command == "/help":
        for help_line in HELP:
            send(client, help_line)
    elif command == "/quit":
        send(client, f"--- Goodbye, {client.name}! ---")
        client.quitting = True
        leave(client)
    else:
        send(client, f"! Unknown command: {words[0]} (type /help)")
# --8<-- [end:lines]


# --8<-- [start:connections]
def accept_all(listener):
    """Accept every connection that is waiting, not just one per round."""
    while True:
        try:
            sock, (host, port) = listener.accept()
        except BlockingIOError:  # no more waiting
            return
        except OSError as error:  # e.g. out of file descriptors: try again next round
            print(f"accept failed: {error}", flush=True)
            return
        sock.setblocking(False)
        client = Client(sock, f"{host}:{port}")
        clients.add(client)
        selector.register(sock, selectors.EVENT_READ, client)


def receive(client):
    """Read what a client sent and act on each complete line."""
    try:
        data = client.sock.recv(65536)  # large reads: fewer trips through the loop
    except BlockingIOError:
        return
    except OSError:  # reset: treat like a close
        data = b""
    if not data:
        disconnect(client)
        return
    for raw_line in client.splitter.feed(data):
        if client.quitting:  # ignore anything sent after /quit
            return
        if raw_line is TOO_LONG:
            send(client, f"! Line too long (max {MAX_LINE} bytes)")
            continue
        line = clean(raw_line)
        if line:
            handle_line(client, line)


def leave(client):
    """Forget a user's name and tell everyone it left (once, whatever the reason)."""
    if client.name is None:  # never joined, or already left
        return
    del users[client.name.lower()]
    broadcast(f"--- {client.name} has left the chat ---")
    print(f"{client.name} left", flush=True)
    client.name = None


def disconnect(client):
    """Close a connection and clean up after it."""
    if client not in clients:  # already gone
        return
    leave(client)
    clients.discard(client)
    to_flush.discard(client)
    selector.unregister(client.sock)
    client.sock.close()
# --8<-- [end:connections]


# --8<-- [start:loop]
def run(listener):
    """The event loop: wait for ready sockets, handle them, send what is queued."""
    selector.register(listener, selectors.EVENT_READ, None)
    while True:
        # The timeout only matters on Windows, where Ctrl-C cannot interrupt select().
        for key, events in selector.select(timeout=1.0):
            if key.data is None:
                accept_all(listener)
                continue
            client = key.data
            if events & selectors.EVENT_READ:
                receive(client)
            if events & selectors.EVENT_WRITE and client in clients:
                flush(client)
        # Everything queued during this round goes out now, one send() per
        # client however many lines it got: that is how one thread keeps up.
        while to_flush:
            flush(to_flush.pop())


def shut_down():
    """Say goodbye to every client and close every connection."""
    goodbye = b"--- Server shutting down ---\n"
    for client in list(clients):
        client.output += goodbye
        try:
            client.sock.send(client.output)  # best effort: we will not wait for anyone
            client.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        client.sock.close()
    selector.close()
# --8<-- [end:loop]


# --8<-- [start:main]
def main():
    parser = argparse.ArgumentParser(description="Phase 4: select() chat server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007, help="0 picks any free port")
    args = parser.parse_args()

    if resource is not None:
        # Each client is an open file. Many systems allow only 256 or 1024 per
        # process by default, but let a process raise its own limit this far:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # macOS refuses "unlimited": keep the default
            pass

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
    except OSError as error:
        raise SystemExit(f"Cannot listen on {args.host}:{args.port}: {error.strerror}")
    listener.listen(socket.SOMAXCONN)  # a long queue: thousands may connect at once
    listener.setblocking(False)
    host, port = listener.getsockname()
    print(f"Listening on {host}:{port}", flush=True)

    signal.signal(signal.SIGINT, request_shutdown)
    signal.signal(signal.SIGTERM, request_shutdown)
    try:
        run(listener)
    except Shutdown:
        shut_down()
        print("Server stopped", flush=True)
    finally:
        listener.close()
# --8<-- [end:main]


if __name__ == "__main__":
    main()
