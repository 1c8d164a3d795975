"""Adapters for redis-py and its fork valkey-py (same API, different package), sync and asyncio.

Commands go through ``execute_command`` with the library's response callbacks removed, so the
reply is what the library's protocol parser produced, not a convenience conversion.
"""

from __future__ import annotations

import asyncio
from importlib import import_module
from typing import Any, ClassVar

from respmatrix.clients.base import ClientAdapter, Endpoint
from respmatrix.replies import RespError, normalize


class _RedisPyFamily(ClientAdapter):
    module_name: ClassVar[str]
    client_module: ClassVar[str] = ""  # "" for the sync client, ".asyncio" for asyncio

    def __init__(self, endpoint: Endpoint, protocol: int) -> None:
        super().__init__(endpoint, protocol)
        lib = import_module(self.module_name)
        self._lib = lib
        self._client = import_module(self.module_name + self.client_module).Redis(
            host=endpoint.host,
            port=endpoint.port,
            protocol=protocol,
            decode_responses=False,
            single_connection_client=True,
        )
        self._client.response_callbacks.clear()
        self._codes = _codes_by_exception(self.module_name)

    def call(self, *args: Any) -> Any:
        try:
            reply = self._client.execute_command(*args)
        except self._lib.exceptions.ResponseError as exc:
            return self._error(exc)
        return self._normalize(reply)

    def _normalize(self, reply: Any) -> Any:
        if isinstance(reply, self._lib.exceptions.ResponseError):
            return self._error(reply)
        if isinstance(reply, list):
            return [self._normalize(r) for r in reply]
        return normalize(reply)

    def _error(self, exc: Exception) -> RespError:
        # The parser strips a known code ("NOSCRIPT ...") into an exception class; put it back.
        # Plain ResponseError may have lost "ERR "; the comparison allows for that.
        message = str(exc)
        code = self._codes.get(type(exc))
        if code and code != "ERR":
            return RespError(f"{code} {message}")
        return RespError(message, code_dropped=True)

    @property
    def native(self) -> Any:
        return self._client

    def close(self) -> None:
        self._client.close()


def _codes_by_exception(module_name: str) -> dict[type, str]:
    try:
        base = import_module(f"{module_name}._parsers.base")
    except ImportError:  # redis-py 4.x kept the parser in connection.py
        base = import_module(f"{module_name}.connection")
    codes: dict[type, str] = {}
    for code, value in base.BaseParser.EXCEPTION_CLASSES.items():
        if isinstance(value, dict):
            for cls in value.values():
                codes.setdefault(cls, code)
        else:
            codes.setdefault(value, code)
    return codes


class _AsyncRedisPyFamily(_RedisPyFamily):
    """The asyncio client, driven on an event loop of its own, one command at a time."""

    client_module = ".asyncio"

    def __init__(self, endpoint: Endpoint, protocol: int) -> None:
        self._loop = asyncio.new_event_loop()
        super().__init__(endpoint, protocol)

    def call(self, *args: Any) -> Any:
        try:
            reply = self._loop.run_until_complete(self._client.execute_command(*args))
        except self._lib.exceptions.ResponseError as exc:
            return self._error(exc)
        return self._normalize(reply)

    def close(self) -> None:
        try:
            closing = getattr(self._client, "aclose", None) or self._client.close
            self._loop.run_until_complete(closing())
        finally:
            self._loop.close()


class RedisPyClient(_RedisPyFamily):
    client_id = "redis-py"
    package = "redis"
    module_name = "redis"


class ValkeyPyClient(_RedisPyFamily):
    client_id = "valkey-py"
    package = "valkey"
    module_name = "valkey"


class RedisPyAsyncClient(_AsyncRedisPyFamily):
    client_id = "redis-py-async"
    package = "redis"
    module_name = "redis"


class ValkeyPyAsyncClient(_AsyncRedisPyFamily):
    client_id = "valkey-py-async"
    package = "valkey"
    module_name = "valkey"
