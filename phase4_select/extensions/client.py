"""Phase 4 with extensions: the terminal client, with file sharing.

This is the core's client (phase4_select/client.py) plus files. What it
does: asks for a username (again if the server refuses it), then prints
what the server sends while a background thread sends what you type.
On a terminal it keeps your half-typed line intact when a message arrives
(with the readline module, on Linux and macOS) and colours server news,
errors and whispers; when its output is not a terminal it prints the
server's lines exactly. It removes control characters from all it prints.

New for the extensions (docs/protocol.md): the command /sendfile NAME PATH
sends a file to another user, and files sent to you are saved, once
complete, into a downloads folder under a safe name. The other extensions
(/nick, /status, /whois, history) are only lines, which it prints as usual.

Run it:  python phase4_select/extensions/client.py [--host HOST] [--port PORT]
"""

import argparse
import base64
import itertools
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
MAX_FILE = 1024 * 1024  # the server refuses larger files
MAX_INCOMING = 4 * MAX_FILE  # bytes of unfinished files kept at once, from all senders
FILE_PIECE = 600  # file bytes per /filedata line: 800 base64 characters, under the line limit
FILE_LINE = re.compile(r"\[file from ([A-Za-z0-9_-]+)\]: (begin|data|end|cancel) ?(.*)")
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

# --8<-- [start:files]
def file_lines(name, path):
    """The protocol lines that send the file at path to user name (OSError, ValueError)."""
    with open(path, "rb") as file:
        data = file.read(MAX_FILE + 1)
    if len(data) > MAX_FILE:
        raise ValueError(f"file too large (max {MAX_FILE} bytes)")
    lines = [f"/file {name} {len(data)} {os.path.basename(path)}"]
    for start in range(0, len(data), FILE_PIECE):
        piece = base64.b64encode(data[start:start + FILE_PIECE]).decode("ascii")
        lines.append(f"/filedata {piece}")
    lines.append("/fileend")
    return lines


def safe_filename(filename):
    """A name that cannot escape the downloads folder: no folders, no "..", no controls."""
    filename = filename.replace("\\", "/").split("/")[-1]
    filename = CONTROL_CHARACTERS.sub("", filename).strip().lstrip(".")
    return filename or "file"


class Downloads:
    """Collects the files others send us and saves each one once it is complete."""

    def __init__(self, folder):
        self.folder = folder
        self.incoming = {}  # sender -> [filename, size, bytes so far]

    def handle(self, line):
        """Take a line from the server; return what to show the user (None: nothing)."""
        match = FILE_LINE.fullmatch(line)
        if not match:
            return line  # not about a file
        sender, what, rest = match.groups()
        if what == "begin":
            size, _, filename = rest.partition(" ")
            if not size.isdecimal() or int(size) > MAX_FILE:
                return f"! {sender} offered a file this client will not take: {rest}"
            self.incoming.pop(sender, None)  # a new file from the same sender replaces one
            # Many senders could each start a file and never end it: bound what we keep.
            if sum(entry[1] for entry in self.incoming.values()) + int(size) > MAX_INCOMING:
                return f"! {sender} offered {filename}: this client is receiving too much already"
            self.incoming[sender] = [filename, int(size), bytearray()]
            return f"--- {sender} is sending you {filename} ({size} bytes) ---"
        if sender not in self.incoming:
            return None
        filename, size, data = self.incoming[sender]
        if what == "data":
            try:
                data += base64.b64decode(rest, validate=True)
                if len(data) <= size:
                    return None  # more to come
            except ValueError:  # binascii.Error, or characters that are not even ASCII
                pass
        elif what == "end" and len(data) == size:
            del self.incoming[sender]
            return self.save(sender, filename, data)
        del self.incoming[sender]
        return f"! {filename} from {sender} did not arrive whole: nothing was saved"

    def save(self, sender, filename, data):
        os.makedirs(self.folder, exist_ok=True)
        stem, extension = os.path.splitext(safe_filename(filename))
        for number in itertools.count():
            name = f"{stem} ({number}){extension}" if number else stem + extension
            path = os.path.join(self.folder, name)
            try:
                with open(path, "xb") as file:  # "x": fail rather than overwrite
                    file.write(data)
            except FileExistsError:
                continue
            except OSError as error:
                if os.path.exists(path):
                    os.remove(path)  # leave nothing half-written behind
                return f"! Could not save {filename} from {sender}: {error.strerror}"
            return f"--- Saved {filename} from {sender} as {path} ---"
# --8<-- [end:files]


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
        words = line.split(maxsplit=2)
        if words and words[0] == "/sendfile":
            if len(words) < 3:
                show("! Usage: /sendfile <username> <path>")
                continue
            try:
                lines = file_lines(words[1], words[2])
            except (OSError, ValueError) as error:
                show(f"! Cannot send {words[2]}: {getattr(error, 'strerror', None) or error}")
                continue
        else:
            lines = [line]
        try:
            sock.sendall("".join(text + "\n" for text in lines).encode("utf-8"))
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
    parser = argparse.ArgumentParser(description="Phase 4: chat client, with extensions")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    parser.add_argument("--downloads", default="downloads", help="where received files go")
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
            downloads = Downloads(args.downloads)
            for line in server_lines:  # ends when the server closes the connection
                shown = downloads.handle(line.rstrip("\n"))
                if shown is not None:
                    show(shown)
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
