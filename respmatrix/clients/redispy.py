"""Adapters for redis-py and its fork valkey-py (same API, different package), sync and asyncio.

Commands go through ``execute_command`` with the library's response callbacks removed, so the
reply is what the library's protocol parser produced, not a convenience conversion.
"""

from __future__ import annotations

import asyncio
import inspect
from importlib import import_module
from typing import Any, ClassVar

from respmatrix.clients.base import ClientAdapter, Endpoint, answered_by_push
from respmatrix.replies import ClientFailure, RespError, normalize


class _RedisPyFamily(ClientAdapter):
    module_name: ClassVar[str]
    client_module: ClassVar[str] = ""  # "" for the sync client, ".asyncio" for asyncio
    api = "redis-py"

    def __init__(self, endpoint: Endpoint, protocol: int) -> None:
        super().__init__(endpoint, protocol)
        lib = import_module(self.module_name)
        self._lib = lib
        # No retries on the raw path: the library's default Retry re-sends a command whose reply
        # is a ConnectionError subclass (redis-py 8 sends a failing AUTH 11 times), and a case
        # must see each command sent exactly once.
        self._client = self._connect(retry=None)
        self._client.response_callbacks.clear()
        self._typed: Any = None  # a second client, response callbacks intact, for `call:` steps
        self._codes = _codes_by_exception(self.module_name)

    def _connect(self, **options: Any) -> Any:
        return import_module(self.module_name + self.client_module).Redis(
            host=self.endpoint.host,
            port=self.endpoint.port,
            protocol=self.protocol,
            decode_responses=False,
            single_connection_client=True,
            # a reply that never comes (a client confused by a protocol switch) must end the
            # case as an error, not stall the run; cases block for a few seconds at most
            socket_timeout=30,
            **options,
        )

    def invoke(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if self._typed is None:
            self._typed = self._connect()
        function = getattr(self._typed, method, None)
        if not callable(function):
            return ClientFailure(
                "missing-method", f"{self.module_name} {self.package_version()} has no {method}()"
            )
        try:
            reply = self._await(function(*args, **kwargs))
        except self._lib.exceptions.ResponseError as exc:
            return self._error(exc)
        except Exception as exc:  # the library choked on the reply: a client outcome
            return ClientFailure(type(exc).__name__, str(exc))
        return self._normalize(reply)

    def api_value(self, name: str, args: list[Any] | None) -> Any:
        value: Any = self._lib
        for part in name.split("."):
            value = getattr(value, part)
        return value if args is None else value(*args)

    def _await(self, value: Any) -> Any:
        return value

    def call(self, *args: Any) -> Any:
        try:
            if answered_by_push(self.protocol, args):
                # execute_command would drop the push frame and wait for a reply that never
                # comes; the library's own PubSub sends, then reads with push_request=True.
                connection = self._client.connection
                connection.send_command(*args)
                reply = connection.read_response(push_request=True)
            else:
                reply = self._client.execute_command(*args)
        except self._lib.exceptions.ResponseError as exc:
            return self._error(exc)
        except self._lib.exceptions.AuthenticationError as exc:
            return _auth_failure(exc)
        return self._normalize(reply)

    def receive(self, timeout: float) -> Any:
        connection = self._client.connection
        _keep_invalidations(connection)
        try:
            if not connection.can_read(timeout=timeout):
                return None
            return self._normalize(connection.read_response(push_request=True))
        except self._lib.exceptions.ResponseError as exc:
            return self._error(exc)

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
        if self._typed is not None:
            self._typed.close()


def _keep_invalidations(connection: Any) -> None:
    """Have the parser hand RESP3 invalidation frames back instead of dropping them.

    Without a client-side cache, the libraries have no invalidation handler and discard those
    frames (valkey-py even calls a handler attribute it never set). The handler is made of the
    same kind (coroutine or plain function) as the parser's own pub/sub handler, which the
    parser awaits or calls the same way.
    """
    parser = getattr(connection, "_parser", None)
    setter = getattr(parser, "set_invalidation_push_handler", None)
    if setter is None:
        return
    if inspect.iscoroutinefunction(getattr(parser, "pubsub_push_handler_func", None)):

        async def keep_async(response: Any) -> Any:
            return response

        setter(keep_async)
    else:
        setter(lambda response: response)


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


def _auth_failure(exc: Exception) -> ClientFailure:
    """An AUTH refusal (WRONGPASS, or AUTH without a configured password) that the library raised
    as AuthenticationError, a ConnectionError subclass it retries after reconnecting, instead of
    handing back the error reply: a client outcome, explained by a registry client entry."""
    return ClientFailure(type(exc).__name__, str(exc))


class _AsyncRedisPyFamily(_RedisPyFamily):
    """The asyncio client, driven on an event loop of its own, one command at a time."""

    client_module = ".asyncio"

    def __init__(self, endpoint: Endpoint, protocol: int) -> None:
        self._loop = asyncio.new_event_loop()
        super().__init__(endpoint, protocol)

    def _await(self, value: Any) -> Any:
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            return self._loop.run_until_complete(value)
        return value

    def call(self, *args: Any) -> Any:
        try:
            if answered_by_push(self.protocol, args):
                reply = self._loop.run_until_complete(self._push_reply(args))
            else:
                reply = self._loop.run_until_complete(self._client.execute_command(*args))
        except self._lib.exceptions.ResponseError as exc:
            return self._error(exc)
        except self._lib.exceptions.AuthenticationError as exc:
            return _auth_failure(exc)
        return self._normalize(reply)

    async def _push_reply(self, args: tuple[Any, ...]) -> Any:
        await self._client.initialize()
        connection = self._client.connection
        await connection.send_command(*args)
        return await connection.read_response(push_request=True)

    def receive(self, timeout: float) -> Any:
        async def read() -> Any:
            await self._client.initialize()
            connection = self._client.connection
            _keep_invalidations(connection)
            # with a timeout given, the library returns None when nothing arrived
            return await connection.read_response(timeout=timeout, push_request=True)

        try:
            return self._normalize(self._loop.run_until_complete(read()))
        except self._lib.exceptions.ResponseError as exc:
            return self._error(exc)

    def close(self) -> None:
        try:
            for client in (self._client, self._typed):
                if client is not None:
                    closing = getattr(client, "aclose", None) or client.close
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
