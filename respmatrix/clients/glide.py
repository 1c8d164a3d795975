"""Adapters for Valkey GLIDE (PyPI ``valkey-glide``, asyncio; ``valkey-glide-sync``, sync).

Commands go through ``custom_command``, GLIDE's raw-command path. That path still runs GLIDE's
own reply conversion (glide-core ``value_conversion.rs``: HGETALL a map, SMEMBERS a set, ZSCORE
a double, EXPIRE a boolean... in RESP2 as in RESP3); the adapter keeps what GLIDE hands back, and
the divergence registry's ``kind: client`` entries explain those shapes.

GLIDE multiplexes one connection per node, so commands that change what that connection *is*
(a subscriber, a monitor, a connection that stops replying, another protocol) cannot be sent
through it without breaking the client: the adapter raises :class:`ClientCannotExpress` for
them instead (see ``_cannot_express``).
"""

from __future__ import annotations

import asyncio
import atexit
import re
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from importlib import import_module
from typing import Any, ClassVar

from respmatrix.clients.base import UNCONVERTED, ClientAdapter, ClientCannotExpress, Endpoint
from respmatrix.clients.glide_shapes import INEXPRESSIBLE, UNCHANGED, through_glide
from respmatrix.replies import ClientFailure, RespError, normalize

# GLIDE's own deadline for one request (its default is 250 ms). GLIDE already extends it for
# blocking commands by their own timeout argument (BLPOP k 3 answers after 3 s even with a 2 s
# request timeout; measured), so this only has to cover a slow non-blocking command on a busy
# 2-core machine (DEBUG SLEEP, a big RESTORE, WAITAOF); 10 s is far above any of them.
REQUEST_TIMEOUT_MS = 10_000

# GLIDE sets no deadline of its own on a blocking command with timeout 0 (BLPOP k 0 waits
# forever; measured), and a reply GLIDE never delivers would leave a call waiting too. Past this
# the adapter gives up with TimeoutError (an `error` outcome) instead of hanging the run.
CALL_DEADLINE_S = 30.0

# Commands that may block on the server: the sync client runs them on a helper thread so the
# deadline above can be applied (every other command is bounded by REQUEST_TIMEOUT_MS).
_BLOCKING = {"BLPOP", "BRPOP", "BLMOVE", "BLMPOP", "BRPOPLPUSH", "BZPOPMIN", "BZPOPMAX"}
_BLOCKING |= {"BZMPOP", "XREAD", "XREADGROUP", "WAIT", "WAITAOF"}

# redis-rs (GLIDE's fork) turns these error codes into error kinds and prints the kind's name
# instead of the code: "-ERR x" reaches Python as "An error was signalled by the server: -
# ResponseError: x". Every other code prints as "CODE: x". Both are turned back into wire text.
_KIND_CODES = {
    "ResponseError": "ERR",
    "ExecAbortError": "EXECABORT",
    "BusyLoadingError": "LOADING",
    "NoScriptError": "NOSCRIPT",
    "Moved": "MOVED",
    "Ask": "ASK",
    "TryAgain": "TRYAGAIN",
    "ClusterDown": "CLUSTERDOWN",
    "CrossSlot": "CROSSSLOT",
    "MasterDown": "MASTERDOWN",
    "ReadOnly": "READONLY",
    "NotBusy": "NOTBUSY",
    "PermissionDenied": "NOPERM",
}
_KIND_ERROR = re.compile(r"An error was signalled by the server: - (\w+)(?:: (.*))?", re.DOTALL)
_CODE_ERROR = re.compile(r"([A-Z][A-Z0-9_-]*): (.*)", re.DOTALL)

_SUBSCRIBING = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE"}
_SUBSCRIBING |= {"SUNSUBSCRIBE"}


