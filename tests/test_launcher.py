"""Starting real engines: identity checks, clean stops, no process outliving its starter."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from respmatrix.catalog import EngineCatalog
from respmatrix.clients.resp import RespConnection
from respmatrix.launcher import (
    EngineIdentityError,
    EngineProcess,
    EngineStartError,
    check_identity,
    identify,
    sweep_orphaned_workdirs,
)
from respmatrix.store import EngineStore
from tests.conftest import require_installed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); read its state
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


@pytest.mark.parametrize("engine_id", [e.id for e in EngineCatalog.load()])
def test_every_engine_starts_and_identifies(
    engine_id: str, catalog: EngineCatalog, store: EngineStore
) -> None:
    spec = catalog.get(engine_id)
    require_installed(store, spec)
    process = EngineProcess(
        spec, store.server_path(spec), store.server_env(spec), extra_args=store.module_args(spec)
    )
    with process:
        assert process.identity is not None
        assert (process.identity.line, process.identity.version) == (spec.line, spec.version)
        # the modules loaded (none for a base id) are checked and recorded with their versions
        assert process.identity.module_versions == spec.loaded_modules
        assert process.describe()["module_versions"] == spec.loaded_modules
        assert process.identity.build  # recorded in every result
        # Valkey keeps redis_version:7.2.4 for compatibility: never the way to tell them apart
        if spec.line == "valkey":
            assert process.identity.info["redis_version"] == "7.2.4"
            assert process.identity.info["valkey_version"] == spec.version
        workdir = process.workdir
        pid = process._proc.pid
    assert workdir is not None and not workdir.exists()
    assert not _alive(pid)


def test_identity_mismatch_is_refused(running: dict[str, EngineProcess]) -> None:
    valkey = running["valkey-9.1"]
    wrong = dataclasses.replace(valkey.spec, version="9.1.99")
    with pytest.raises(EngineIdentityError, match=r"refusing"):
        check_identity(wrong, identify(valkey.host, valkey.port), "test server")
    as_redis = dataclasses.replace(valkey.spec, line="redis")
    with pytest.raises(EngineIdentityError, match=r"identifies as valkey 9.1.2"):
        check_identity(as_redis, identify(valkey.host, valkey.port), "test server")


def test_a_server_without_the_variants_modules_is_refused(
    running: dict[str, EngineProcess], catalog: EngineCatalog
) -> None:
    redis = running["redis-7.2"]  # started as the base id: no module loaded
    identity = identify(redis.host, redis.port)
    assert identity.module_versions == {}
    check_identity(catalog.get("redis-7.2"), identity, "test server")
    with pytest.raises(EngineIdentityError, match=r"should have the modules ReJSON 2\.6\.9.*none"):
        check_identity(catalog.get("redis-7.2+stack"), identity, "test server")
    # and a module the catalog does not list is refused as well (redis-8.0 has vectorset)
    with_vectorset = dataclasses.replace(identity, module_versions={"vectorset": "0.0.1"})
    with pytest.raises(EngineIdentityError, match=r"modules none .* reports vectorset 0\.0\.1"):
        check_identity(catalog.get("redis-7.2"), with_vectorset, "test server")


def test_missing_binary_names_the_install_command(catalog: EngineCatalog, tmp_path) -> None:
    spec = catalog.get("valkey-9.1")
    with pytest.raises(EngineStartError, match=r"respmatrix engines install valkey-9.1"):
        EngineProcess(spec, tmp_path / "nope" / "valkey-server").start()


def test_server_that_exits_at_start_shows_its_log(
    catalog: EngineCatalog, store: EngineStore
) -> None:
    spec = catalog.get("valkey-9.1")
    require_installed(store, spec)
    process = EngineProcess(
        spec, store.server_path(spec), store.server_env(spec), extra_args=("--no-such-option", "1")
    )
    with pytest.raises(EngineStartError, match=r"(?i)no-such-option|bad directive"):
        process.start()
    assert process.workdir is None


def test_engine_dies_with_a_killed_worker(catalog: EngineCatalog, store: EngineStore) -> None:
    """A worker killed with SIGKILL cannot clean up; the server must still go (PDEATHSIG)."""
    spec = catalog.get("valkey-9.1")
    require_installed(store, spec)
    script = textwrap.dedent(
        """
        import sys, time
        from respmatrix.catalog import EngineCatalog
        from respmatrix.store import EngineStore
        from respmatrix.launcher import EngineProcess
        spec = EngineCatalog.load().get("valkey-9.1")
        store = EngineStore()
        p = EngineProcess(spec, store.server_path(spec), store.server_env(spec)).start()
        print(p._proc.pid, p.port, flush=True)
        time.sleep(60)
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    pid, port = map(int, worker.stdout.readline().split())
    assert RespConnection("127.0.0.1", port).call("PING") == "PONG"
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not _alive(pid), "the engine outlived the worker that started it"
    orphans = list(Path(tempfile.gettempdir()).glob(f"respmatrix-engine-{worker.pid}-*"))
    assert orphans, "expected the killed worker's engine folder to be left behind"
    removed = sweep_orphaned_workdirs()  # what the next engine start does first
    assert set(orphans) <= set(removed) and not any(o.exists() for o in orphans)


def test_requested_port_in_use_is_one_clear_error(catalog, store) -> None:
    import socket

    spec = catalog.get("valkey-9.1")
    require_installed(store, spec)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = EngineProcess(spec, store.server_path(spec), store.server_env(spec), port=port)
        with pytest.raises(
            EngineStartError, match=rf"port {port} on 127\.0\.0\.1 is already in use"
        ):
            process.start()
    assert process.workdir is None
