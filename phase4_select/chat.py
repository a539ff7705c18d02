"""The chat itself: what phase 4's server says, and to whom.

server.py moves bytes between sockets; this module decides what the bytes
mean. It never touches a socket. To talk to a client it appends a line to
that client's output buffer (send), and the event loop in server.py sends
the buffer when the socket can take it. Keeping the protocol apart from the
I/O is how real servers are built: the same chat could run on threads, on
asyncio, or in a test with no network at all.

The protocol is phase 3's (docs/protocol.md), plus the extensions of the
"Going further" chapter: /nick, /status, /whois, chat history for newcomers,
and relaying files from one user to another.
"""

import base64
import re
import time
from collections import deque

MAX_LINE = 1024  # bytes in one line, not counting its "\n"
MAX_STATUS = 64  # characters in a /status text
MAX_FILE = 1024 * 1024  # bytes in a shared file
HISTORY_LINES = 20  # chat lines a newcomer is shown
VALID_USERNAME = re.compile(r"[A-Za-z0-9_-]{1,16}")
# C0 controls except tab, DEL, and C1 controls: the characters a terminal may
# obey instead of printing (an escape sequence can clear someone's screen).
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")

HELP = [
    "--- /who (or /list, /users): see who is online ---",
    "--- /whisper NAME TEXT (or /w, /msg): send TEXT to NAME only ---",
    "--- /nick NAME: change your name ---",
    "--- /status TEXT: set a status shown by /who (/status alone clears it) ---",
    "--- /whois NAME: how long NAME has been online and idle ---",
    "--- /help: show this help ---",
    "--- /quit: leave the chat ---",
]

TOO_LONG = None  # stands in for a line that broke the MAX_LINE limit


# --8<-- [start:framing]
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
# --8<-- [end:framing]


# --8<-- [start:state]
class Client:
    """What the server remembers about one connection between events.

    In phase 3 this lived in the local variables of the client's thread; with
    one thread for everyone, it has to live in an object.
    """

    def __init__(self, sock, address):
        self.sock = sock  # used by server.py only
        self.address = address
        self.name = None  # None until the client has joined
        self.splitter = LineSplitter()
        self.output = bytearray()  # bytes queued for this client, not sent yet
        self.quitting = False  # said /quit: server.py closes it once its goodbye is sent
        self.status = ""
        self.joined_at = self.last_spoke = time.monotonic()
        self.sending = None  # the FileTransfer this user is sending, if any


users = {}  # lower-case username -> Client, for every client that has joined
to_flush = set()  # clients given new output since the event loop last sent
history = deque(maxlen=HISTORY_LINES)  # the latest chat lines; old ones fall off
# --8<-- [end:state]


# --8<-- [start:output]
def send(client, text):
    """Queue one line for one client."""
    client.output += (text + "\n").encode("utf-8")
    to_flush.add(client)


def broadcast(text, sender=None):
    """Queue one line for every user except the sender."""
    data = (text + "\n").encode("utf-8")  # encoded once, not once per user
    for client in users.values():
        if client is not sender:
            client.output += data
            to_flush.add(client)
# --8<-- [end:output]


# --8<-- [start:receive]
def receive(client, data):
    """Handle bytes that arrived from a client: each complete line in turn."""
    for raw_line in client.splitter.feed(data):
        if client.quitting:  # ignore anything sent after /quit
            return
        if raw_line is TOO_LONG:
            send(client, f"! Line too long (max {MAX_LINE} bytes)")
            continue
        line = clean(raw_line)
        if not line:
            continue
        if client.name is None:
            join(client, line)
        elif line.startswith("/"):
            handle_command(client, line)
        else:
            chat_line = f"[{client.name}]: {line}"
            broadcast(chat_line, sender=client)
            history.append(chat_line)
            client.last_spoke = time.monotonic()
# --8<-- [end:receive]


