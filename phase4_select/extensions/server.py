"""Phase 4 with extensions: the core's event loop, and a chat with features.

This snapshot grows from the core (phase4_select/): server.py is the core's
event loop, unchanged but for the chat it runs, which here has features
(chat.py's Feature): nicknames, statuses and /whois (profiles.py), history
for newcomers (history.py) and file sharing (files.py). The loop and the chat
meet where they met in the core: the loop reports what happened to a
connection (bytes received, the connection gone), and the chat answers with
output to send and connections to close.

Everything the core's loop does stays: one thread, output buffers flushed
when sockets can take more, eviction past MAX_OUTPUT, a bounded accept loop
that pauses when out of file descriptors, and a graceful shutdown.

Run it:  python phase4_select/extensions/server.py [--host HOST] [--port PORT]
"""

import argparse
import errno
import os
import selectors
import signal
import socket
import time

try:  # run as a module (python -m phase4_select.extensions.server)...
    from .chat import MAX_OUTPUT, Chat, Client
    from .files import Files
    from .history import History
    from .profiles import Profiles
except ImportError:  # ...or as a script (python phase4_select/extensions/server.py)
    from chat import MAX_OUTPUT, Chat, Client
    from files import Files
    from history import History
    from profiles import Profiles

try:
    import resource  # Unix only: lets us raise the open-files limit
except ImportError:
    resource = None

# --8<-- [start:limits]
MAX_ACCEPTS = 64  # connections accepted per loop turn: a connect storm cannot starve the chat
RETRY_ACCEPT = 1.0  # seconds before accept() is tried again after running out of descriptors
# accept() errors that mean "no resources for a new socket": wait, do not spin.
OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# --8<-- [end:limits]

# --8<-- [start:state]
selector = selectors.DefaultSelector()  # epoll, kqueue, or select: the best this OS has
# --8<-- [start:features]
FEATURES = [Profiles, History, Files]  # each adds commands to the chat (see chat.Feature)
chat = Chat(FEATURES)  # the protocol: it decides what to send to whom, we send it
# --8<-- [end:features]
connections = {}  # Client -> its socket, for every open connection, joined or not
paused_listener = None  # the listening socket, while we are out of file descriptors
resume_at = 0.0  # when to try accepting again, while paused
# --8<-- [end:state]


# --8<-- [start:connections]
def accept_some(listener):
    """Accept the connections that are waiting, at most MAX_ACCEPTS per loop turn."""
    for _ in range(MAX_ACCEPTS):
        try:
            sock, (host, port) = listener.accept()
        except BlockingIOError:  # nobody else is waiting
            return
        except ConnectionError:  # it was reset before we accepted it: skip it
            continue
        except OSError as error:
            if error.errno in OUT_OF_RESOURCES:
                pause_accepting(listener, error)
                return
            print(f"accept() failed: {error}", flush=True)  # EPROTO and the like: skip it
            continue
        sock.setblocking(False)  # recv() and send() must never wait
        # We gather small writes ourselves, once per round, so Nagle's algorithm
        # (which holds a small write back until the last one is acknowledged) only
        # adds delay: up to 40 ms a line. TCP_NODELAY turns it off.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = Client(f"{host}:{port}")
        connections[client] = sock
        selector.register(sock, selectors.EVENT_READ, client)


def pause_accepting(listener, error):
    """Out of file descriptors (EMFILE): the connection stays queued, so the
    listener stays readable and select() would wake us at once, forever. Stop
    watching it until a client leaves, or RETRY_ACCEPT seconds have passed."""
    global paused_listener, resume_at
    print(f"Not accepting for now: {error.strerror}", flush=True)
    selector.unregister(listener)
    paused_listener = listener
    resume_at = time.monotonic() + RETRY_ACCEPT


def resume_accepting():
    global paused_listener
    if paused_listener is not None:
        selector.register(paused_listener, selectors.EVENT_READ)
        paused_listener = None


def receive(client):
    """Read what a client sent and hand it to the chat."""
    try:
        data = connections[client].recv(65536)  # large reads: fewer trips through the loop
    except BlockingIOError:
        return
    except OSError:  # reset: treat it like a close
        data = b""
    if not data:
        disconnect(client)
        return
    chat.received(client, data)
    if len(client.output) > MAX_OUTPUT:  # it asked for more than it may owe (/who, /who, ...)
        evict(client)


