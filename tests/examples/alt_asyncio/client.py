"""Chat client for protocol v1 (phases 3 and 4): one thread and a selector.

Not the course's reference client: a second implementation of the client
rules in docs/protocol.md, written differently on purpose (one thread waiting
on the keyboard and the socket at once with `selectors`, instead of a thread
per direction), so the grader is shown to test behaviour, not code.

- Output that is not a terminal gets each server line exactly as received
  (control characters removed): no prompt, no colour.
- `Could not connect to HOST:PORT: REASON` and `Disconnected from server`
  exit with status 1; /quit, end of input and Ctrl-C exit with status 0.
- Until the server accepts a username, every line you type is a new try.

Run it:  python client.py [--host HOST] [--port PORT]
"""

import argparse
import os
import re
import selectors
import socket
import sys
import threading
import time

CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
LEAVE_WAIT = 3.0  # seconds to wait for the server to close after /quit or end of input
COLOURS = {"---": "\x1b[2m", "!": "\x1b[31m", "[": ""}


class Screen:
    """Everything the client prints goes through here."""

    def __init__(self):
        self.fancy = sys.stdout.isatty() and sys.stdin.isatty()
        self.prompt = ""

    def show(self, raw):
        text = CONTROL.sub("", raw.decode("utf-8", errors="replace"))
        if not self.fancy:
            sys.stdout.write(text + "\n")
        else:
            colour = next((c for p, c in COLOURS.items() if text.startswith(p)), "")
            sys.stdout.write("\r\x1b[K" + colour + text + "\x1b[0m\n" + self.prompt)
        sys.stdout.flush()

    def set_prompt(self, prompt):
        if self.fancy and prompt != self.prompt:
            self.prompt = prompt
            sys.stdout.write("\r\x1b[K" + prompt)
            sys.stdout.flush()


def keyboard():
    """Something a selector can wait on that delivers what the user types."""
    if os.name != "nt":
        return sys.stdin.fileno()  # select() handles ttys, pipes and files alike
    # Windows can only select() sockets: a helper thread pumps stdin into one.
    ours, theirs = socket.socketpair()

    def pump():
        with theirs:
            while chunk := os.read(sys.stdin.fileno(), 4096):
                theirs.sendall(chunk)

    threading.Thread(target=pump, daemon=True).start()
    return ours


def read_keyboard(source):
    if isinstance(source, socket.socket):
        return source.recv(4096)
    return os.read(source, 4096)


def is_quit(line):
    return line.strip().split(b" ")[0].lower() == b"/quit"


def chat(sock, screen):
    """Relay until the conversation ends; return the exit status."""
    selector = selectors.SelectSelector()
    source = keyboard()
    selector.register(sock, selectors.EVENT_READ, "server")
    selector.register(source, selectors.EVENT_READ, "user")
    incoming, typed = bytearray(), bytearray()
    leave_by = None  # once we are leaving: when to stop waiting for the server
    screen.set_prompt("username: ")

    while True:
        timeout = None if leave_by is None else max(0.0, leave_by - time.monotonic())
        ready = selector.select(timeout)
        if not ready and leave_by is not None:
            return 0
        for key, _ in ready:
            if key.data == "server":
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    if incoming:
                        screen.show(bytes(incoming))
                    if leave_by is not None:
                        return 0
                    screen.prompt = ""
                    screen.show(b"Disconnected from server")
                    return 1
                incoming += data
                while (end := incoming.find(b"\n")) >= 0:
                    line = bytes(incoming[:end])
                    del incoming[: end + 1]
                    if line.startswith(b"--- Welcome to the chat,"):
                        screen.prompt = "> "
                    screen.show(line)
                continue

            chunk = read_keyboard(source)
            if not chunk:  # end of input: let the server answer what we sent, then go
                selector.unregister(source)
                if typed:
                    sock.sendall(bytes(typed) + b"\n")
                sock.shutdown(socket.SHUT_WR)
                leave_by = time.monotonic() + LEAVE_WAIT
                continue
            typed += chunk
            while (end := typed.find(b"\n")) >= 0:
                line = bytes(typed[:end]).rstrip(b"\r")
                del typed[: end + 1]
                if is_quit(line):
                    # A joined user gets a goodbye; either way the server closes
                    # once it has read everything we sent.
                    sock.sendall(b"/quit\n")
                    sock.shutdown(socket.SHUT_WR)
                    selector.unregister(source)
                    leave_by = time.monotonic() + LEAVE_WAIT
                    typed.clear()
                    break
                sock.sendall(line + b"\n")


def main():
    parser = argparse.ArgumentParser(description="Chat client (protocol v1)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    args = parser.parse_args()

    try:
        sock = socket.create_connection((args.host, args.port), timeout=10)
    except OSError as error:
        reason = (error.strerror or str(error) or type(error).__name__).lower()
        print(f"Could not connect to {args.host}:{args.port}: {reason}", flush=True)
        return 1
    sock.settimeout(None)

    screen = Screen()
    try:
        with sock:
            return chat(sock, screen)
    except KeyboardInterrupt:
        if screen.fancy:
            print()
        return 0
    except BrokenPipeError:  # whoever read our output went away
        return 0
    except OSError:
        screen.prompt = ""
        screen.show(b"Disconnected from server")
        return 1


if __name__ == "__main__":
    status = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)
