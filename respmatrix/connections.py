"""The connections of one case: the client under test and any extra ones its steps name.

A step runs on connection ``main`` (the client under test) unless it names another with
``conn: b``. Extra connections are further adapters of the same client mode and protocol,
opened on first use and closed when the case ends, so nothing they changed (subscriptions,
tracking, blocked commands) outlives the case. A step may also

- start its command in the background (``background: NAME``, on an extra connection): a
  thread sends it and waits for the reply, which a later ``await: NAME`` step checks. This
  is how a case blocks ``BLPOP`` on one connection and wakes it with ``LPUSH`` on another;
- read a message pushed to a connection without sending anything (``receive: true``): a
  pub/sub message, a RESP3 invalidation, a RESP2 tracking redirect message. When nothing
  arrives within ``timeout_ms`` the step observes null;
- bound how long its reply took (``took_ms: [low, high]``), e.g. that ``BLPOP k 0.1`` times out
  after about 100 ms rather than at once or after a second.

No case can hang: an awaited reply that does not come within ``timeout_ms`` is unblocked on
the server (``CLIENT UNBLOCK``, then ``CLIENT KILL``, both aimed at that connection's own id
only) and ends the case with :class:`NoReplyError`, which the harness reports as an error.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from respmatrix.clients.base import ClientAdapter, ClientCannotExpress
from respmatrix.clients.resp import RespConnection
from respmatrix.datafiles import DataFileError
from respmatrix.replies import ClientFailure

MAIN = "main"
DEFAULT_AWAIT_MS = 5000  # longer than any blocking timeout a case should use
DEFAULT_RECEIVE_MS = 1000
_UNBLOCK_GRACE_S = 2.0


class NoReplyError(Exception):
    """A background command got no reply within its await timeout."""


class Started:
    """What a ``background`` step observes: nothing yet; its ``await`` step checks the reply."""

    def __repr__(self) -> str:
        return "<started in the background>"


STARTED = Started()


@dataclass
class _Background:
    name: str
    conn: str
    args: tuple[Any, ...]
    thread: threading.Thread
    began: float
    reply: Any = None
    failure: BaseException | None = None
    ended: float | None = None
    awaited: bool = False


@dataclass
class CaseConnections:
    """Named connections of one case, and the background commands running on them."""

    main: ClientAdapter
    extra: dict[str, ClientAdapter] = field(default_factory=dict)
    ids: dict[str, int] = field(default_factory=dict)  # server-side client id per extra
    running: dict[str, _Background] = field(default_factory=dict)
    last_took_ms: float | None = None

    def adapter(self, name: str) -> ClientAdapter:
        """The connection ``name``, opened on first use."""
        if name == MAIN:
            return self.main
        adapter = self.extra.get(name)
        if adapter is None:
            adapter = self.main.open_another()
            self.extra[name] = adapter
            # its id lets a hung command be unblocked or killed without touching any other client
            client_id = adapter.call("CLIENT", "ID")
            if isinstance(client_id, int):
                self.ids[name] = client_id
        return adapter

    def perform(self, step: Any, send: Callable[[ClientAdapter], Any]) -> Any:
        """Run one step; ``send(adapter)`` sends the step's command through a connection.

        Returns the observed reply, or :data:`STARTED` for a background step.
        """
        self.last_took_ms = None
        raw = step.raw
        conn = raw.get("conn", MAIN)
        if "await" in raw:
            return self._await(raw["await"], raw.get("timeout_ms", DEFAULT_AWAIT_MS))
        self._check_idle(conn)
        try:
            adapter = self.adapter(conn)
            if "background" in raw and not adapter.waits_in_parallel:
                raise ClientCannotExpress(
                    f"{adapter.client_id} drives every connection through one event loop, so "
                    "one cannot wait for a reply while another sends"
                )
        except ClientCannotExpress as exc:
            # reported on this step (a background one too): later steps would only show its
            # absence, e.g. a check that a client is blocked
            return ClientFailure("cannot-express", str(exc))
        began = time.monotonic()
        if raw.get("receive"):
            try:
                observed = adapter.receive(raw.get("timeout_ms", DEFAULT_RECEIVE_MS) / 1000)
            except ClientCannotExpress as exc:
                observed = ClientFailure("cannot-express", str(exc))
        elif "background" in raw:
            self._start(raw["background"], conn, adapter, send, step.send)
            return STARTED
        else:
            observed = send(adapter)
        self.last_took_ms = (time.monotonic() - began) * 1000
        return observed

    def timing_mismatch(self, step: Any) -> str | None:
        """Why the last step's reply time breaks its ``took_ms`` bounds (None when it does not)."""
        bounds = step.raw.get("took_ms")
        if bounds is None or self.last_took_ms is None:
            return None
        low, high = bounds
        if low <= self.last_took_ms <= high:
            return None
        return f"the reply took {self.last_took_ms:.0f} ms, expected [{low}, {high}] ms"

    def command_of(self, step: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """The command whose reply a step checks: for an await step, its background command."""
        running = self.running.get(step.raw.get("await", ""))
        return running.args if running else args

    def label(self, step: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """How a step reads in a transcript: its command, prefixed by its connection if not main."""
        raw = step.raw
        if "await" in raw:
            running = self.running.get(raw["await"])
            prefix = f"[{running.conn}]" if running else "[?]"
            return (prefix, "await", raw["await"], *(running.args if running else ()))
        conn = raw.get("conn", MAIN)
        if raw.get("receive"):
            return (f"[{conn}]", "receive")
        return args if conn == MAIN else (f"[{conn}]", *args)

    def close(self) -> None:
        """Stop what still runs in the background and close every extra connection."""
        stuck = set()
        for running in self.running.values():
            if running.thread.is_alive():
                self._unblock(running)
            if running.thread.is_alive():
                stuck.add(running.conn)
        self.running.clear()
        for name, adapter in self.extra.items():
            if name in stuck:
                continue  # its thread still uses it (an asyncio loop cannot close while running)
            with contextlib.suppress(Exception):  # a killed connection may refuse to close
                adapter.close()
        self.extra.clear()
        self.ids.clear()

    # -- background commands ------------------------------------------------------------------
    def _check_idle(self, conn: str) -> None:
        for running in self.running.values():
            if running.conn == conn and not running.awaited:
                raise RuntimeError(
                    f"connection {conn!r} is still waiting for background step "
                    f"{running.name!r}; await it first"
                )

    def _start(
        self,
        name: str,
        conn: str,
        adapter: ClientAdapter,
        send: Callable[[ClientAdapter], Any],
        args: tuple[Any, ...],
    ) -> None:
        def work() -> None:
            try:
                running.reply = send(adapter)
            except BaseException as exc:  # handed to the awaiting step
                running.failure = exc
            finally:
                running.ended = time.monotonic()

        thread = threading.Thread(target=work, name=f"respmatrix-{conn}-{name}", daemon=True)
        running = _Background(name, conn, args, thread, time.monotonic())
        self.running[name] = running
        thread.start()

    def _await(self, name: str, timeout_ms: int) -> Any:
        running = self.running[name]
        running.thread.join(timeout_ms / 1000)
        running.awaited = True
        if running.thread.is_alive():
            self._unblock(running)
            raise NoReplyError(
                f"connection {running.conn!r}: no reply to {list(running.args)!r} within "
                f"{timeout_ms} ms (background step {name!r})"
            )
        assert running.ended is not None
        self.last_took_ms = (running.ended - running.began) * 1000
        if running.failure is not None:
            raise running.failure
        return running.reply

    def _unblock(self, running: _Background) -> None:
        """Free a connection stuck in a command: unblock it, or else kill it (by its own id)."""
        client_id = self.ids.get(running.conn)
        if client_id is None:
            return
        endpoint = self.main.endpoint
        with (
            contextlib.suppress(OSError),
            RespConnection(endpoint.host, endpoint.port) as admin,
        ):
            for command in (
                ("CLIENT", "UNBLOCK", client_id, "ERROR"),
                ("CLIENT", "KILL", "ID", client_id),
            ):
                admin.call(*command)
                running.thread.join(_UNBLOCK_GRACE_S)
                if not running.thread.is_alive():
                    return


def check_steps(steps: list[dict[str, Any]], path: Path) -> None:
    """Refuse step scripts that could not run: an await of nothing, a background step never
    awaited, a background step on the main connection (which later steps need)."""
    started: set[str] = set()
    for index, step in enumerate(steps, 1):
        where = f"{path}: step {index}"
        if "background" in step:
            name = step["background"]
            if step.get("conn", MAIN) == MAIN:
                raise DataFileError(f"{where}: a background step runs on an extra connection")
            if name in started:
                raise DataFileError(f"{where}: background step {name!r} started twice")
            started.add(name)
        if "await" in step:
            if step["await"] not in started:
                raise DataFileError(f"{where}: awaits {step['await']!r}, which no step started")
            started.discard(step["await"])
    if started:
        raise DataFileError(f"{path}: background step {sorted(started)[0]!r} is never awaited")
