"""Broadcast server (phase 2) on socketserver.ThreadingTCPServer.

Not the course's reference code: the standard library's `socketserver` makes
the thread per client and the accept loop; this file only says what to do
with each connection. The grader must give it full marks as phase 2. It is
also the base file of a deliberately broken example (tests/examples/broken.py).

Whatever bytes a client sends go, unchanged, to every other client, never
back to the sender. A client that disconnects or fails is dropped; it never
stops the server or the others.

Run it:  python server.py [--host HOST] [--port PORT]
"""

import argparse
import socket
import socketserver
import sys
import threading


class RelayServer(socketserver.ThreadingTCPServer):
    daemon_threads = True  # Ctrl-C does not wait for connected clients
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address):
        super().__init__(address, RelayHandler)
        self.members = []  # sockets of the connected clients
        self.lock = threading.RLock()

    def join(self, sock):
        with self.lock:
            self.members.append(sock)
            return len(self.members)

    def relay(self, sender, data):
        """Send `data` to every client but `sender`; drop those that fail."""
        with self.lock:  # one relay at a time, so two messages never interleave
            for sock in list(self.members):
                if sock is sender:
                    continue
                try:
                    sock.sendall(data)
                except OSError:
                    self.drop(sock)

    def drop(self, sock):
        """Forget a client; if its own thread is still reading, wake it up."""
        with self.lock:
            if sock in self.members:
                self.members.remove(sock)
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class RelayHandler(socketserver.BaseRequestHandler):
    def setup(self):
        self.name = "%s:%s" % self.client_address[:2]
        online = self.server.join(self.request)
        print(f"{self.name} joined ({online} online)", flush=True)

    def handle(self):
        while True:
            try:
                data = self.request.recv(4096)
            except OSError:
                return
            if not data:
                return
            self.server.relay(self.request, data)

    def finish(self):
        self.server.drop(self.request)
        print(f"{self.name} left", flush=True)


def main():
    parser = argparse.ArgumentParser(description="Phase 2 broadcast server (socketserver)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    args = parser.parse_args()
    try:
        server = RelayServer((args.host, args.port))
    except OSError as error:
        print(f"Cannot listen on {args.host}:{args.port}: {error.strerror or error}", file=sys.stderr)
        sys.exit(1)
    with server:
        host, port = server.server_address[:2]
        print(f"Listening on {host}:{port}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