# --8<-- [start:join]
def name_problem(name, renaming=None):
    """Why a username cannot be had, or None if it can (renaming: who asks)."""
    if not VALID_USERNAME.fullmatch(name):
        return "! Invalid username: use 1-16 letters, digits, _ or -"
    holder = users.get(name.lower())
    if holder is not None and holder is not renaming:  # a new case of your own name is yours
        return f"! Username {name} is taken"
    return None


def join(client, name):
    problem = name_problem(name)
    if problem:
        send(client, problem)
        return
    client.name = name
    users[name.lower()] = client
    client.joined_at = client.last_spoke = time.monotonic()
    send(client, f"--- Welcome to the chat, {name}! Type /help for commands ---")
    # --8<-- [start:history]
    if history:
        send(client, f"--- Last {len(history)} messages ---")
        for chat_line in history:
            send(client, chat_line)
        send(client, "--- End of history ---")
    # --8<-- [end:history]
    broadcast(f"--- {name} has joined the chat ---", sender=client)
    print(f"{name} joined from {client.address}", flush=True)


def leave(client):
    """Forget a user and tell everyone it left: once, whatever the reason."""
    if client.name is None:  # never joined, or already left
        return
    del users[client.name.lower()]
    cancel_transfers_involving(client)
    broadcast(f"--- {client.name} has left the chat ---")
    print(f"{client.name} left", flush=True)
    client.name = None
# --8<-- [end:join]


# --8<-- [start:commands]
def handle_command(client, line):
    words = line.split(maxsplit=2)  # command word, then at most two arguments
    command, arguments = words[0].lower(), words[1:]
    if command in ("/who", "/list", "/users"):
        online = sorted(users.values(), key=lambda user: user.name.lower())
        names = [f"{user.name} ({user.status})" if user.status else user.name for user in online]
        send(client, f"--- Online ({len(names)}): {', '.join(names)} ---")
    elif command in ("/whisper", "/w", "/msg"):
        whisper(client, arguments)
    elif command == "/help":
        for help_line in HELP:
            send(client, help_line)
    elif command == "/quit":
        send(client, f"--- Goodbye, {client.name}! ---")
        client.quitting = True
        leave(client)
    elif command == "/nick":
        rename(client, arguments)
    elif command == "/status":
        set_status(client, line[len(words[0]):].strip())
    elif command == "/whois":
        whois(client, arguments)
    elif command in FILE_COMMANDS:
        FILE_COMMANDS[command](client, line[len(words[0]):].strip())
    else:
        send(client, f"! Unknown command: {words[0]} (type /help)")


def whisper(client, arguments):
    if len(arguments) < 2:
        send(client, "! Usage: /whisper <username> <message>")
        return
    target_name, text = arguments
    target = users.get(target_name.lower())
    if target is None:
        send(client, f"! No such user: {target_name}")
        return
    send(target, f"[{client.name} -> you]: {text}")
    send(client, f"[you -> {target.name}]: {text}")
    client.last_spoke = time.monotonic()
# --8<-- [end:commands]


# --8<-- [start:extensions]
# --8<-- [start:nick]
def rename(client, arguments):
    if len(arguments) != 1:
        send(client, "! Usage: /nick <new name>")
        return
    new_name = arguments[0]
    if client.sending is not None and not client.sending.cancelled:  # known by our name
        send(client, "! Finish sending your file first")
        return
    problem = name_problem(new_name, renaming=client)
    if problem:
        send(client, problem)
        return
    old_name = client.name
    del users[old_name.lower()]
    client.name = new_name
    users[new_name.lower()] = client
    send(client, f"--- You are now known as {new_name} ---")
    broadcast(f"--- {old_name} is now known as {new_name} ---", sender=client)
# --8<-- [end:nick]


# --8<-- [start:status]
def set_status(client, text):
    if len(text) > MAX_STATUS:
        send(client, f"! Status too long (max {MAX_STATUS} characters)")
        return
    client.status = text
    send(client, f"--- Status set: {text} ---" if text else "--- Status cleared ---")