def _cannot_express(args: tuple[Any, ...], protocol: int) -> str | None:
    """Why GLIDE's shared connection cannot carry this command, or None when it can.

    Each reason was observed with valkey-glide 2.6.0 on valkey 9.1 and redis 8.2.
    """
    words = [_word(a) for a in args[:3]]
    name = words[0] if words else ""
    sub = words[1] if len(words) > 1 else ""
    if name in _SUBSCRIBING:
        return (
            f"{name} through custom_command returns None instead of the confirmation and turns "
            "the shared connection into a subscriber (RESP2: every later command is refused); "
            "GLIDE subscribes only through its pubsub_subscriptions configuration"
        )
    if "." in name:  # FT.SEARCH, JSON.SET, BF.ADD, TS.ADD...: Redis Stack module commands
        return (
            f"{name}: GLIDE sends module commands through its own ft/json APIs; through "
            "custom_command it rewrites module error replies (a ':' after the first word) and "
            "fails to convert FT.SEARCH/FT.AGGREGATE/FT.PROFILE replies"
        )
    if name == "MONITOR":
        return (
            "MONITOR turns the shared connection into a monitor: every later keyspace command "
            'is refused with "Replica can\'t interact with the keyspace"'
        )
    if name == "CLIENT" and sub == "REPLY" and len(words) > 2 and words[2] in {"OFF", "SKIP"}:
        return (
            "CLIENT REPLY OFF|SKIP: GLIDE waits for a reply that never comes; the request times "
            "out and so does every later request on the shared connection"
        )
    if name == "QUIT":
        return "QUIT closes the shared connection and GLIDE reconnects silently, hiding it"
    if name == "RESET":
        return (
            "RESET puts the shared connection back to RESP2, database 0, no name and no "
            "tracking behind GLIDE's back, which keeps its own configuration"
        )
    if (
        protocol == 3
        and words[:2] == ["DEBUG", "PROTOCOL"]
        and words[2:] in (["BIGNUM"], ["ATTRIB"])
    ):
        return (
            "a RESP3 big number or attribute reply aborts the Python process (a Rust panic, "
            "'not yet implemented', in GLIDE's reply conversion)"
        )
    return None


def _word(arg: Any) -> str:
    if isinstance(arg, bytes):
        return arg.decode(errors="replace").upper()
    return str(arg).upper()


def _argument(arg: Any) -> str | bytes:
    """One command argument as GLIDE takes it (str or bytes), numbers as the raw client writes."""
    if isinstance(arg, str | bytes):
        return arg
    if isinstance(arg, bool):
        raise TypeError("booleans are not RESP arguments")
    if isinstance(arg, int | float):
        return repr(arg)
    raise TypeError(f"cannot send {type(arg).__name__} as a RESP argument")


def wire_error(message: str) -> RespError | None:
    """The wire text of a server error GLIDE reports, or None when it is not one."""
    kind = _KIND_ERROR.fullmatch(message)
    if kind and kind.group(1) in _KIND_CODES:
        code = _KIND_CODES[kind.group(1)]
        detail = kind.group(2)
        return RespError(code if detail is None else f"{code} {detail}")
    code = _CODE_ERROR.fullmatch(message)
    if code:
        return RespError(f"{code.group(1)} {code.group(2)}")
    return None


