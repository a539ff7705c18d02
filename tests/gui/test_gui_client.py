"""The Tkinter client (phase4_select/extensions/gui_client.py) in a real window, on a virtual display.

Xvfb gives the window a real X server to draw on; tests/gui/gui_driver.py runs the
client and carries out the test's commands inside the Tk loop. The server and the
other user are real too: a phase 4 server and a plain TCP connection.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import Conn, ServerProcess

pytestmark = pytest.mark.repo

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "build" / "screenshots" / "gui-client.png"
WAIT = 5.0  # seconds for the window to show something


@pytest.fixture
def display():
    """A fresh virtual X display; skips, saying how to get one, where there is none."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the GUI test runs on Linux, under Xvfb")
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed: run `apt-get install -y xvfb` to test the Tkinter client")
    try:
        import tkinter  # noqa: F401
    except ImportError:
        pytest.skip("this Python has no tkinter: install python3-tk (or a Python built with Tk)")
    read_end, write_end = os.pipe()
    # -displayfd: Xvfb picks a free display number itself and writes it to us (no races).
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=[write_end], stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as numbers:
        number = numbers.readline().strip()
    if not number:
        xvfb.kill()
        pytest.skip("Xvfb did not start here (it printed no display number)")
    yield f":{number}"
    xvfb.terminate()
    xvfb.wait(5)


class Window:
    """The running GUI client, driven through gui_driver.py's commands."""

    def __init__(self, display, port, downloads):
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("gui_driver.py")), str(port), str(downloads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "DISPLAY": display})

    def do(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"the GUI client died while running {command!r}"
        return json.loads(answer)

    def wait_for(self, what, condition):
        """Poll the window's state until condition(state) holds, or fail saying what."""
        deadline = time.monotonic() + WAIT
        while True:
            state = self.do("state")
            if condition(state):
                return state
            if time.monotonic() > deadline:
                pytest.fail(f"the window never showed {what} within {WAIT} s; it shows:\n"
                            + json.dumps(state, indent=2, ensure_ascii=False))
            time.sleep(0.02)  # polling a condition with a deadline, not waiting for time

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


@pytest.fixture
def server():
    with ServerProcess([sys.executable, str(ROOT / "phase4_select" / "extensions" / "server.py"),
                        "--host", "{host}", "--port", "{port}"]) as running:
        yield running


@pytest.fixture
def window(display, server, tmp_path):
    gui = Window(display, server.port, tmp_path / "downloads")
    yield gui
    gui.close()


def test_the_gui_client_chats_tracks_users_and_survives_the_server_stopping(window, server):
    bob = Conn(server.host, server.port, name="bob")
    bob.send_line("bob")
    bob.expect("--- Welcome to the chat, bob! Type /help for commands ---")

    # A taken name is refused on the login form, and another try on the same form works.
    window.do("fill Username BOB")
    window.do("connect")
    window.wait_for("the server's refusal", lambda s: "Username BOB is taken" in s["login_error"])
    window.do("fill Username gui")
    window.do("connect")
    window.wait_for("the chat with both users listed",
                    lambda s: not s["login_visible"] and s["users"] == ["bob", "gui"])
    bob.expect("--- gui has joined the chat ---")

    bob.send_line("hello gui")
    window.wait_for("bob's message", lambda s: "[bob]: hello gui" in s["messages"])
    window.do("type hi bob")
    bob.expect("[gui]: hi bob")

    carol = Conn(server.host, server.port, name="carol")
    carol.send_line("carol")
    window.wait_for("carol in the user list", lambda s: s["users"] == ["bob", "carol", "gui"])
    carol.send_line("/nick Caroline")
    window.wait_for("carol renamed", lambda s: s["users"] == ["bob", "Caroline", "gui"])
    carol.close()
    window.wait_for("Caroline gone from the list", lambda s: s["users"] == ["bob", "gui"])
    bob.expect("--- carol has joined the chat ---")
    bob.expect("--- carol is now known as Caroline ---")
    bob.expect("--- Caroline has left the chat ---")

    # Clicking a name starts a whisper to that user.
    assert window.do("select bob")["entry"] == "/whisper bob "
    window.do("type secret")  # the field now holds "/whisper bob secret"
    bob.expect("[gui -> you]: secret")
    window.wait_for("the whisper, styled apart", lambda s: "[you -> bob]: secret" in s["messages"])

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    window.do(f"screenshot {SCREENSHOT}")
    assert SCREENSHOT.stat().st_size > 5000, "the screenshot is empty"

    server.stop()
    state = window.wait_for("the lost connection",
                            lambda s: s["entry_state"] == "disabled" and "Disconnected" in s["status"])
    assert "--- Server shutting down ---" in state["messages"]
    # Still responsive: the Tk loop answers after the server is gone.
    assert window.do("state")["ok"]


def test_the_gui_client_receives_a_file_into_its_downloads_folder(window, server, tmp_path):
    window.do("fill Username gui")
    window.do("connect")
    window.wait_for("the chat", lambda s: not s["login_visible"])
    alice = Conn(server.host, server.port, name="alice")
    alice.send_line("alice")
    alice.expect("--- Welcome to the chat, alice! Type /help for commands ---")
    alice.send_line("/file gui 5 ../../hello.txt")
    alice.send_line("/filedata aGVsbG8=")
    alice.send_line("/fileend")
    alice.expect("--- Sent ../../hello.txt (5 bytes) to gui ---")
    saved = tmp_path / "downloads" / "hello.txt"
    window.wait_for("where the file was saved",
                    lambda s: f"--- Saved ../../hello.txt from alice as {saved} ---" in s["messages"])
    assert saved.read_bytes() == b"hello"
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["hello.txt"]
