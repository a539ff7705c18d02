"""Phase 1: the echo client.

Connects to the server, then repeats: read a line from you, send it, wait for
the whole echo to come back, print it. Type quit or exit (or end the input
with Ctrl-D, or Ctrl-Z then Enter on Windows) to leave.

Run it:  python phase1_echo/client.py [--host HOST] [--port PORT]
"""

import argparse
import socket
import sys

# --8<-- [start:receive_line]
def receive_line(sock):
    """Read from the socket until a whole line has arrived.

    TCP is a stream of bytes, not of messages: one recv() may return part of
    the echo, so we keep reading until we see the newline that ends it.
    """
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1024)
        if not chunk:  # the server closed the connection
            raise ConnectionError("server closed the connection")
        data += chunk
    return data.decode("utf-8", errors="replace").rstrip("\n")
# --8<-- [end:receive_line]


# --8<-- [start:echo_lines]
def echo_lines(sock):
    """Send each line you type and print its echo, until quit, exit or end of input."""
    # Show a prompt only to a person; a program reading our output wants just the echoes.
    prompt = "> " if sys.stdin.isatty() else ""
    while True:
        try:
            line = input(prompt)
        except EOFError:  # Ctrl-D (Ctrl-Z then Enter on Windows)
            return
        if line.strip() in ("quit", "exit"):
            return
        sock.sendall((line + "\n").encode("utf-8"))
        print(receive_line(sock))
# --8<-- [end:echo_lines]


# --8<-- [start:main]
def main():
    parser = argparse.ArgumentParser(description="Phase 1: echo client")
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

    with sock:
        try:
            echo_lines(sock)
        except KeyboardInterrupt:  # Ctrl-C: leave quietly
            pass
        except ConnectionError:
            print("Disconnected from server")
            sys.exit(1)
# --8<-- [end:main]


if __name__ == "__main__":
    main()
