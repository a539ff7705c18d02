"""Broadcast client (phase 2), a second implementation of docs/protocol.md.

Not the course's reference client. A background thread prints whatever
arrives (control characters removed, bytes decoded even when a character is
split between two reads); the main thread sends each line you type.
`quit`, `exit`, end of input and Ctrl-C leave with status 0; the server
closing the connection prints `Disconnected from server`, status 1.

Run it:  python client.py [--host HOST] [--port PORT]
"""

import argparse
import codecs
import os
import re
import socket
import sys
import threading

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # keeps "\t" and "\n"
LEAVE_WAIT = 3.0


def print_incoming(sock, leaving):
    """Print what the server sends; if it hangs up on us, say so and exit 1."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while True:
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        text = decoder.decode(data, final=not data)
        if text:
            sys.stdout.write(CONTROL.sub("", text))
            sys.stdout.flush()
        if not data:
            break
    if not leaving.is_set():
        sys.stdout.write("Disconnected from server\n")
        sys.stdout.flush()
        os._exit(1)  # the main thread is blocked reading the keyboard


def main():
    parser = argparse.ArgumentParser(description="Phase 2 broadcast client")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    args = parser.parse_args()
    try:
        sock = socket.create_connection((args.host, args.port), timeout=10)
    except OSError as error:
        reason = (error.strerror or str(error) or type(error).__name__).lower()
        print(f"Could not connect to {args.host}:{args.port}: {reason}", flush=True)
        return 1
    sock.settimeout(None)

    leaving = threading.Event()
    printer = threading.Thread(target=print_incoming, args=(sock, leaving), daemon=True)
    printer.start()
    try:
        for line in sys.stdin:
            if line.strip().lower() in ("quit", "exit"):
                break
            sock.sendall(line.rstrip("\r\n").encode("utf-8") + b"\n")
        # Leaving: stop sending, and print whatever is still on its way.
        leaving.set()
        sock.shutdown(socket.SHUT_WR)
        printer.join(LEAVE_WAIT)
    except KeyboardInterrupt:
        leaving.set()
    except OSError:
        if not leaving.is_set():
            sys.stdout.write("Disconnected from server\n")
            sys.stdout.flush()
            os._exit(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
