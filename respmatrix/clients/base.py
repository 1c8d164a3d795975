"""The interface every client adapter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, ClassVar


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
