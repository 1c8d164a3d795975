"""The engines and client connections of one worker, started on first use and reused.

A worker (the pytest process, or each xdist worker) owns one pool: each engine starts once, each
(engine, client, protocol) connects once, and ``close`` stops everything. Isolation between cases
is by flushing, never by a server per test.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from respmatrix.catalog import EngineCatalog, EngineSpec
from respmatrix.clients import adapter_class
from respmatrix.clients.base import ClientAdapter, Endpoint
from respmatrix.clients.resp import RespConnection
from respmatrix.config_defaults import config_snapshot
from respmatrix.inventory import command_inventory
from respmatrix.launcher import EngineProcess, check_identity, identify

if TYPE_CHECKING:
    from respmatrix.providers.docker import DockerEngine

# A blocking command times out on the server's cron tick (1000/hz ms): at the default hz 10 a
# 0.01 s BLPOP answers after ~100 ms, and every client mode pays that again. At hz 100 it is
# ~10 ms. No reply changes: cases that depend on lazy expiry turn active expiry off themselves,
# and the recorded config leaves hz out (config_defaults.HARNESS_SET).
SUITE_SERVER_ARGS = ("--hz", "100")


@dataclass
class RunningEngine:
    """An engine the pool can hand out: where it listens and what it is."""

    spec: EngineSpec
    endpoint: Endpoint
    facts: dict[str, Any]
    process: EngineProcess | DockerEngine | None = None  # None for an external server

    @property
    def id(self) -> str:
        return self.spec.id


class EnginePool:
    """Engines and connections for one worker."""

    def __init__(
        self,
        catalog: EngineCatalog,
        store: Any = None,
        engine_urls: dict[str, str] | None = None,
        log_dir: Path | None = None,
        provider: str = "binary",
        engine_images: dict[str, str] | None = None,
    ) -> None:
        self.catalog = catalog
        self._store = store
        self.engine_urls = engine_urls or {}
        self.provider = provider  # binary (the engine store) or docker (a container per engine)
        self.engine_images = engine_images or {}  # docker: engine id -> image to run instead
        self.log_dir = log_dir
        self._engines: dict[str, RunningEngine] = {}
        self._clients: dict[tuple[str, str, int], ClientAdapter] = {}
        self._admins: dict[str, RespConnection] = {}
        self._failed: dict[str, Exception] = {}
        atexit.register(self.close)
        _stop_on_sigterm()

    @property
    def store(self) -> Any:
        if self._store is None:
            from respmatrix.store import EngineStore

            self._store = EngineStore()
        return self._store

    def engine(self, engine_id: str) -> RunningEngine:
        """The running engine for ``engine_id``, started on first use."""
        if engine_id in self._engines:
            return self._engines[engine_id]
        if engine_id in self._failed:
            # Do not retry a failed start for every case; report the first failure again.
            raise self._failed[engine_id]
        spec = self.catalog.get(engine_id)
        running = None
        try:
            if engine_id in self.engine_urls:
                running = self._external(spec)
            elif self.provider == "docker":
                running = self._container(spec)
            else:
                running = self._launch(spec)
            # The command inventory rides along in the results, for coverage and availability,
            # and the starting config, for the table of defaults that differ.
            endpoint = running.endpoint
            running.facts["commands"] = command_inventory(endpoint.host, endpoint.port)
            try:
                running.facts["config"] = config_snapshot(endpoint.host, endpoint.port)
            except RuntimeError:
                if running.process is not None:
                    raise
                # a server the user runs may deny CONFIG GET to this user: no config column
        except Exception as exc:
            if running is not None and running.process is not None:
                running.process.stop()
            self._failed[engine_id] = exc
            raise
        self._engines[engine_id] = running
        return running

    def _launch(self, spec: EngineSpec) -> RunningEngine:
        from respmatrix.store import EngineNotInstalledError

        if not self.store.is_installed(spec):
            raise EngineNotInstalledError(spec, self.store.root)
        process = EngineProcess(
            spec,
            self.store.server_path(spec),
            self.store.server_env(spec),
            self.log_dir,
            extra_args=(*self.store.module_args(spec), *SUITE_SERVER_ARGS),
        ).start()
        return RunningEngine(
            spec, Endpoint.single(process.host, process.port), process.describe(), process
        )

    def _container(self, spec: EngineSpec) -> RunningEngine:
        from respmatrix.providers.docker import DockerEngine

        engine = DockerEngine(
            spec,
            self.engine_images.get(spec.id),
            extra_args=SUITE_SERVER_ARGS,
            log_dir=self.log_dir,
        ).start()
        return RunningEngine(
            spec, Endpoint.single(engine.host, engine.port), engine.describe(), engine
        )

    def _external(self, spec: EngineSpec) -> RunningEngine:
        url = urlparse(self.engine_urls[spec.id])
        host, port = url.hostname or "127.0.0.1", url.port or 6379
        identity = identify(host, port)
        check_identity(spec, identity, f"the server at {host}:{port}")
        facts = {
            "line": identity.line,
            "version": identity.version,
            "build": identity.build,
            "provider": "external",
            "modules": identity.modules,
            "module_versions": identity.module_versions,
            **({"variant": spec.variant} if spec.variant else {}),
        }
        return RunningEngine(spec, Endpoint.single(host, port), facts)

    def admin(self, engine_id: str) -> RespConnection:
        """A raw RESP2 connection for housekeeping (flushing), apart from the client under test."""
        conn = self._admins.get(engine_id)
        if conn is None:
            endpoint = self.engine(engine_id).endpoint
            conn = self._admins[engine_id] = RespConnection(endpoint.host, endpoint.port)
        return conn

    def client(self, engine_id: str, client_id: str, protocol: int) -> ClientAdapter:
        key = (engine_id, client_id, protocol)
        adapter = self._clients.get(key)
        if adapter is None:
            endpoint = self.engine(engine_id).endpoint
            adapter = self._clients[key] = adapter_class(client_id)(endpoint, protocol)
        return adapter

    def reset(self, engine_id: str) -> None:
        """Empty every database of an engine before the next case."""
        reply = self.admin(engine_id).call("FLUSHALL", "SYNC")
        if reply != "OK":
            raise RuntimeError(f"FLUSHALL on {engine_id} answered {reply!r}")

    def drop_client(self, engine_id: str, client_id: str, protocol: int) -> None:
        """Forget a connection whose state a failed case may have left dirty."""
        adapter = self._clients.pop((engine_id, client_id, protocol), None)
        if adapter is not None:
            adapter.close()

    def close(self) -> None:
        for adapter in self._clients.values():
            # closing a dead connection must not stop the cleanup of the rest
            with contextlib.suppress(Exception):
                adapter.close()
        self._clients.clear()
        for conn in self._admins.values():
            conn.close()
        self._admins.clear()
        for running in self._engines.values():
            if running.process is not None:
                running.process.stop()
        self._engines.clear()


_handler_installed = False


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so atexit handlers (and pool cleanup) run."""
    global _handler_installed
    if _handler_installed:
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        try:
            signal.signal(signal.SIGTERM, _exit_on_signal)
        except ValueError:  # not the main thread
            return
    _handler_installed = True
