"""The interface every client adapter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar

# What ``converted_reply`` returns when the client leaves a reply as the wire carries it.
UNCONVERTED: Any = object()


class ClientCannotExpress(Exception):
    """The client library cannot send this command the way the case needs (e.g. a client that
    multiplexes one connection cannot hold MULTI state). The message says why; the runner records
    it as a client-level outcome, never as an engine reply."""


# Commands RESP3 answers with push frames rather than replies (one frame per channel).
PUSH_REPLY_COMMANDS = frozenset(
    {"SUBSCRIBE", "UNSUBSCRIBE", "PSUBSCRIBE", "PUNSUBSCRIBE", "SSUBSCRIBE", "SUNSUBSCRIBE"}
)


def answered_by_push(protocol: int, args: tuple[Any, ...]) -> bool:
    """Whether the engine answers ``args`` with a push frame (RESP3 subscribe commands)."""
    if protocol != 3 or not args:
        return False
    name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
    return name.upper() in PUSH_REPLY_COMMANDS


@dataclass(frozen=True)
class Endpoint:
    """Where an engine listens. A tuple of nodes, so cluster-aware adapters fit later."""

    nodes: tuple[tuple[str, int], ...]

    @classmethod
    def single(cls, host: str, port: int) -> Endpoint:
        return cls(((host, port),))

    @property
    def host(self) -> str:
        return self.nodes[0][0]

    @property
    def port(self) -> int:
        return self.nodes[0][1]


class ClientAdapter(ABC):
    """One client mode (library, sync or async, protocol) connected to one engine.

    ``call`` sends a raw command and returns the reply normalized to plain values, with error
    replies returned as :class:`~respmatrix.replies.RespError`, never raised. ``native`` is the
    library's own client object, for typed-API checks.
    """

    client_id: ClassVar[str]
    package: ClassVar[str | None] = None  # distribution whose version results record
    protocols: ClassVar[tuple[int, ...]] = (2, 3)
    # False when the library drives all its connections through one event loop, so one of them
    # cannot wait for a reply (a blocked BLPOP in a background step) while another sends
    waits_in_parallel: ClassVar[bool] = True
    api: ClassVar[str | None] = None  # typed API offered ("redis-py", "glide"), for `call:` steps

    def __init__(self, endpoint: Endpoint, protocol: int) -> None:
        if protocol not in self.protocols:
            raise ValueError(f"{self.client_id} cannot speak RESP{protocol}")
        self.endpoint = endpoint
        self.protocol = protocol

    @abstractmethod
    def call(self, *args: Any) -> Any:
        """Send one command; return its normalized reply."""

    @property
    def native(self) -> Any:
        """The library's own client object."""
        raise NotImplementedError(f"{self.client_id} has no native client")

    def converted_reply(self, args: tuple[Any, ...], value: Any) -> Any:
        """``value``, a plain reply to the command ``args``, as this client hands it back when
        the library converts replies by command (GLIDE does); :data:`UNCONVERTED` when it does
        not, or when the value cannot be converted (a pattern where a map key would be)."""
        return UNCONVERTED

    def invoke(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call the library's own method (typed API) and return its parsed value, normalized.

        Error replies come back as RespError; a missing method or an exception the library
        raises while parsing comes back as :class:`~respmatrix.replies.ClientFailure`.
        """
        raise ClientCannotExpress(f"{self.client_id} has no typed API")

    def api_value(self, name: str, args: list[Any] | None) -> Any:
        """A name from the library's namespace (``ExpiryType.SEC``), called with ``args``
        when given (``ExpirySet(...)``)."""
        raise ClientCannotExpress(f"{self.client_id} has no typed API")

    def open_another(self) -> ClientAdapter:
        """Another connection of the same client mode and protocol, for cases that use several
        connections. Adapters whose library cannot hold a second one raise
        :class:`ClientCannotExpress`."""
        return type(self)(self.endpoint, self.protocol)

    def receive(self, timeout: float) -> Any:
        """Read one message the server pushed to this connection without a command asking for
        it (a pub/sub message, a RESP3 invalidation, a RESP2 tracking redirect message),
        waiting up to ``timeout`` seconds; None when nothing arrives. Adapters whose library
        offers no way to read such a message raise :class:`ClientCannotExpress`."""
        raise ClientCannotExpress(f"{self.client_id} cannot read pushed messages")

    def unsolicited(self) -> bytes:
        """Data waiting on the connection that no command asked for (b"" when unknown)."""
        return b""

    def close(self) -> None:  # noqa: B027 - optional for adapters that hold nothing
        """Release connections."""

    @classmethod
    def package_version(cls) -> str | None:
        if cls.package is None:
            return None
        try:
            return version(cls.package)
        except PackageNotFoundError:
            return None
