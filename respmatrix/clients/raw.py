"""Adapter for the project's own RESP client, the reference path."""

from __future__ import annotations

from typing import Any

import respmatrix
from respmatrix.clients.base import ClientAdapter, Endpoint
from respmatrix.clients.resp import RespConnection


class RawClient(ClientAdapter):
    client_id = "raw"

    def __init__(self, endpoint: Endpoint, protocol: int) -> None:
        super().__init__(endpoint, protocol)
        self._conn = RespConnection(endpoint.host, endpoint.port, protocol)

    def call(self, *args: Any) -> Any:
        return self._conn.call(*args)

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
