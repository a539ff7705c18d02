"""Phase 2: many clients at once, one thread each, and broadcast.

Phase 1 could only talk to one client at a time, because recv() waits and a
waiting program can do nothing else. Here the main thread only accepts
connections; each client gets a thread of its own that waits on that
client's recv(). Whatever a client sends is relayed to every other client.

The list of connected clients is shared by all those threads, so a lock
guards it: without one, a thread could loop over the list while another
changes it.

Run it:  python phase2_threads/server.py [--host HOST] [--port PORT]
"""

import argparse
import os
import socket
import threading

# --8<-- [start:state]
clients = []  # the socket of every connected client
clients_lock = threading.Lock()  # held by any thread that reads or changes `clients`
# --8<-- [end:state]


# --8<-- [start:broadcast]
def broadcast(data, sender):
    """Send data to every connected client except the sender."""
    # Holding the lock while sending keeps messages in one order for everyone,
    # and stops two threads from interleaving their bytes on the same socket.
    with clients_lock:
        for client in clients:
            if client is sender:
                continue
            try:
                client.sendall(data)
            except OSError:
                # That client's connection is broken. Its own thread's recv()
                # fails too, and that thread removes it: nothing to do here.
                pass
# --8<-- [end:broadcast]


# --8<-- [start:handle_client]
def handle_client(client, address):
    """Runs in its own thread: relay what one client sends until it leaves."""
    try:
        while True:
            data = client.recv(4096)
            if not data:  # the client closed the connection
                break
            broadcast(data, client)
    except OSError:  # reset or broken: the client vanished without closing
        pass
    finally:
        # However the client left, forget it, or every broadcast would fail on it.
        with clients_lock:
            clients.remove(client)
            count = len(clients)
        client.close()
        print(f"{address} disconnected ({count} connected)", flush=True)
# --8<-- [end:handle_client]


# --8<-- [start:main]
def main():
    parser = argparse.ArgumentParser(description="Phase 2: threaded broadcast server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007, help="0 picks any free port")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")

    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if os.name != "nt":  # on Windows, SO_REUSEADDR would let a second server share the port
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.bind((args.host, args.port))
    except OSError as error:
        raise SystemExit(f"Cannot listen on {args.host}:{args.port}: {error.strerror}")
    server.listen()
    host, port = server.getsockname()
    print(f"Listening on {host}:{port}", flush=True)

    # --8<-- [start:accept]
    try:
        while True:  # the main thread does nothing but accept
            try:
                client, (client_host, client_port) = server.accept()
            except ConnectionError:  # a client gave up before we accepted it
                continue
            address = f"{client_host}:{client_port}"
            with clients_lock:
                clients.append(client)
                count = len(clients)
            print(f"Connection from {address} ({count} connected)", flush=True)
            # A daemon thread does not keep the program alive after Ctrl-C.
            thread = threading.Thread(target=handle_client, args=(client, address), daemon=True)
            thread.start()
    except KeyboardInterrupt:
        print("Server stopped", flush=True)
    finally:
        server.close()
    # --8<-- [end:accept]
# --8<-- [end:main]


if __name__ == "__main__":
    main()
