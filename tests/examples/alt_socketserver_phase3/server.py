"""Chat server for protocol v1 (phase 3) on socketserver: a thread per client.

Not the course's reference code: `socketserver.ThreadingTCPServer` runs one
thread per connection and `StreamRequestHandler.rfile.readline(limit)` does
the framing. It is a correct phase 3 server, and the grader must give it full
marks as phase 3.

Graded as phase 4 it must FAIL: a thread per client is exactly what phase 4
replaces (and a blocking send under a lock lets one slow reader hold up
everybody; SIGTERM kills it without a goodbye). tests/examples/broken.py uses
it as the "phase 4 server with a thread per client" example. Its client is
tests/examples/alt_asyncio/client.py.

Run it:  python server.py [--host HOST] [--port PORT]
"""

import argparse
import re
import socketserver
import sys
import threading

MAX_LINE = 1024
USERNAME = re.compile(r"[A-Za-z0-9_-]{1,16}", re.ASCII)
CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
COMMANDS = {
    "/who": "who", "/list": "who", "/users": "who",
    "/whisper": "whisper", "/w": "whisper", "/msg": "whisper",
    "/help": "help", "/quit": "quit",
}
HELP_LINES = [
    "--- Commands (case does not matter):",
    "--- /who, /list, /users: who is online",
    "--- /whisper NAME TEXT, /w, /msg: a private message",
    "--- /help: this help",
    "--- /quit: leave",
]
TOO_LONG = b"\0too long"  # cannot be a real line: we only return lines without "\n"


class ChatServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address):
        super().__init__(address, ChatHandler)
        self.lock = threading.RLock()  # guards `users` and every send
        self.users = {}  # name.lower() -> ChatHandler

    def broadcast(self, line, skip=None):
        with self.lock:
            for handler in list(self.users.values()):
                if handler is not skip:
                    handler.say(line)


class ChatHandler(socketserver.StreamRequestHandler):
    def setup(self):
        super().setup()
        self.name = None
        self.skipping = False

    # -- reading ----------------------------------------------------------

    def next_line(self):
        """The next line as bytes, TOO_LONG, or None at the end of the stream."""
        while self.skipping:  # the rest of a line already answered as too long
            rest = self.rfile.readline(MAX_LINE)
            if not rest:
                return None
            self.skipping = not rest.endswith(b"\n")
        raw = self.rfile.readline(MAX_LINE + 1)
        if not raw.endswith(b"\n"):
            if len(raw) <= MAX_LINE:
                return None  # the stream ended, maybe in the middle of a line
            if raw.endswith(b"\r") and self.rfile.peek(1)[:1] == b"\n":
                self.rfile.read(1)  # exactly MAX_LINE bytes and "\r\n": fine
                raw += b"\n"
            else:  # too long: answer now, skip the rest on the next call
                self.skipping = True
                return TOO_LONG
        line = raw[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        return TOO_LONG if len(line) > MAX_LINE else line

    def handle(self):
        print(f"connection from {self.client_address[0]}:{self.client_address[1]}", flush=True)
        try:
            while True:
                raw = self.next_line()
                if raw is None:
                    return
                if raw == TOO_LONG:
                    self.say(f"! Line too long (max {MAX_LINE} bytes)")
                    continue
                text = CONTROL.sub("", raw.decode("utf-8", errors="replace")).strip(" \t")
                if not text:
                    continue
                if self.name is None:
                    self.pick_name(text)
                elif not text.startswith("/"):
                    self.server.broadcast(f"[{self.name}]: {text}", skip=self)
                elif self.command(text) == "quit":
                    return
        except OSError:
            return

    # -- writing ----------------------------------------------------------

    def say(self, line):
        try:
            with self.server.lock:
                self.wfile.write(line.encode("utf-8") + b"\n")
        except OSError:
            pass  # our own thread notices the broken connection and cleans up

    # -- the protocol -----------------------------------------------------

    def pick_name(self, name):
        with self.server.lock:
            if not USERNAME.fullmatch(name):
                self.say("! Invalid username: use 1-16 letters, digits, _ or -")
            elif name.lower() in self.server.users:
                self.say(f"! Username {name} is taken")
            else:
                self.name = name
                self.server.users[name.lower()] = self
                self.say(f"--- Welcome to the chat, {name}! Type /help for commands ---")
                self.server.broadcast(f"--- {name} has joined the chat ---", skip=self)
                print(f"{name} is in", flush=True)

    def command(self, text):
        word, rest = (re.split("[ \t]", text, maxsplit=1) + [""])[:2]
        action = COMMANDS.get(word.lower())
        if action == "who":
            with self.server.lock:
                names = sorted((h.name for h in self.server.users.values()), key=str.lower)
            self.say(f"--- Online ({len(names)}): {', '.join(names)} ---")
        elif action == "whisper":
            target_name, message = (re.split("[ \t]+", rest.strip(" \t"), maxsplit=1) + [""])[:2]
            if not target_name or not message:
                self.say("! Usage: /whisper <username> <message>")
                return action
            with self.server.lock:
                target = self.server.users.get(target_name.lower())
                if target is None:
                    self.say(f"! No such user: {target_name}")
                else:
                    target.say(f"[{self.name} -> you]: {message}")
                    self.say(f"[you -> {target.name}]: {message}")
        elif action == "help":
            for line in HELP_LINES:
                self.say(line)
        elif action == "quit":
            self.say(f"--- Goodbye, {self.name}! ---")
        else:
            self.say(f"! Unknown command: {word} (type /help)")
        return action

    def finish(self):
        with self.server.lock:
            joined = self.name is not None and self.server.users.get(self.name.lower()) is self
            if joined:
                del self.server.users[self.name.lower()]
                self.server.broadcast(f"--- {self.name} has left the chat ---")
        if joined:
            print(f"{self.name} is out", flush=True)
        try:
            super().finish()
        except OSError:
            pass


def main():
    parser = argparse.ArgumentParser(description="Chat server (protocol v1), thread per client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    args = parser.parse_args()
    try:
        server = ChatServer((args.host, args.port))
    except OSError as error:
        print(f"Cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        sys.exit(1)
    with server:
        host, port = server.server_address[:2]
        print(f"Listening on {host}:{port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
