"""Echo server (phase 1), a second implementation of docs/protocol.md.

Not the course's reference code: it uses `socket.create_server()` and one
function per client, and logs in its own words. The grader must give it full
marks as phase 1. It is also the base file of some deliberately broken
examples (see tests/examples/broken.py).

One client at a time: every byte it sends comes straight back; when it
leaves, the next waiting client is served.

Run it:  python server.py [--host HOST] [--port PORT]
"""

import argparse
import socket
import sys


def serve_one(listener):
    """Accept one client and echo everything it sends until it leaves."""
    conn, address = listener.accept()
    who = "%s:%s" % address[:2]
    print(f"[{who}] connected", flush=True)
    with conn:
        while True:
            try:
                data = conn.recv(4096)
            except ConnectionError:
                break
            if not data:
                break
            print(f"[{who}] {data.decode('utf-8', errors='replace')!r}", flush=True)
            try:
                conn.sendall(data)
            except ConnectionError:
                break
    print(f"[{who}] gone", flush=True)


def main():
    parser = argparse.ArgumentParser(description="Phase 1 echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    args = parser.parse_args()
    try:
        listener = socket.create_server((args.host, args.port))
    except OSError as error:
        print(f"Cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        sys.exit(1)
    with listener:
        host, port = listener.getsockname()[:2]
        print(f"Listening on {host}:{port}", flush=True)
        try:
            while True:
                serve_one(listener)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
