"""Plain-Python reply values shared by every client adapter.

Every adapter turns what its library returns into these values, so a case states one expected
reply and any client can be checked against it: bulk and simple strings become ``str`` (``bytes``
when not UTF-8), RESP3 sets become :class:`SetReply`, push frames :class:`PushReply`, and error
replies become :class:`RespError` values instead of exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RespError:
    """An error reply. ``message`` is the full wire text, e.g. ``ERR syntax error``.

    ``code_dropped`` is set by adapters whose library strips the leading ``ERR `` code (redis-py
    and valkey-py do); comparisons then ignore that code on the expected side.
    """

    message: str
    code_dropped: bool = False

    @property
    def code(self) -> str:
        return self.message.split(" ", 1)[0]

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ClientFailure:
    """The client library failed where a reply was expected: it cannot express the command
    (``kind`` "cannot-express"), a typed method is missing ("missing-method"), or it raised
    while sending or parsing (``kind`` is the exception class name). Never equal to a reply."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


class SetReply(list):
    """A RESP3 set: compared without regard to order."""

    __slots__ = ()


class PushReply(list):
    """A RESP3 push frame (out-of-band data such as invalidations or pub/sub messages)."""

    __slots__ = ()


def text(value: bytes) -> str | bytes:
    """Decode a bulk string as UTF-8, keeping bytes that are not text (DUMP payloads)."""
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value


def normalize(value: Any) -> Any:
    """Normalize a value parsed by a client library (bytes, lists, dicts, sets, floats...)."""
    if isinstance(value, bytes):
        return text(value)
    if isinstance(value, RespError | ClientFailure | SetReply | PushReply):
        return value
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, set | frozenset):
        return SetReply(sorted((normalize(v) for v in value), key=repr))
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if isinstance(value, dict):
        return map_reply((normalize(k), normalize(v)) for k, v in value.items())
    return value


def map_reply(pairs: Any) -> dict | list:
    """Build a dict from map pairs; a map with unhashable keys stays a list of pairs."""
    pairs = list(pairs)
    try:
        return dict(pairs)
    except TypeError:
        return [list(p) for p in pairs]
