"""Phase 3: usernames, commands, and a real line protocol.

Phase 2 relayed raw bytes. Now the server understands what clients say, so
it needs a protocol (see docs/protocol.md), and a protocol over TCP needs
framing: the byte stream must be cut back into lines, however recv() happens
to split or join them. On top of lines we build:

- usernames: the first line a client sends is its name, unique ignoring case;
- chat lines, relayed as "[NAME]: TEXT" to everyone else;
- commands: /who, /whisper, /help, /quit;
- join and leave notices, and defences against bad input (overlong lines,
  invalid UTF-8, terminal escape sequences).

Still one thread per client, as in phase 2, with a dictionary from each
client's socket to its username in place of the list.

Run it:  python phase3_usernames/server.py [--host HOST] [--port PORT]
"""

import argparse
import os
import re
import socket
import threading

# --8<-- [start:rules]
MAX_LINE = 1024  # bytes in one line, not counting its "\n"
VALID_USERNAME = re.compile(r"[A-Za-z0-9_-]{1,16}")
# C0 controls except tab, DEL, and C1 controls: the characters a terminal may
# obey instead of printing (an escape sequence can clear someone's screen).
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# --8<-- [end:rules]

HELP = [
    "--- /who (or /list, /users): see who is online ---",
    "--- /whisper NAME TEXT (or /w, /msg): send TEXT to NAME only ---",
    "--- /help: show this help ---",
    "--- /quit: leave the chat ---",
]

# --8<-- [start:state]
users = {}  # socket -> username, for every client that has joined
# One lock guards `users` and every send: a thread must hold it to read or
# change `users`, and to write to any socket, so that two threads never
# interleave their bytes on one connection.
lock = threading.Lock()
# --8<-- [end:state]


# --8<-- [start:framing]
TOO_LONG = None  # stands in for a line that broke the MAX_LINE limit


class LineSplitter:
    """Cuts a stream of bytes back into lines, however the bytes arrive.

    TCP delivers a stream, not messages: one recv() may hold half a line, or
    three lines and the start of a fourth. We keep the unfinished end in a
    buffer until the rest of it arrives.
    """

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
            # Too long already: say so now, and never hold more than a line's worth.
            lines.append(TOO_LONG)
            self.unfinished = b""
            self.discarding = True
        return lines


def clean(raw_line):
    """Decode a line, remove control characters and surrounding blanks."""
    text = raw_line.decode("utf-8", errors="replace")  # bad bytes become "\ufffd"
    return CONTROL_CHARACTERS.sub("", text).strip(" \t")
# --8<-- [end:framing]


# --8<-- [start:send]
def send(sock, text):
    """Send one line to one client. Call with `lock` held."""
    try:
        sock.sendall((text + "\n").encode("utf-8"))
    except OSError:
        pass  # a broken connection: that client's own thread notices and cleans up


def broadcast(text, sender=None):
    """Send one line to everyone who has joined except the sender. Call with `lock` held."""
    for sock in users:
        if sock is not sender:
            send(sock, text)
# --8<-- [end:send]


# --8<-- [start:join]
def join(sock, name):
    """Try to register a username; return True if the client has joined."""
    if not VALID_USERNAME.fullmatch(name):
        with lock:
            send(sock, "! Invalid username: use 1-16 letters, digits, _ or -")
        return False
    with lock:  # checking and taking the name in one step: no one can take it in between
        if any(taken.lower() == name.lower() for taken in users.values()):
            send(sock, f"! Username {name} is taken")
            return False
        users[sock] = name
        send(sock, f"--- Welcome to the chat, {name}! Type /help for commands ---")
        broadcast(f"--- {name} has joined the chat ---", sender=sock)
    return True
# --8<-- [end:join]


# --8<-- [start:commands]
def handle_line(sock, name, line):
    """Act on one line from a user who has joined; return False when the user quits."""
    if not line.startswith("/"):
        with lock:
            broadcast(f"[{name}]: {line}", sender=sock)
        return True

    words = line.split(maxsplit=2)  # command word, then at most two arguments
    command = words[0].lower()
    with lock:
        if command in ("/who", "/list", "/users"):
            names = sorted(users.values(), key=str.lower)
            send(sock, f"--- Online ({len(names)}): {', '.join(names)} ---")
        elif command in ("/whisper", "/w", "/msg"):
            whisper(sock, name, words[1:])
        elif command == "/help":
            for help_line in HELP:
                send(sock, help_line)
        elif command == "/quit":
            send(sock, f"--- Goodbye, {name}! ---")
            return False
        else:
            send(sock, f"! Unknown command: {words[0]} (type /help)")
    return True


def whisper(sock, name, arguments):
    """Deliver a private message. Call with `lock` held."""
    if len(arguments) < 2:
        send(sock, "! Usage: /whisper <username> <message>")
        return
    target_name, text = arguments
    for target, other_name in users.items():
        if other_name.lower() == target_name.lower():
            send(target, f"[{name} -> you]: {text}")
            send(sock, f"[you -> {other_name}]: {text}")
            return
    send(sock, f"! No such user: {target_name}")
# --8<-- [end:commands]


# --8<-- [start:handle_client]
def handle_client(sock, address):
    """Runs in its own thread: one client's whole life, from username to goodbye."""
    splitter = LineSplitter()
    name = None  # None until the client has joined
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return
            for raw_line in splitter.feed(data):
                if raw_line is TOO_LONG:
                    with lock:
                        send(sock, f"! Line too long (max {MAX_LINE} bytes)")
                    continue
                line = clean(raw_line)
                if not line:
                    continue
                if name is None:
                    if join(sock, line):
                        name = line
                        print(f"{name} joined from {address}", flush=True)
                elif not handle_line(sock, name, line):
                    return
    except OSError:  # reset or broken: the client vanished without /quit
        pass
    finally:
        # Every way out of the loop ends here, so each leave is announced once.
        with lock:
            if name is not None:
                del users[sock]
                broadcast(f"--- {name} has left the chat ---")
        sock.close()
        print(f"{name or address} left", flush=True)
# --8<-- [end:handle_client]


# --8<-- [start:main]
def main():
    parser = argparse.ArgumentParser(description="Phase 3: chat server with usernames")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007, help="0 picks any free port")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if os.name != "nt":  # on Windows, SO_REUSEADDR would let a second server share the port
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((args.host, args.port))
    except OSError as error:
        raise SystemExit(f"Cannot listen on {args.host}:{args.port}: {error.strerror}")
    server.listen()
    host, port = server.getsockname()
    print(f"Listening on {host}:{port}", flush=True)

    try:
        while True:
            try:
                sock, (client_host, client_port) = server.accept()
            except ConnectionError:  # a client gave up before we accepted it
                continue
            address = f"{client_host}:{client_port}"
            threading.Thread(target=handle_client, args=(sock, address), daemon=True).start()
    except KeyboardInterrupt:
        print("Server stopped", flush=True)
    finally:
        server.close()
# --8<-- [end:main]


if __name__ == "__main__":
    main()
