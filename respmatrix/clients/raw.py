"""Adapter for the project's own RESP client, the reference path."""

from __future__ import annotations

from typing import Any

import respmatrix
from respmatrix.clients.base import ClientAdapter, Endpoint, answered_by_push
from respmatrix.clients.resp import RespConnection


class RawClient(ClientAdapter):
    client_id = "raw"

    def __init__(self, endpoint: Endpoint, protocol: int) -> None:
        super().__init__(endpoint, protocol)
        self._conn = RespConnection(endpoint.host, endpoint.port, protocol)

    def call(self, *args: Any) -> Any:
        if answered_by_push(self.protocol, args):
            self._conn.send(*args)
            return self._conn.read_frame()
        return self._conn.call(*args)

    def receive(self, timeout: float) -> Any:
        return self._conn.receive(timeout)

    @property
    def native(self) -> RespConnection:
        return self._conn

    def unsolicited(self) -> bytes:
        return self._conn.unsolicited()

    def close(self) -> None:
        self._conn.close()

    @classmethod
    def package_version(cls) -> str:
        return respmatrix.__version__
