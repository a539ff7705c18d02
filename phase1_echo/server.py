"""Phase 1: an echo server, one client at a time.

The smallest useful TCP server: it creates a socket, binds it to an address,
listens, accepts one client, and sends back every byte that client sends,
printing what it received. When the client leaves it accepts the next one.

While one client is connected, a second can connect (the operating system
completes the handshake for it) but gets no answer until the first one
leaves: this server only ever talks to one socket at a time. Phase 2 fixes
that with threads.

Run it:  python phase1_echo/server.py [--host HOST] [--port PORT]
"""

import argparse
import os
import socket

# --8<-- [start:serve]
def serve_client(client, address):
    """Echo everything one client sends until it disconnects."""
    while True:
        data = client.recv(1024)  # waits for up to 1024 bytes, however many arrive
        if not data:  # recv() returns b"" once the client has closed its end
            break
        print(f"Received from {address}: {data!r}", flush=True)
        # send() may send only part of the data; sendall() loops until all is sent.
        client.sendall(data)
# --8<-- [end:serve]


# --8<-- [start:main]
def main():
    parser = argparse.ArgumentParser(description="Phase 1: echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007, help="0 picks any free port")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")

    # --8<-- [start:listen]
    # AF_INET: IPv4 addresses. SOCK_STREAM: TCP, a reliable stream of bytes.
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Let a restarted server reuse the port at once instead of failing with
    # "Address already in use" while old connections linger in TIME_WAIT.
    # Not on Windows, where SO_REUSEADDR would let a second server share the port.
    if os.name != "nt":
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((args.host, args.port))
    except OSError as error:
        raise SystemExit(f"Cannot listen on {args.host}:{args.port}: {error.strerror}")
    server.listen()
    host, port = server.getsockname()  # the real port, even when we asked for 0
    print(f"Listening on {host}:{port}", flush=True)
    # --8<-- [end:listen]

    # --8<-- [start:accept]
    try:
        while True:
            client, (client_host, client_port) = server.accept()  # waits for a client
            address = f"{client_host}:{client_port}"
            print(f"Connection from {address}", flush=True)
            with client:  # closes the client's socket however the block ends
                try:
                    serve_client(client, address)
                    print(f"{address} disconnected", flush=True)
                except ConnectionError:  # reset, broken pipe: it vanished without closing
                    print(f"{address} lost its connection", flush=True)
    except KeyboardInterrupt:  # Ctrl-C
        print("Server stopped", flush=True)
    finally:
        server.close()
    # --8<-- [end:accept]
# --8<-- [end:main]


if __name__ == "__main__":
    main()
