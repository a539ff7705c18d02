"""Phase 4 with extensions: a graphical chat client, with Tkinter.

The same protocol as client.py, in a window: a scrolling message area, an
input field (Enter sends), the list of who is online (kept current from the
join, leave and rename notices), and a status bar. Click a name to whisper.

The one rule of GUI programming: never block the GUI's thread. Tkinter runs
everything (drawing, clicks, key presses) in one loop, mainloop(); a recv()
or a sendall() in that loop would freeze the window until the network
answers. So the network has threads of its own, and they talk to the window
only through queues: a reader thread puts each line from the server on a
queue.Queue that the Tk loop polls every 50 ms with after(), and the Tk loop
puts what you type on another queue that a writer thread sends.

Run it:  python phase4_select/extensions/gui_client.py [--host HOST] [--port PORT] [--name NAME]
"""

import argparse
import os
import queue
import socket
import threading
import tkinter as tk
from tkinter import filedialog, scrolledtext

try:  # run as a module (python -m phase4_select.extensions.gui_client)...
    from .client import CONTROL_CHARACTERS, Downloads, file_lines
except ImportError:  # ...or as a script (python phase4_select/extensions/gui_client.py)
    from client import CONTROL_CHARACTERS, Downloads, file_lines

POLL_MS = 50  # how often the Tk loop looks at the incoming queue


# --8<-- [start:network]
class Connection:
    """A connection to the server, run by two threads that never touch Tk."""

    def __init__(self, host, port):
        self.incoming = queue.Queue()  # ("line", text) or ("closed", reason), for the GUI
        self.outgoing = queue.Queue()  # lines to send; None stops the writer
        self.sock = None
        threading.Thread(target=self.run, args=(host, port), daemon=True).start()

    def run(self, host, port):
        """The reader thread: connect, then pass every line to the GUI."""
        try:
            self.sock = socket.create_connection((host, port), timeout=10)
            self.sock.settimeout(None)  # the timeout was for connecting only
        except OSError as error:
            reason = (error.strerror or str(error)).lower()
            self.incoming.put(("closed", f"Could not connect to {host}:{port}: {reason}"))
            return
        self.incoming.put(("connected", f"{host}:{port}"))
        threading.Thread(target=self.write, daemon=True).start()
        try:
            for line in self.sock.makefile("r", encoding="utf-8", errors="replace", newline="\n"):
                self.incoming.put(("line", CONTROL_CHARACTERS.sub("", line.rstrip("\n"))))
        except OSError:
            pass
        self.incoming.put(("closed", "Disconnected from server"))

    def write(self):
        """The writer thread: send queued lines, so a slow server never blocks the GUI."""
        while (line := self.outgoing.get()) is not None:
            try:
                self.sock.sendall((line + "\n").encode("utf-8"))
            except OSError:
                return

    def send(self, line):
        self.outgoing.put(line)

    def close(self):
        self.outgoing.put(None)
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the reader thread up
            except OSError:
                pass
# --8<-- [end:network]


