"""Chat history: a newcomer sees the last chat lines right after its welcome.

A feature (see Feature in chat.py). A deque with a maximum length keeps
only the newest lines: appending to a full one drops the oldest.
"""

from collections import deque

try:  # run as a module (python -m phase4_select.extensions.server)...
    from .chat import Feature
except ImportError:  # ...or as a script (python phase4_select/extensions/server.py)
    from chat import Feature

HISTORY_LINES = 20  # chat lines a newcomer is shown


# --8<-- [start:history]
class History(Feature):
    def __init__(self, chat):
        super().__init__(chat)
        self.lines = deque(maxlen=HISTORY_LINES)  # the latest chat lines, as relayed

    def spoke(self, client, chat_line=None):
        if chat_line is not None:  # whispers are nobody else's business
            self.lines.append(chat_line)

    def joined(self, client):
        if not self.lines:
            return
        count = len(self.lines)
        self.chat.send(client, f"--- Last {count} message{'s' if count > 1 else ''} ---")
        for chat_line in self.lines:
            self.chat.send(client, chat_line)
        self.chat.send(client, "--- End of history ---")
# --8<-- [end:history]
