"""A small blocking line client for the load tests: every wait has a deadline.

harness.Conn is the graded checks' connection, with a transcript for students; these
tests need a few other moves (read until a line, read until closed, no transcript), so
they use this instead.
"""

from __future__ import annotations

import re
import socket
import struct
import time

WAIT = 5.0  # seconds any single expected line may take under load


class Closed(Exception):
    """The server closed the connection while a line was expected."""


class LineClient:
    def __init__(self, host: str, port: int, name: str = "client", *, rcvbuf: int | None = None,
                 timeout: float = WAIT):
        self.name = name
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.closed_by_server = False
        self.reset_by_server = False
        self.matched = None  # the line until() stopped at

    # sending
    def send(self, text: str) -> None:
        self.sock.sendall(text.encode("utf-8") + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    # receiving
    def _fill(self, deadline: float) -> bool:
        """Receive more; False once the server has closed the connection."""
        if self.closed_by_server:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{self.name}: nothing more arrived in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"{self.name}: nothing more arrived in time") from None
        except ConnectionResetError:
            self.reset_by_server = True
            data = b""
        if not data:
            self.closed_by_server = True
            return False
        self.buffer += data
        return True

    def raw_line(self, timeout: float = WAIT) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[:end + 1]
                return line
            if not self._fill(deadline):
                raise Closed(f"{self.name}: the server closed the connection "
                             f"(unfinished: {bytes(self.buffer[:80])!r})")

    def line(self, timeout: float = WAIT) -> str:
        return self.raw_line(timeout).decode("utf-8", "replace")

    def until(self, wanted, timeout: float = WAIT) -> list:
        """Read lines until one equals wanted (a str) or matches it (a compiled regex,
        whole line); return the lines before it."""
        matches = wanted.fullmatch if isinstance(wanted, re.Pattern) else wanted.__eq__
        deadline = time.monotonic() + timeout
        before = []
        while True:
            line = self.line(max(0.0, deadline - time.monotonic()))
            if matches(line):
                self.matched = line
                return before
            before.append(line)

    def until_closed(self, timeout: float = WAIT) -> list:
        """Read until the server closes the connection; return every line received."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        lines = bytes(self.buffer).split(b"\n")
        self.buffer.clear()
        if lines and lines[-1] == b"":
            lines.pop()
        return [line.decode("utf-8", "replace") for line in lines]

    # ending
    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def reset(self) -> None:
        """Abort the connection: SO_LINGER 0, then close, which sends a TCP RST."""
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close()


def join(host: str, port: int, name: str, **kwargs) -> LineClient:
    """Connect and register; the welcome must be the first line."""
    client = LineClient(host, port, name, **kwargs)
    client.send(name)
    line = client.line()
    assert line == f"--- Welcome to the chat, {name}! Type /help for commands ---", line
    return client