class _GlideFamily(ClientAdapter):
    module_name: ClassVar[str]  # "glide" (asyncio) or "glide_sync"
    api = "glide"

    def __init__(self, endpoint: Endpoint, protocol: int) -> None:
        super().__init__(endpoint, protocol)
        lib = import_module(self.module_name)
        self._lib = lib
        self._exceptions = import_module("glide_shared.exceptions")
        _quiet_logger(lib)
        config = lib.GlideClientConfiguration(
            [lib.NodeAddress(host, port) for host, port in endpoint.nodes],
            protocol=lib.ProtocolVersion.RESP2 if protocol == 2 else lib.ProtocolVersion.RESP3,
            request_timeout=REQUEST_TIMEOUT_MS,
        )
        self._helper: ThreadPoolExecutor | None = None  # sync client: runs blocking commands
        self._stuck = False
        self._client = self._await(lib.GlideClient.create(config))

    def _await(self, value: Any) -> Any:
        return value

    def call(self, *args: Any) -> Any:
        reason = _cannot_express(args, self.protocol)
        if reason:
            raise ClientCannotExpress(reason)
        command = [_argument(a) for a in args]
        errors = self._exceptions
        try:
            reply = self._send(command)
        except (errors.ConnectionError, errors.ClosingError, TimeoutError):
            raise  # engine gone, client closed, or past the deadline: the harness's problem
        except errors.RequestError as exc:
            if type(exc) in (errors.RequestError, errors.ExecAbortError):
                error = wire_error(str(exc))
                if error is not None:
                    return error
            # GLIDE refused the command itself (it checks blocking timeouts) or timed out.
            return ClientFailure(type(exc).__name__, str(exc))
        except Exception as exc:  # GLIDE's reply parser failed (SystemError): a client outcome
            return ClientFailure(type(exc).__name__, str(exc))
        return normalize(reply)

    def invoke(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """GLIDE's typed method (``set``, ``hexpire``...) on the same client, value normalized."""
        function = getattr(self._client, method, None)
        if method.startswith("_") or not callable(function):
            return ClientFailure(
                "missing-method", f"{self.package} {self.package_version()} has no {method}()"
            )
        errors = self._exceptions
        try:
            reply = self._await(function(*args, **kwargs))
        except (errors.ConnectionError, errors.ClosingError, errors.TimeoutError):
            raise
        except errors.RequestError as exc:
            error = wire_error(str(exc)) if type(exc) is errors.RequestError else None
            return error or ClientFailure(type(exc).__name__, str(exc))
        except Exception as exc:  # GLIDE refused the arguments or choked on the reply
            return ClientFailure(type(exc).__name__, str(exc))
        return normalize(reply)

    def api_value(self, name: str, args: list[Any] | None) -> Any:
        """A name from the GLIDE package (``ConditionalChange.ONLY_IF_EXISTS``, ``ExpirySet``),
        called with ``args`` when given."""
        value: Any = self._lib
        for part in name.split("."):
            value = getattr(value, part)
        return value if args is None else value(*args)

    def _send(self, command: list[str | bytes]) -> Any:
        """Send one command through custom_command, within CALL_DEADLINE_S."""
        if self._stuck:
            raise TimeoutError(f"{self.client_id}: an earlier call never returned")
        if _word(command[0]) not in _BLOCKING:
            return self._client.custom_command(command)
        if self._helper is None:
            self._helper = ThreadPoolExecutor(1, thread_name_prefix="respmatrix-glide")
        pending = self._helper.submit(self._client.custom_command, command)
        try:
            return pending.result(timeout=CALL_DEADLINE_S)
        except FutureTimeout:
            self._stuck = True  # the helper thread stays blocked in GLIDE; stop using it
            raise TimeoutError(
                f"{self.client_id}: no reply to {_word(command[0])} within {CALL_DEADLINE_S} s"
            ) from None

    def converted_reply(self, args: tuple[Any, ...], value: Any) -> Any:
        """``value``, a plain reply to ``args`` as the wire carries it, as GLIDE hands it back
        (glide_shapes.UNCHANGED when GLIDE leaves that command alone)."""
        shaped = through_glide(args, value)
        return UNCONVERTED if shaped is UNCHANGED or shaped is INEXPRESSIBLE else shaped

    @property
    def native(self) -> Any:
        return self._client

    def close(self) -> None:
        if self._helper is not None:
            self._helper.shutdown(wait=False)
        if not self._stuck:
            self._await(self._client.close())


class _AsyncGlide(_GlideFamily):
    """The asyncio client, driven one command at a time on an event loop shared by every GLIDE
    asyncio adapter of the process.

    Shared because GLIDE delivers every asyncio client's replies through one process-wide pipe
    whose reader is registered on the loop of the first client: a client on a second loop never
    sees its replies while the first loop is idle (measured: the second client's first command
    waits forever). redis-py's asyncio adapters keep a loop each; GLIDE's cannot.
    """

    # one shared loop: a connection cannot wait for a reply while another one sends
    waits_in_parallel = False

    def _await(self, value: Any) -> Any:
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            return _shared_loop().run_until_complete(value)
        return value

    def _send(self, command: list[str | bytes]) -> Any:
        if self._stuck:
            raise TimeoutError(f"{self.client_id}: an earlier call never returned")
        loop = _shared_loop()
        # A timer that cancels the task, rather than asyncio.wait_for, which costs a second task
        # per command (measured: about twice the round trip).
        task = loop.create_task(self._client.custom_command(command))
        timer = loop.call_later(CALL_DEADLINE_S, task.cancel)
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            # The server may still be blocked on this connection: later commands would queue.
            self._stuck = True
            raise TimeoutError(
                f"{self.client_id}: no reply to {_word(command[0])} within {CALL_DEADLINE_S} s"
            ) from None
        finally:
            timer.cancel()

    def close(self) -> None:
        self._await(self._client.close())  # fails whatever is still pending


_loop: asyncio.AbstractEventLoop | None = None


def _shared_loop() -> asyncio.AbstractEventLoop:
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
        atexit.register(_loop.close)
    return _loop


_logger_quiet = False


def _quiet_logger(lib: Any) -> None:
    """Turn GLIDE's console logger off once: it prints timeout warnings on stdout, which the
    harness records itself."""
    global _logger_quiet
    if not _logger_quiet:
        logger = import_module(f"{lib.__name__}.logger")
        logger.Logger.set_logger_config(logger.Level.OFF)
        _logger_quiet = True


class GlideAsyncClient(_AsyncGlide):
    client_id = "valkey-glide"
    package = "valkey-glide"
    module_name = "glide"


class GlideSyncClient(_GlideFamily):
    client_id = "valkey-glide-sync"
    package = "valkey-glide-sync"
    module_name = "glide_sync"
