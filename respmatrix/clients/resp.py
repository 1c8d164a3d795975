"""The reference client: a RESP2/RESP3 socket client with no client-side reply parsing.

It sends each command as an array of bulk strings and decodes the wire reply into the plain
values of :mod:`respmatrix.replies`, so what it returns is what the engine said.
"""

from __future__ import annotations

import contextlib
import select
import socket
from typing import Any

from respmatrix.replies import PushReply, RespError, SetReply, map_reply, text

_CRLF = b"\r\n"


class RespProtocolError(Exception):
    """The server sent bytes that are not valid RESP."""


def encode_command(args: tuple[Any, ...] | list[Any]) -> bytes:
    """Encode a command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode()
        elif isinstance(arg, bool):
            raise TypeError("booleans are not RESP arguments")
        elif isinstance(arg, int | float):
            data = repr(arg).encode()
        else:
            raise TypeError(f"cannot send {type(arg).__name__} as a RESP argument")
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class RespConnection:
    """One blocking connection speaking RESP2 or RESP3 (``HELLO 3`` is sent on connect)."""

    def __init__(
        self, host: str, port: int, protocol: int = 2, timeout: float | None = 10.0
    ) -> None:
        self.host, self.port, self.protocol = host, port, protocol
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buf = bytearray()
        self.hello: Any = None
        if protocol == 3:
            self.hello = self.call("HELLO", "3")
            if isinstance(self.hello, RespError):
                self.close()
                raise ConnectionError(f"HELLO 3 refused by {host}:{port}: {self.hello}")
        self.pushes: list[PushReply] = []

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> RespConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, *args: Any) -> None:
        self._sock.sendall(encode_command(args))

    def call(self, *args: Any) -> Any:
        """Send one command and return its reply; push frames met on the way are kept aside."""
        self.send(*args)
        return self.read_reply()

    def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send several commands in one write and read their replies in order."""
        self._sock.sendall(b"".join(encode_command(c) for c in commands))
        return [self.read_reply() for _ in commands]

    def read_reply(self) -> Any:
        while True:
            reply = self._read()
            if isinstance(reply, PushReply):
                self.pushes.append(reply)
                continue
            return reply

    def unsolicited(self) -> bytes:
        """Bytes the server sent that no command asked for (e.g. a double reply), if any."""
        timeout = self._sock.gettimeout()
        self._sock.settimeout(0)  # with a timeout set, Python would wait for data first
        try:
            pending = self._sock.recv(65536, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            pending = b""
        finally:
            self._sock.settimeout(timeout)
        return bytes(self._buf) + pending

    def read_frame(self) -> Any:
        """Return the next frame off the wire, push frame or not (RESP3 answers SUBSCRIBE and
        its kin with push frames, which :meth:`read_reply` would set aside)."""
        return self._read()

    def receive(self, timeout: float) -> Any:
        """The next frame no command asked for: a push set aside earlier, or one arriving
        within ``timeout`` seconds (None when none does). In RESP2 that is a plain array."""
        if self.pushes:
            return self.pushes.pop(0)
        # wait on the socket, not inside a read: a timeout mid-frame would lose the framing
        if not self._buf and not select.select([self._sock], [], [], timeout)[0]:
            return None
        return self._read()

    def read_push(self) -> PushReply:
        """Return the next push frame (waiting for one if none is buffered)."""
        if self.pushes:
            return self.pushes.pop(0)
        reply = self._read()
        if not isinstance(reply, PushReply):
            raise RespProtocolError(f"expected a push frame, got {reply!r}")
        return reply

    # -- decoding -------------------------------------------------------------------------
    def _line(self) -> bytes:
        while True:
            end = self._buf.find(_CRLF)
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            self._fill()

    def _exact(self, n: int) -> bytes:
        while len(self._buf) < n + 2:
            self._fill()
        data = bytes(self._buf[:n])
        del self._buf[: n + 2]
        return data

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection to {self.host}:{self.port} closed by the server")
        self._buf += chunk

    def _read(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else text(self._exact(n))
        if kind in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = [self._read() for _ in range(n)]
            if kind == b"~":
                return SetReply(items)
            return PushReply(items) if kind == b">" else items
        if kind == b"%":
            n = int(rest)
            return map_reply((self._read(), self._read()) for _ in range(n))
        if kind == b"_":
            return None
        if kind == b",":
            return float(rest)  # Python parses inf, -inf and nan as RESP3 writes them
        if kind == b"#":
            return rest == b"t"
        if kind == b"(":
            return int(rest)
        if kind == b"=":
            data = self._exact(int(rest))
            return text(data[4:])  # drop the three-letter format and its colon
        if kind == b"!":
            return RespError(self._exact(int(rest)).decode(errors="replace"))
        if kind == b"|":
            # Attributes precede the reply they describe; the reply is what counts here.
            for _ in range(int(rest)):
                self._read()
                self._read()
            return self._read()
        raise RespProtocolError(f"unexpected RESP type byte {kind!r} in {line[:40]!r}")
