"""Shared fixtures for the harness's own tests.

Tests that need engines use the real engine store (``respmatrix engines install all`` first);
a missing engine fails the test with the command that installs it, never a silent skip.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from respmatrix.catalog import EngineCatalog, EngineSpec
from respmatrix.launcher import EngineProcess
from respmatrix.store import EngineStore

pytest_plugins = ["pytester"]

# The matrix the project promises, in catalog order: the eight engines and the two stack
# variants (the same redis-7.2/7.4 installs started with the Redis Stack modules loaded).
ENGINE_IDS = [
    "redis-7.2",
    "redis-7.2+stack",
    "redis-7.4",
    "redis-7.4+stack",
    "redis-8.0",
    "redis-8.2",
    "valkey-8.0",
    "valkey-8.1",
    "valkey-9.0",
    "valkey-9.1",
]


# A CI runner may start us with SIGINT ignored (a background job of a non-interactive shell);
# children would inherit that and the Ctrl-C tests could not interrupt anything. Take Python's
# normal handler back: exec resets it to the default in every child.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_configure(config: pytest.Config) -> None:
    """Install missing engines once, in the controller, before any xdist worker starts.

    The store verifies every sha256 and is idempotent, so on a machine that has them this costs
    a few stat calls. Set RESPMATRIX_NO_INSTALL=1 to test against the store as it is.
    """
    if hasattr(config, "workerinput") or os.environ.get("RESPMATRIX_NO_INSTALL"):
        return
    from respmatrix.cli import install_engines

    install_engines(list(EngineCatalog.load()))


@pytest.fixture(scope="session")
def catalog() -> EngineCatalog:
    return EngineCatalog.load()


@pytest.fixture(scope="session")
def store() -> EngineStore:
    return EngineStore()


def require_installed(store: EngineStore, spec: EngineSpec) -> None:
    if not store.is_installed(spec):
        pytest.fail(
            f"engine {spec.id} is not installed in {store.root}; "
            f"run `respmatrix engines install {spec.id}` (the README's setup does)"
        )


@pytest.fixture(scope="session")
def running(catalog: EngineCatalog, store: EngineStore) -> Iterator[dict[str, EngineProcess]]:
    """One valkey and one redis server shared by the tests of this session."""
    started: dict[str, EngineProcess] = {}
    try:
        for engine_id in ("valkey-9.1", "redis-7.2"):
            spec = catalog.get(engine_id)
            require_installed(store, spec)
            started[engine_id] = EngineProcess(
                spec, store.server_path(spec), store.server_env(spec)
            ).start()
        yield started
    finally:
        for process in started.values():
            process.stop()
