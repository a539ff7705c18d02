"""The chat itself: phase 4's protocol, plus a place for features to plug in.

This is the core's chat.py (phase4_select/chat.py) with one addition: the
Feature class. Every extension (nicknames and statuses in profiles.py,
history in history.py, file sharing in files.py) is a Feature: it adds
commands and /help lines, and the chat calls it at a few fixed moments
(a user joined, spoke, is renaming, left). The protocol of the core, the
event loop in server.py and the seam between them (events in, output and
closes out) stay as they were; a feature never reaches into the loop.
"""

import re

# --8<-- [start:rules]
MAX_LINE = 1024  # bytes in one line, not counting its "\n"
VALID_USERNAME = re.compile(r"[A-Za-z0-9_-]{1,16}")
# C0 controls except tab, DEL, and C1 controls: the characters a terminal may
# obey instead of printing (an escape sequence can clear someone's screen).
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# --8<-- [end:rules]
# --8<-- [start:max_output]
MAX_OUTPUT = 1024 * 1024  # unsent bytes a client may fall behind before it is evicted
# --8<-- [end:max_output]

HELP = [
    "--- /who (or /list, /users): see who is online ---",
    "--- /whisper NAME TEXT (or /w, /msg): send TEXT to NAME only ---",
]
HELP_LAST = [
    "--- /help: show this help ---",
    "--- /quit: leave the chat ---",
]

# --8<-- [start:state]
class Client:
    """What the chat remembers about one connection between two events.

    In phase 3 this lived in the local variables of the client's thread; with
    one thread for everyone, it has to live in an object.
    """

    def __init__(self, address):
        self.address = address
        self.name = None  # None until the client has joined
        self.splitter = LineSplitter()
        self.output = bytearray()  # bytes queued for this client, not sent yet
        self.closing = False  # server.py closes the connection once output is sent
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


# --8<-- [start:feature]
class Feature:
    """Something the chat can do beyond the core protocol.

    A feature names its commands ({"/word": method}, which win over the core's)
    and its /help lines, and overrides the moments it cares about. Each method
    here does nothing, so a feature only writes what it needs.
    """

    commands = {}
    help = []

    def __init__(self, chat):
        self.chat = chat

    def joined(self, client):
        """A user has joined: its welcome is queued, the others not told yet."""

    def spoke(self, client, chat_line=None):
        """A user sent a chat line (chat_line, as relayed) or a whisper (None)."""

    def refuse_rename(self, client):
        """Why client may not change its name now (an "! " line), or None."""

    def left(self, client):
        """A user is leaving: the others have not been told yet."""
# --8<-- [end:feature]


class Chat:
    """Everyone in the chat, and what the chat does when the loop reports an event."""

    def __init__(self, features=()):
        self.users = {}  # lower-case username -> Client, for every client that has joined
        self.has_output = set()  # clients given output since the loop last sent
        self.features = [make(self) for make in features]
        self.commands = {}  # command word -> a feature's method(client, arguments)
        for feature in self.features:
            self.commands.update({word: getattr(feature, method)
                                  for word, method in feature.commands.items()})
        self.help = HELP + [line for f in self.features for line in f.help] + HELP_LAST

    # --8<-- [start:send]
    def send(self, client, text):
        """Queue one line for one client: the loop sends it when the socket is ready."""
        client.output += (text + "\n").encode("utf-8")
        self.has_output.add(client)

    def broadcast(self, text, sender=None):
        """Queue one line for everyone who has joined except the sender."""
        data = (text + "\n").encode("utf-8")  # encoded once, not once per user
        for client in self.users.values():
            if client is not sender:
                client.output += data
                self.has_output.add(client)
    # --8<-- [end:send]

    # --8<-- [start:join]
    def join(self, client, name):
        """Try to register a username; the client has joined if it is accepted."""
        if not VALID_USERNAME.fullmatch(name):
            self.send(client, "! Invalid username: use 1-16 letters, digits, _ or -")
            return
        # One thread, so nobody can take the name between our check and our taking it.
        if name.lower() in self.users:
            self.send(client, f"! Username {name} is taken")
            return
        client.name = name
        self.users[name.lower()] = client
        self.send(client, f"--- Welcome to the chat, {name}! Type /help for commands ---")
        for feature in self.features:
            feature.joined(client)
        self.broadcast(f"--- {name} has joined the chat ---", sender=client)
        print(f"{name} joined from {client.address}", flush=True)
    # --8<-- [end:join]

    # --8<-- [start:commands]
    def handle_line(self, client, line):
        """Act on one line from a user who has joined."""
        if not line.startswith("/"):
            chat_line = f"[{client.name}]: {line}"
            self.broadcast(chat_line, sender=client)
            for feature in self.features:
                feature.spoke(client, chat_line)
            return

        words = line.split(maxsplit=2)  # command word, then at most two arguments
        command = words[0].lower()
        if command in self.commands:  # a feature's: it gets the rest of the line
            self.commands[command](client, line[len(words[0]):].strip())
        elif command in ("/who", "/list", "/users"):
            names = sorted((user.name for user in self.users.values()), key=str.lower)
            self.send(client, f"--- Online ({len(names)}): {', '.join(names)} ---")
        elif command in ("/whisper", "/w", "/msg"):
            self.whisper(client, words[1:])
        elif command == "/help":
            for help_line in self.help:
                self.send(client, help_line)
        elif command == "/quit":
            self.send(client, f"--- Goodbye, {client.name}! ---")
            client.closing = True  # closed once the goodbye is sent
            self.gone(client)
        else:
            self.send(client, f"! Unknown command: {words[0]} (type /help)")

    def whisper(self, client, arguments):
        """Deliver a private message."""
        if len(arguments) < 2:
            self.send(client, "! Usage: /whisper <username> <message>")
            return
        target_name, text = arguments
        target = self.users.get(target_name.lower())
        if target is None:
            self.send(client, f"! No such user: {target_name}")
            return
        self.send(target, f"[{client.name} -> you]: {text}")
        self.send(client, f"[you -> {target.name}]: {text}")
        for feature in self.features:
            feature.spoke(client)
    # --8<-- [end:commands]

    # --8<-- [start:events]
    def received(self, client, data):
        """The loop read some bytes from a client: handle each complete line in turn."""
        for raw_line in client.splitter.feed(data):
            # After /quit, nothing more counts. And a client that asked for more
            # output than it may owe (say, thousands of /who in one read) is about
            # to be evicted: answering the rest would only waste memory.
            if client.closing or len(client.output) > MAX_OUTPUT:
                return
            if raw_line is TOO_LONG:
                self.send(client, f"! Line too long (max {MAX_LINE} bytes)")
                continue
            line = clean(raw_line)
            if not line:
                continue
            if client.name is None:
                self.join(client, line)
            else:
                self.handle_line(client, line)

    def gone(self, client):
        """A client left, however it left: announce it once if it had joined."""
        if client.name is None:  # never joined, or already announced
            return
        del self.users[client.name.lower()]
        for feature in self.features:
            feature.left(client)
        self.broadcast(f"--- {client.name} has left the chat ---")
        print(f"{client.name} left", flush=True)
        client.name = None
    # --8<-- [end:events]