# --8<-- [end:status]


# --8<-- [start:whois]
def whois(client, arguments):
    if len(arguments) != 1:
        send(client, "! Usage: /whois <username>")
        return
    user = users.get(arguments[0].lower())
    if user is None:
        send(client, f"! No such user: {arguments[0]}")
        return
    now = time.monotonic()
    status = f" ({user.status})" if user.status else ""
    online, idle = duration(now - user.joined_at), duration(now - user.last_spoke)
    send(client, f"--- {user.name}{status}: online {online}, idle {idle} ---")


def duration(seconds):
    """Format a number of seconds as 42s, 5m 3s or 2h 0m 7s."""
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"
# --8<-- [end:whois]
# --8<-- [end:extensions]


# --8<-- [start:files]
class FileTransfer:
    """A file on its way from one user to another, base64 line by base64 line."""

    def __init__(self, sender, target, size, filename):
        self.sender, self.target = sender, target
        self.size, self.filename = size, filename
        self.received = 0  # bytes relayed so far
        self.cancelled = False  # the rest of its lines are dropped quietly

    def tell_target(self, what):
        send(self.target, f"[file from {self.sender.name}]: {what}")

    def cancel(self, reason):
        send(self.sender, f"! File transfer cancelled: {reason}")
        self.tell_target("cancel")
        self.cancelled = True


def file_begin(client, arguments):
    """/file NAME SIZE FILENAME: start sending a file to NAME."""
    words = arguments.split(maxsplit=2)
    if client.sending is not None and not client.sending.cancelled:
        send(client, "! Finish sending your file first")
        return
    if len(words) < 3 or not words[1].isdecimal():  # isdigit() would let "²" through
        problem = "! Usage: /file <username> <size> <filename>"
    elif words[0].lower() not in users:
        problem = f"! No such user: {words[0]}"
    elif int(words[1]) > MAX_FILE:
        problem = f"! File too large (max {MAX_FILE} bytes)"
    else:
        target, size, filename = users[words[0].lower()], int(words[1]), words[2]
        client.sending = FileTransfer(client, target, size, filename)
        client.sending.tell_target(f"begin {size} {filename}")
        return
    send(client, problem)
    # The sender's client has most likely sent the whole file already: its lines
    # are dropped quietly, as for a cancelled file, not answered one by one.
    client.sending = FileTransfer(client, None, 0, "")
    client.sending.cancelled = True


def file_data(client, encoded):
    """/filedata BASE64: the next piece of the file."""
    transfer = client.sending
    if transfer is None:
        send(client, "! No file transfer in progress")
        return
    if transfer.cancelled:
        return
    try:
        transfer.received += len(base64.b64decode(encoded, validate=True))
    except ValueError:  # binascii.Error, or characters that are not even ASCII
        transfer.cancel("bad file data")
        return
    if transfer.received > transfer.size:
        transfer.cancel("more data than the size announced")
        return
    transfer.tell_target(f"data {encoded}")


def file_end(client, arguments):
    """/fileend: the file is complete."""
    transfer, client.sending = client.sending, None
    if transfer is None:
        send(client, "! No file transfer in progress")
    elif transfer.cancelled:
        return
    elif transfer.received != transfer.size:
        transfer.cancel("less data than the size announced")
    else:
        transfer.tell_target("end")
        send(client, f"--- Sent {transfer.filename} ({transfer.size} bytes) to {transfer.target.name} ---")


def cancel_transfers_involving(client):
    """A user is leaving: stop the files it sends or receives."""
    if client.sending is not None and not client.sending.cancelled:
        client.sending.tell_target("cancel")
    for user in users.values():
        transfer = user.sending
        if transfer is not None and transfer.target is client and not transfer.cancelled:
            send(user, f"! File transfer cancelled: {client.name} left")
            transfer.cancelled = True


FILE_COMMANDS = {"/file": file_begin, "/filedata": file_data, "/fileend": file_end}
# --8<-- [end:files]
