"""Phase 2: a chat client that listens and talks at the same time.

Messages from others can arrive at any moment, even while you are typing, so
one thread cannot both wait for your next line (input()) and wait for the
server (recv()). This client uses two threads: a background thread reads
your lines and sends them, and the main thread prints what the server sends.

Type quit or exit (or end the input: Ctrl-D, or Ctrl-Z then Enter on
Windows) to leave; Ctrl-C works too.

Run it:  python phase2_threads/client.py [--host HOST] [--port PORT]
"""

import argparse
import os
import socket
import sys
import threading

# --8<-- [start:send_input]
def send_input(sock, leaving):
    """Runs in a background thread: send every line you type."""
    while True:
        try:
            line = input()
        except EOFError:  # end of input
            break
        if line.strip() in ("quit", "exit"):
            break
        try:
            sock.sendall((line + "\n").encode("utf-8"))
        except OSError:  # the connection is gone; the main thread reports it
            return
    leaving.set()
    # Half-close: tell the server we will send nothing more. It then closes
    # its side, and the main thread's recv() returns b"" and the client ends.
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
# --8<-- [end:send_input]


# --8<-- [start:print_messages]
def print_messages(sock):
    """Print every line the server sends until it closes the connection."""
    buffer = b""
    while True:
        data = sock.recv(4096)
        if not data:
            return
        # One recv() may end in the middle of a line: print only whole lines
        # and keep the unfinished rest for the next round.
        buffer += data
        lines = buffer.split(b"\n")
        buffer = lines.pop()
        for line in lines:
            print(line.decode("utf-8", errors="replace"), flush=True)
# --8<-- [end:print_messages]


# --8<-- [start:main]
def main():
    parser = argparse.ArgumentParser(description="Phase 2: chat client")
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

    leaving = threading.Event()  # set once you asked to leave
    threading.Thread(target=send_input, args=(sock, leaving), daemon=True).start()
    status = 0
    try:
        print_messages(sock)
        if not leaving.is_set():
            print("Disconnected from server")
            status = 1
    except KeyboardInterrupt:  # Ctrl-C (on Windows, noticed when the next message arrives)
        pass
    except OSError:  # the connection was reset
        print("Disconnected from server")
        status = 1
    sock.close()
    sys.stdout.flush()
    # The input thread may still be waiting inside input(), holding stdin, and a
    # normal exit would wait to clean stdin up. os._exit() ends the process now.
    os._exit(status)
# --8<-- [end:main]


if __name__ == "__main__":
    main()
