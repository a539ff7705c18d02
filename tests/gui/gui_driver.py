"""Runs phase 4's Tkinter client for a test, and lets the test drive it.

The test starts this script under a virtual display (Xvfb) and writes one
command a line on its stdin; each command runs inside the Tk loop (so the
window is exercised exactly as a person's clicks and key presses would) and
is answered with one JSON line on stdout:

    fill FIELD VALUE     type VALUE into the login form's Host, Port or Username
    connect              press the Connect button
    type TEXT            type TEXT into the input field and press Enter
    select NAME          click NAME in the user list
    state                the window's contents: messages, users, status...
    screenshot PATH      save a PNG of the screen (Pillow's ImageGrab)
"""

import json
import os
import queue
import sys
import threading
import tkinter as tk
from pathlib import Path

PHASE4 = Path(__file__).resolve().parents[2] / "phase4_select" / "extensions"
sys.path.insert(0, str(PHASE4))  # as when a learner runs python phase4_select/extensions/gui_client.py
import gui_client  # noqa: E402


def main():
    root = tk.Tk()
    window = gui_client.ChatWindow(root, "127.0.0.1", sys.argv[1], "", sys.argv[2])
    commands = queue.Queue()

    def read_stdin():
        for line in sys.stdin:
            commands.put(line.rstrip("\n"))
        commands.put("exit")

    def reply(**answer):
        print(json.dumps(answer), flush=True)

    def state():
        return {
            "title": root.title(),
            "login_visible": bool(window.login.winfo_ismapped()),
            "login_error": window.login_error.cget("text"),
            "messages": window.messages.get("1.0", "end").splitlines(),
            "users": list(window.users.get(0, "end")),
            "status": window.status.cget("text"),
            "entry_state": str(window.entry.cget("state")),
        }

    def run(command):
        verb, _, argument = command.partition(" ")
        if verb == "fill":
            field, _, value = argument.partition(" ")
            window.login_fields[field].delete(0, "end")
            window.login_fields[field].insert(0, value)
        elif verb == "connect":
            window.login_button.invoke()
        elif verb == "type":
            window.entry.focus_force()
            window.entry.insert("end", argument)
            window.entry.event_generate("<Return>")
        elif verb == "select":
            index = list(window.users.get(0, "end")).index(argument)
            window.users.selection_clear(0, "end")
            window.users.selection_set(index)
            window.users.event_generate("<<ListboxSelect>>")
            return reply(ok=True, entry=window.entry.get())
        elif verb == "state":
            return reply(ok=True, **state())
        elif verb == "screenshot":
            from PIL import ImageGrab

            root.update()
            x, y = root.winfo_rootx(), root.winfo_rooty()
            box = (x, y, x + root.winfo_width(), y + root.winfo_height())
            ImageGrab.grab(bbox=box, xdisplay=os.environ["DISPLAY"]).save(argument)
        elif verb == "exit":
            root.quit()  # ends mainloop()
            return
        else:
            return reply(ok=False, error=f"unknown command {verb}")
        reply(ok=True)

    def poll():
        while not commands.empty():
            run(commands.get())
        root.after(20, poll)

    threading.Thread(target=read_stdin, daemon=True).start()
    root.after(20, poll)
    root.mainloop()


if __name__ == "__main__":
    main()
