"""Phase 4: the chat client, the same as phase 3's.

The protocol did not change, so neither did the client. Why does it keep
its two threads when the server moved to one select() loop? A client has
only two things to wait for, the server and your keyboard, so threads cost
it nothing, and a select() loop over stdin is not portable: on Windows
select() accepts only sockets, not the console. (On Linux and macOS you
could select() on sys.stdin and the socket together; try it as an exercise.)

What it does: asks for a username (again if the server refuses it), then
prints what the server sends while a background thread sends what you type.
On a terminal it keeps your half-typed line intact when a message arrives
(with the readline module, on Linux and macOS) and colours server news,
errors and whispers; when its output is not a terminal it prints the
server's lines exactly. It removes control characters from all it prints.

Run it:  python phase4_select/client.py [--host HOST] [--port PORT]
"""

import argparse
import os
import re
import socket
import sys
import threading

try:
    import readline  # line editing and get_line_buffer(); missing on Windows
except ImportError:
    readline = None

CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
PROMPT = "> "
# ANSI colour codes: cyan for server news, red for errors, magenta for whispers.
COLOURS = {"---": "\x1b[36m", "!": "\x1b[31m", "whisper": "\x1b[35m"}
RESET = "\x1b[0m"

# --8<-- [start:display]
# Redraw tricks only make sense for a person at a terminal with line editing.
interactive = sys.stdin.isatty() and sys.stdout.isatty() and readline is not None


def tidy(line):
    """Remove control characters; on a terminal, colour the line by its kind."""
    line = CONTROL_CHARACTERS.sub("", line)
    if not interactive:
        return line
    if line.startswith("---"):
        return COLOURS["---"] + line + RESET
    if line.startswith("!"):
        return COLOURS["!"] + line + RESET
    if line.startswith("[") and " -> " in line.split("]:", 1)[0]:
        return COLOURS["whisper"] + line + RESET
    return line


def show(line):
    """Print a line from the server without mangling what the user is typing."""
    if not interactive:
        print(tidy(line), flush=True)
        return
    typed = readline.get_line_buffer()
    # "\r" goes back to the start of the line and "\x1b[K" erases it; then we
    # print the message and put the prompt and the unfinished text back.
    sys.stdout.write("\r\x1b[K" + tidy(line) + "\n" + PROMPT + typed)
    sys.stdout.flush()
# --8<-- [end:display]


def read_input(prompt):
    """input(), showing the prompt only to a person; None at end of input."""
    try:
        return input(prompt if interactive else "")
    except EOFError:
        return None


# --8<-- [start:choose_username]
def choose_username(sock, server_lines):
    """Ask for a username until the server accepts one; False if the user gives up."""
    while True:
        name = read_input("Username: ")
        if name is None:
            return False
        sock.sendall((name + "\n").encode("utf-8"))
        reply = server_lines.readline()
        if not reply:
            raise ConnectionError("server closed the connection")
        reply = reply.rstrip("\n")
        print(tidy(reply), flush=True)  # nothing is being typed yet: no redraw
        if not reply.startswith("!"):  # anything but an error means we are in
            return True
# --8<-- [end:choose_username]


# --8<-- [start:send_input]
def send_input(sock, leaving):
    """Runs in a background thread: send every line the user types."""
    while True:
        line = read_input(PROMPT)
        if line is None or line.strip() == "/quit":
            break
        try:
            sock.sendall((line + "\n").encode("utf-8"))
        except OSError:
            return
    leaving.set()
    # Say goodbye properly: the server answers, then closes the connection,
    # and the main thread sees that and ends the program.
    try:
        sock.sendall(b"/quit\n")
    except OSError:
        pass
# --8<-- [end:send_input]


# --8<-- [start:main]
def main():
    parser = argparse.ArgumentParser(description="Phase 4: chat client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")

    try:
        sock = socket.create_connection((args.host, args.port))
    except OSError as error:
        reason = (error.strerror or str(error)).lower()
        print(f"Could not connect to {args.host}:{args.port}: {reason}")
        sys.exit(1)
    # A file view of the socket: readline() does the framing for us.
    server_lines = sock.makefile("r", encoding="utf-8", errors="replace", newline="\n")

    leaving = threading.Event()  # set once the user asked to leave
    status = 0
    try:
        if choose_username(sock, server_lines):
            threading.Thread(target=send_input, args=(sock, leaving), daemon=True).start()
            for line in server_lines:  # ends when the server closes the connection
                show(line.rstrip("\n"))
            if not leaving.is_set():
                status = 1
    except KeyboardInterrupt:  # Ctrl-C (on Windows, noticed when the next line arrives)
        pass
    except OSError:  # reset, or closed while we chose a name
        status = 1
    if interactive:
        sys.stdout.write("\r\x1b[K")  # erase the prompt left on the last line
    if status == 1:
        print("Disconnected from server")
    sock.close()
    sys.stdout.flush()
    # The input thread may still be waiting inside input(), holding stdin, and a
    # normal exit would wait to clean stdin up. os._exit() ends the process now.
    os._exit(status)
# --8<-- [end:main]


if __name__ == "__main__":
    main()
