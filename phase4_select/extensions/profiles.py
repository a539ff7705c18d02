"""Nicknames, statuses and activity: /nick, /status, /whois, and /who with statuses.

A feature (see Feature in chat.py): it keeps what it knows about each user
in its own dictionaries and only touches the chat through the chat's own
methods and its users dictionary.
"""

import time

try:  # run as a module (python -m phase4_select.extensions.server)...
    from .chat import VALID_USERNAME, Feature
except ImportError:  # ...or as a script (python phase4_select/extensions/server.py)
    from chat import VALID_USERNAME, Feature

MAX_STATUS = 64  # characters in a /status text


# --8<-- [start:profiles]
class Profiles(Feature):
    commands = {"/nick": "rename", "/status": "set_status", "/whois": "whois",
                "/who": "who", "/list": "who", "/users": "who"}
    help = [
        "--- /nick NAME: change your name ---",
        "--- /status TEXT: set a status shown by /who (/status alone clears it) ---",
        "--- /whois NAME: how long NAME has been online and idle ---",
    ]

    def __init__(self, chat):
        super().__init__(chat)
        self.status = {}  # Client -> its status text, for users who set one
        self.joined_at = {}  # Client -> time.monotonic() when it joined
        self.last_spoke = {}  # Client -> when it last sent a chat line or a whisper

    def joined(self, client):
        self.joined_at[client] = self.last_spoke[client] = time.monotonic()

    def spoke(self, client, chat_line=None):
        self.last_spoke[client] = time.monotonic()

    def left(self, client):
        for table in (self.status, self.joined_at, self.last_spoke):
            table.pop(client, None)

    def shown_name(self, user):
        """A name as /who and /whois show it: with its status, if it has one."""
        status = self.status.get(user)
        return f"{user.name} ({status})" if status else user.name
# --8<-- [end:profiles]

    # --8<-- [start:who]
    def who(self, client, arguments):
        online = sorted(self.chat.users.values(), key=lambda user: user.name.lower())
        names = [self.shown_name(user) for user in online]
        self.chat.send(client, f"--- Online ({len(names)}): {', '.join(names)} ---")
    # --8<-- [end:who]

    # --8<-- [start:nick]
    def rename(self, client, arguments):
        words = arguments.split()
        if len(words) != 1:
            self.chat.send(client, "! Usage: /nick <new name>")
            return
        new_name = words[0]
        for feature in self.chat.features:
            problem = feature.refuse_rename(client)
            if problem:
                self.chat.send(client, problem)
                return
        problem = self.name_problem(new_name, client)
        if problem:
            self.chat.send(client, problem)
            return
        old_name = client.name
        del self.chat.users[old_name.lower()]
        client.name = new_name
        self.chat.users[new_name.lower()] = client
        self.chat.send(client, f"--- You are now known as {new_name} ---")
        self.chat.broadcast(f"--- {old_name} is now known as {new_name} ---", sender=client)

    def name_problem(self, name, client):
        """Why client cannot take this name, or None (a new case of its own name is fine)."""
        if not VALID_USERNAME.fullmatch(name):
            return "! Invalid username: use 1-16 letters, digits, _ or -"
        holder = self.chat.users.get(name.lower())
        if holder is not None and holder is not client:
            return f"! Username {name} is taken"
        return None
    # --8<-- [end:nick]

    # --8<-- [start:status]
    def set_status(self, client, text):
        if len(text) > MAX_STATUS:
            self.chat.send(client, f"! Status too long (max {MAX_STATUS} characters)")
            return
        if text:
            self.status[client] = text
            self.chat.send(client, f"--- Status set: {text} ---")
        else:
            self.status.pop(client, None)
            self.chat.send(client, "--- Status cleared ---")
    # --8<-- [end:status]

    # --8<-- [start:whois]
    def whois(self, client, arguments):
        words = arguments.split()
        if len(words) != 1:
            self.chat.send(client, "! Usage: /whois <username>")
            return
        user = self.chat.users.get(words[0].lower())
        if user is None:
            self.chat.send(client, f"! No such user: {words[0]}")
            return
        now = time.monotonic()
        online = duration(now - self.joined_at[user])
        idle = duration(now - self.last_spoke[user])
        self.chat.send(client, f"--- {self.shown_name(user)}: online {online}, idle {idle} ---")


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