class ChatWindow:
    """The window: a login form first, then the chat."""

    def __init__(self, root, host, port, name, downloads):
        self.root = root
        self.connection = None
        self.name = None  # set once the server welcomes us
        self.downloads = Downloads(downloads)
        root.title("Chat")
        root.minsize(560, 360)
        self.build_login(host, port, name)
        self.build_chat()
        root.protocol("WM_DELETE_WINDOW", self.quit)
        root.after(POLL_MS, self.poll)

    # --8<-- [start:widgets]
    def build_login(self, host, port, name):
        self.login = tk.Frame(self.root, padx=16, pady=16)
        self.login_fields = {}
        for row, (label, value) in enumerate([("Host", host), ("Port", port), ("Username", name)]):
            tk.Label(self.login, text=label).grid(row=row, column=0, sticky="w", pady=2)
            entry = tk.Entry(self.login, width=28)
            entry.insert(0, str(value))
            entry.grid(row=row, column=1, pady=2)
            self.login_fields[label] = entry
        self.login_button = tk.Button(self.login, text="Connect", command=self.connect)
        self.login_button.grid(row=3, column=1, sticky="e", pady=6)
        self.login_error = tk.Label(self.login, fg="#b00020", wraplength=320, justify="left")
        self.login_error.grid(row=4, column=0, columnspan=2, sticky="w")
        self.login_fields["Username"].bind("<Return>", lambda event: self.connect())
        self.login.pack(expand=True)

    def build_chat(self):
        self.chat = tk.Frame(self.root)
        self.status = tk.Label(self.chat, anchor="w", relief="sunken", padx=6)
        self.status.pack(side="bottom", fill="x")
        side = tk.Frame(self.chat, padx=4)
        side.pack(side="right", fill="y")
        tk.Label(side, text="Online (click to whisper)", anchor="w").pack(fill="x")
        self.users = tk.Listbox(side, width=22, exportselection=False)
        self.users.pack(fill="y", expand=True)
        self.users.bind("<<ListboxSelect>>", self.whisper_to_selected)
        bottom = tk.Frame(self.chat)
        bottom.pack(side="bottom", fill="x")
        tk.Button(bottom, text="Send file…", command=self.choose_file).pack(side="right")
        self.entry = tk.Entry(bottom)
        self.entry.pack(side="left", fill="x", expand=True)
        self.entry.bind("<Return>", self.send_typed)
        self.messages = scrolledtext.ScrolledText(self.chat, wrap="word", state="disabled")
        self.messages.pack(side="left", fill="both", expand=True)
        # Tags style lines by kind: news, errors and whispers stand apart from chat.
        self.messages.tag_configure("system", foreground="#00707f")
        self.messages.tag_configure("error", foreground="#b00020")
        self.messages.tag_configure("whisper", foreground="#8e24aa", font=("TkDefaultFont", 10, "italic"))
    # --8<-- [end:widgets]

    def connect(self):
        name = self.login_fields["Username"].get().strip()
        if self.connection is None:  # the first try; later tries reuse the connection
            host = self.login_fields["Host"].get().strip()
            try:
                port = int(self.login_fields["Port"].get())
                if not 0 < port <= 65535:
                    raise ValueError(port)
            except ValueError:
                self.login_error.config(text="The port must be a number from 1 to 65535.")
                return
            self.connection = Connection(host, port)
            self.address = f"{host}:{port}"
        self.login_error.config(text="Connecting…")
        self.login_button.config(state="disabled")
        self.connection.send(name)

    # --8<-- [start:poll]
    def poll(self):
        """Runs in the Tk loop every POLL_MS: handle whatever the network sent."""
        while self.connection is not None:
            try:
                kind, text = self.connection.incoming.get_nowait()
            except queue.Empty:
                break
            if kind == "line" and self.name is None:
                self.answer_to_login(text)
            elif kind == "line":
                shown = self.downloads.handle(text)
                if shown is not None:
                    self.show(shown)
                    self.track_users(shown)
            elif kind == "closed":
                self.lost(text)
        self.root.after(POLL_MS, self.poll)
    # --8<-- [end:poll]

    def answer_to_login(self, text):
        if text.startswith("!"):  # refused: show why and let the user try another name
            self.login_error.config(text=text[2:])
            self.login_button.config(state="normal")
            return
        self.name = text.removeprefix("--- Welcome to the chat, ").split("!")[0]
        self.login.pack_forget()
        self.chat.pack(fill="both", expand=True)
        self.root.title(f"Chat: {self.name}")
        self.set_status(f"Connected to {self.address} as {self.name}")
        self.show(text)
        self.entry.focus_set()
        self.connection.send("/who")  # fills the user list

    def lost(self, reason):
        if self.name is None:  # still at the login form
            self.login_error.config(text=reason)
            self.login_button.config(state="normal")
            self.connection = None
            return
        self.show(f"! {reason}")
        self.set_status(f"{reason} ({self.address})")
        self.entry.config(state="disabled")
        self.connection = None

    # --8<-- [start:users]
    def track_users(self, line):
        """Keep the user list current from the server's notices."""
        names = list(self.users.get(0, "end"))
        if line.startswith("--- Online (") and line.endswith(" ---"):
            listed = line[:-4].split(": ", 1)[1]
            names = [entry.split(" (")[0] for entry in listed.split(", ")]
        elif line.endswith(" has joined the chat ---"):
            names.append(line[4:].split(" ")[0])
        elif line.endswith(" has left the chat ---"):
            names = [name for name in names if name != line[4:].split(" ")[0]]
        elif " is now known as " in line and line.startswith("--- "):
            old, new = line[4:-4].split(" is now known as ")
            names = [new if name == old else name for name in names]
        elif line.startswith("--- You are now known as "):
            new = line[4:-4].split(" as ")[1]
            names = [new if name == self.name else name for name in names]
            self.name = new
            self.set_status(f"Connected to {self.address} as {new}")
        else:
            return
        self.users.delete(0, "end")
        for name in sorted(names, key=str.lower):
            self.users.insert("end", name)
    # --8<-- [end:users]

    def show(self, line):
        if line.startswith("!"):
            tag = "error"
        elif line.startswith("---"):
            tag = "system"
        elif line.startswith("[") and " -> " in line.split("]:", 1)[0]:
            tag = "whisper"
        else:
            tag = ()
        self.messages.config(state="normal")  # read-only, except while we add a line
        self.messages.insert("end", line + "\n", tag)
        self.messages.config(state="disabled")
        self.messages.see("end")

    def set_status(self, text):
        self.status.config(text=text)

    def send_typed(self, event=None):
        line = self.entry.get()
        self.entry.delete(0, "end")
        if not line.strip() or self.connection is None:
            return
        words = line.split(maxsplit=2)
        if words[0] == "/sendfile" and len(words) == 3:
            self.send_file(words[1], words[2])
            return
        if not line.startswith("/"):
            self.show(f"[{self.name}]: {line}")  # the server sends our own lines to others only
        self.connection.send(line)
        if line.strip() == "/quit":
            self.entry.config(state="disabled")

    def send_file(self, name, path):
        try:
            lines = file_lines(name, path)
        except (OSError, ValueError) as error:
            self.show(f"! Cannot send {path}: {getattr(error, 'strerror', None) or error}")
            return
        for line in lines:
            self.connection.send(line)

    def choose_file(self):
        selected = self.users.curselection()
        if not selected or self.connection is None:
            self.show("! Pick someone in the list first, then Send file…")
            return
        path = filedialog.askopenfilename(parent=self.root, title="Send a file")
        if path:
            self.send_file(self.users.get(selected[0]), path)

    def whisper_to_selected(self, event=None):
        selected = self.users.curselection()
        if selected and self.entry.cget("state") == "normal":
            self.entry.delete(0, "end")
            self.entry.insert(0, f"/whisper {self.users.get(selected[0])} ")
            self.entry.focus_set()

    def quit(self):
        if self.connection is not None:
            self.connection.send("/quit")
            self.connection.close()
        self.root.destroy()


def main():
    parser = argparse.ArgumentParser(description="Phase 4: graphical chat client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    parser.add_argument("--name", default=os.environ.get("USER", ""), help="the username to suggest")
    parser.add_argument("--downloads", default="downloads", help="where received files go")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    try:
        root = tk.Tk()
    except tk.TclError as error:  # no display: say so instead of a traceback
        raise SystemExit(f"Cannot open a window: {error}")
    ChatWindow(root, args.host, args.port, args.name, args.downloads)
    root.mainloop()


if __name__ == "__main__":
    main()