def disconnect(client):
    """Close a connection and clean up after it."""
    sock = connections.pop(client, None)
    if sock is None:  # already gone
        return
    chat.gone(client)
    selector.unregister(sock)
    sock.close()
    resume_accepting()  # a file descriptor is free again


def evict(client):
    print(f"{client.name or client.address} is too far behind: evicted", flush=True)
    disconnect(client)
# --8<-- [end:connections]


# --8<-- [start:flush]
def flush(client):
    """Send as much of a client's output as its socket takes without waiting."""
    sock = connections[client]
    try:
        sent = sock.send(client.output)
    except BlockingIOError:  # its send buffer is full: the client is not reading
        sent = 0
    except OSError:  # the connection is broken
        disconnect(client)
        return
    del client.output[:sent]
    if len(client.output) > MAX_OUTPUT:
        evict(client)
    elif not client.output and client.closing:
        disconnect(client)
    else:
        watch_writable(sock, client, bool(client.output))


def watch_writable(sock, client, wanted):
    """Ask the selector to report when the socket can take more, or to stop."""
    events = selectors.EVENT_READ | (selectors.EVENT_WRITE if wanted else 0)
    if selector.get_key(sock).events != events:  # modify() costs a system call
        selector.modify(sock, events, client)
# --8<-- [end:flush]


# --8<-- [start:loop]
def run(listener, wakeup):
    """The event loop: wait for ready sockets, handle them, send what is queued."""
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wakeup, selectors.EVENT_READ)
    while True:
        timeout = RETRY_ACCEPT if paused_listener else None  # None: wait for an event
        for key, events in selector.select(timeout):
            if key.fileobj is listener:
                accept_some(listener)
                continue
            if key.fileobj is wakeup:  # a signal arrived: time to shut down
                return
            client = key.data
            if events & selectors.EVENT_READ:
                receive(client)
            if events & selectors.EVENT_WRITE and client in connections:
                flush(client)
        # Everything queued during this round goes out now, one send() per
        # client however many lines it got: that is how one thread keeps up.
        while chat.has_output:
            client = chat.has_output.pop()
            if client in connections:  # not evicted or gone meanwhile
                flush(client)
        if paused_listener is not None and time.monotonic() >= resume_at:
            resume_accepting()
# --8<-- [end:loop]


# --8<-- [start:shutdown]
def ignore_signal(signum, frame):
    """Replaces Python's own handlers, which would raise KeyboardInterrupt or exit."""


def wake_up_on_signals():
    """Make SIGINT and SIGTERM readable on a socket the event loop watches.

    A signal handler runs between any two bytecodes of the main thread, even
    halfway through flush(), so it must not change anything. Instead we use
    the self-pipe trick: signal.set_wakeup_fd() makes Python write a byte to
    a socket whenever a signal arrives, and select() wakes up for it.
    """
    wakeup, signal_writer = socket.socketpair()
    signal_writer.setblocking(False)
    signal.set_wakeup_fd(signal_writer.fileno())
    signal.signal(signal.SIGINT, ignore_signal)
    signal.signal(signal.SIGTERM, ignore_signal)
    return wakeup, signal_writer


def shut_down():
    """Say goodbye to every client and close every connection."""
    goodbye = b"--- Server shutting down ---\n"
    for client, sock in connections.items():
        client.output += goodbye
        try:
            sock.send(client.output)  # best effort: we will not wait for anyone
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        sock.close()
# --8<-- [end:shutdown]


# --8<-- [start:main]
def main():
    parser = argparse.ArgumentParser(description="Phase 4: select() chat server, with extensions")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7007, help="0 picks any free port")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")

    if resource is not None:
        # Each client is an open file. Many systems allow a process only 256 or
        # 1024 by default, but let it raise its own limit up to a hard maximum.
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # macOS refuses "unlimited": keep the default
            pass

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if os.name != "nt":  # on Windows, SO_REUSEADDR would let a second server share the port
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
    except OSError as error:
        raise SystemExit(f"Cannot listen on {args.host}:{args.port}: {error.strerror}")
    listener.listen(socket.SOMAXCONN)  # a long queue: thousands may connect at once
    listener.setblocking(False)
    wakeup, signal_writer = wake_up_on_signals()  # both stay open while the loop runs
    host, port = listener.getsockname()
    print(f"Listening on {host}:{port}", flush=True)

    run(listener, wakeup)
    shut_down()
    print("Server stopped", flush=True)
# --8<-- [end:main]


if __name__ == "__main__":
    main()
