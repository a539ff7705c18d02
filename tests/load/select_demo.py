"""A broadcast server on select.select(), to show the limit phase 4 avoids. Not a phase.

It relays bytes like phase 2, in one thread like phase 4, but asks select.select()
instead of the selectors module which sockets are ready. select() describes the
sockets as a bit set of FD_SETSIZE bits (1024 on Linux), so it cannot watch a socket
whose file descriptor number is 1024 or more. Python checks before calling it:

    ValueError: filedescriptor out of range in select()

With the listening socket on descriptor 3, client number 1021 gets descriptor 1024, and
the next select() call fails. The benchmark connects more clients than that to show it:

    python -m tests.load.bench --sizes 10 --select-demo 1100
"""

import argparse
import select
import socket

try:
    import resource  # raise the open-files limit, as phase 4 does, so that the
except ImportError:  # limit we run into is select()'s and not the process's
    resource = None


def main():
    parser = argparse.ArgumentParser(description="select.select() broadcast server (demo)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007)
    args = parser.parse_args()
    if resource is not None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(socket.SOMAXCONN)
    print("Listening on %s:%d" % listener.getsockname(), flush=True)
    clients = []
    while True:
        ready, _, _ = select.select([listener] + clients, [], [])  # fails past fd 1023
        for sock in ready:
            if sock is listener:
                client, _ = listener.accept()
                clients.append(client)
                continue
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                clients.remove(sock)
                sock.close()
                continue
            for other in clients:
                if other is not sock:
                    try:
                        other.sendall(data)  # blocking, as in phase 2: a demo, not a server
                    except OSError:
                        pass


if __name__ == "__main__":
    main()
