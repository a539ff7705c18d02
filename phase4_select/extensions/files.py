"""File sharing: /file, /filedata and /fileend relay a file from one user to another.

A feature (see Feature in chat.py). The file travels as base64 in ordinary
lines, so every line stays under the line limit; the server checks and
relays each piece and never writes anything to disk.
"""

import base64

try:  # run as a module (python -m phase4_select.extensions.server)...
    from .chat import Feature
except ImportError:  # ...or as a script (python phase4_select/extensions/server.py)
    from chat import Feature

MAX_FILE = 1024 * 1024  # bytes in a shared file


# --8<-- [start:transfer]
class FileTransfer:
    """A file on its way from one user to another, base64 line by base64 line."""

    def __init__(self, chat, sender, target, size, filename):
        self.chat = chat
        self.sender, self.target = sender, target
        self.size, self.filename = size, filename
        self.received = 0  # bytes relayed so far
        self.cancelled = False  # the rest of its lines are dropped quietly

    def tell_target(self, what):
        self.chat.send(self.target, f"[file from {self.sender.name}]: {what}")

    def cancel(self, reason):
        self.chat.send(self.sender, f"! File transfer cancelled: {reason}")
        self.tell_target("cancel")
        self.cancelled = True
# --8<-- [end:transfer]


# --8<-- [start:files]
class Files(Feature):
    commands = {"/file": "begin", "/filedata": "data", "/fileend": "end"}

    def __init__(self, chat):
        super().__init__(chat)
        self.sending = {}  # Client -> the FileTransfer it is sending

    def active(self, client):
        """The file client is sending, if it is not finished or cancelled."""
        transfer = self.sending.get(client)
        return transfer if transfer is not None and not transfer.cancelled else None

    def begin(self, client, arguments):
        """/file NAME SIZE FILENAME: start sending a file to NAME."""
        words = arguments.split(maxsplit=2)
        if self.active(client):
            self.chat.send(client, "! Finish sending your file first")
            return
        users = self.chat.users
        if len(words) < 3 or not words[1].isdecimal():  # isdigit() would let "²" through
            problem = "! Usage: /file <username> <size> <filename>"
        elif words[0].lower() not in users:
            problem = f"! No such user: {words[0]}"
        elif int(words[1]) > MAX_FILE:
            problem = f"! File too large (max {MAX_FILE} bytes)"
        else:
            target, size, filename = users[words[0].lower()], int(words[1]), words[2]
            self.sending[client] = FileTransfer(self.chat, client, target, size, filename)
            self.sending[client].tell_target(f"begin {size} {filename}")
            return
        self.chat.send(client, problem)
        # The sender's client has most likely sent the whole file already: its lines
        # are dropped quietly, as for a cancelled file, not answered one by one.
        self.sending[client] = FileTransfer(self.chat, client, None, 0, "")
        self.sending[client].cancelled = True

    def data(self, client, encoded):
        """/filedata BASE64: the next piece of the file."""
        transfer = self.sending.get(client)
        if transfer is None:
            self.chat.send(client, "! No file transfer in progress")
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

    def end(self, client, arguments):
        """/fileend: the file is complete."""
        transfer = self.sending.pop(client, None)
        if transfer is None:
            self.chat.send(client, "! No file transfer in progress")
        elif transfer.cancelled:
            return
        elif transfer.received != transfer.size:
            transfer.cancel("less data than the size announced")
        else:
            transfer.tell_target("end")
            self.chat.send(client, f"--- Sent {transfer.filename} ({transfer.size} bytes) "
                                   f"to {transfer.target.name} ---")
# --8<-- [end:files]

    # --8<-- [start:hooks]
    def refuse_rename(self, client):
        if self.active(client):  # the receiver knows the file by its sender's name
            return "! Finish sending your file first"
        return None

    def left(self, client):
        """A user is leaving: stop the files it sends or receives."""
        transfer = self.sending.pop(client, None)
        if transfer is not None and not transfer.cancelled:
            transfer.tell_target("cancel")
        for sender, transfer in self.sending.items():
            if transfer.target is client and not transfer.cancelled:
                self.chat.send(sender, f"! File transfer cancelled: {client.name} left")
                transfer.cancelled = True
    # --8<-- [end:hooks]
