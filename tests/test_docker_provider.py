"""The docker provider against this machine's real Docker daemon (about 35 s of CPU).

No image can be pulled here, so every image is built from the engine store with
``respmatrix engines build-image``'s code. Without a daemon the module is skipped, except in CI
(CI=true), where a missing daemon is a failure.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from respmatrix.catalog import EngineCatalog
from respmatrix.clients.resp import RespConnection
from respmatrix.datafiles import data_dir
from respmatrix.launcher import EngineIdentityError, EngineStartError
from respmatrix.pool import EnginePool
from respmatrix.providers import images, ownership
from respmatrix.providers.docker import DockerEngine, DockerUnavailableError, docker_client
from respmatrix.providers.topology import ReplicationError, start_replica_pair
from respmatrix.store import EngineStore

# valkey-9.1, redis-7.4 (as redis-7.4+stack, with the Redis Stack modules loaded) and redis-8.0
# are compared with the binary provider; redis-7.2 is the topology's primary.
ENGINES = ("valkey-9.1", "redis-7.4", "redis-8.0", "redis-7.2")
BAD_CONFIG_IMAGE = "respmatrix-test/bad-config:1"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    try:
        client = docker_client()
    except DockerUnavailableError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must have a Docker daemon for the docker provider's tests: {exc}")
        pytest.skip(f"no Docker daemon: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="module")
def built(client: Any, catalog: EngineCatalog, store: EngineStore) -> dict[str, Any]:
    """The images of ENGINES, built (or found up to date) from the engine store."""
    return {e: images.build_image(catalog.get(e), store, client) for e in ENGINES}


def _owned_by(client: Any, pid: int) -> list[str]:
    """Containers and networks labelled with process ``pid`` (whatever its start time)."""
    label = {"label": ownership.LABEL_OWNER}
    found = [
        (c["Labels"], c["Names"][0]) for c in client.api.containers(all=True, filters=label)
    ] + [(n["Labels"], n["Name"]) for n in client.api.networks(filters=label)]
    return [name for labels, name in found if labels[ownership.LABEL_OWNER].startswith(f"{pid}:")]


@pytest.fixture(autouse=True)
def nothing_left_behind(client: Any) -> Iterator[None]:
    yield
    assert _owned_by(client, os.getpid()) == []


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "respmatrix", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _one_error(result: Any, *needles: str) -> None:
    """Exit 1 and a first stderr line ``respmatrix: error: ...`` naming every needle."""
    assert result.returncode == 1, (result.returncode, result.stdout[-500:], result.stderr[-2000:])
    assert result.stderr.startswith("respmatrix: error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


# -- images ----------------------------------------------------------------------------------


def test_image_is_the_store_binary_its_libraries_and_a_config(
    built: dict[str, Any], client: Any, catalog: EngineCatalog, store: EngineStore
) -> None:
    spec = catalog.get("redis-7.4")
    rootfs = io.BytesIO()
    count, content = images.write_rootfs(spec, store, rootfs)
    rootfs.seek(0)
    with tarfile.open(fileobj=rootfs) as tar:
        names = set(tar.getnames())
        config = tar.extractfile("etc/respmatrix/engine.conf").read().decode()  # type: ignore[union-attr]
        server = tar.extractfile("usr/local/bin/redis-server").read()  # type: ignore[union-attr]
    assert server == store.server_path(spec).read_bytes()
    assert {"lib64/ld-linux-x86-64.so.2", "usr/lib/respmatrix/libc.so.6"} <= names
    assert "usr/lib/respmatrix/libssl.so.1.1" in names  # from the store, not the host
    assert {f"usr/lib/respmatrix/modules/{m}.so" for m in spec.modules} <= names
    assert "bind 0.0.0.0" in config and "protected-mode no" in config
    image = client.images.get(built["redis-7.4"].tag)
    assert built["redis-7.4"].tag == "respmatrix/redis-7.4:7.4.1"
    assert len(image.attrs["RootFS"]["Layers"]) == 1  # FROM scratch: nothing but our files
    assert image.labels[images.LABEL_CONTENT] == content
    assert image.attrs["Config"]["Cmd"] == ["redis-server", "/etc/respmatrix/engine.conf"]
    assert count == built["redis-7.4"].files


def test_building_again_keeps_the_image(
    built: dict[str, Any], client: Any, catalog: EngineCatalog, store: EngineStore
) -> None:
    again = images.build_image(catalog.get("valkey-9.1"), store, client)
    assert again.reused and again.image_id == built["valkey-9.1"].image_id
    assert again.seconds < 5


def test_build_image_command(built: dict[str, Any]) -> None:
    result = _cli("engines", "build-image", "valkey-9.1", "redis-7.4+stack")
    assert result.returncode == 0, result.stderr
    # the variant runs its base's image: one line for it
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [
        "respmatrix/redis-7.4:7.4.1",
        "respmatrix/valkey-9.1:9.1.2",
    ]
    assert all("up to date" in line for line in lines)


def test_an_image_not_built_here_gets_the_settings_as_flags(
    built: dict[str, Any], client: Any, catalog: EngineCatalog, store: EngineStore
) -> None:
    # The same files without our labels stand in for an official image (none can be pulled
    # here): the provider must pass protected-mode, persistence and DEBUG on the command line.
    spec = catalog.get("valkey-9.1")
    foreign = "respmatrix-test/foreign-valkey:1"
    with tempfile.NamedTemporaryFile(suffix=".tar") as rootfs:
        images.write_rootfs(spec, store, rootfs)
        rootfs.flush()
        client.api.import_image_from_file(
            rootfs.name,
            repository=foreign.split(":")[0],
            tag="1",
            changes=[f"ENV PATH={images.SERVER_DIR} LD_LIBRARY_PATH={images.LIBRARY_DIR}"],
        )
    try:
        with (
            DockerEngine(spec, foreign) as engine,
            RespConnection(engine.host, engine.port) as conn,
        ):
            assert engine.describe()["image"]["ref"] == foreign
            assert conn.call("CONFIG", "GET", "protected-mode") == ["protected-mode", "no"]
            assert conn.call("CONFIG", "GET", "save") == ["save", ""]
            assert conn.call("CONFIG", "GET", "enable-debug-command") == [
                "enable-debug-command",
                "yes",
            ]
    finally:
        client.images.remove(foreign)


# -- same outcomes as the binary provider -----------------------------------------------------


def _outcomes(path: Path) -> tuple[dict[tuple[str, ...], str], dict[str, Any]]:
    doc = json.loads(path.read_text())
    cells = {
        (r["case"], r["engine"], r["client"], r["protocol"]): r["outcome"] for r in doc["results"]
    }
    return cells, doc["engines"]


def test_docker_and_binary_providers_give_identical_outcomes(
    built: dict[str, Any], client: Any, tmp_path: Path
) -> None:
    common = [
        "run", "--engines", "valkey-9.1,redis-7.4+stack,redis-8.0", "--clients", "raw,redis-py",
        "--families", "strings", "-n", "0", "--no-install",
    ]  # fmt: skip
    runs = {}
    for provider in ("binary", "docker"):
        result = _cli(*common, "--provider", provider, "--out", str(tmp_path / provider))
        assert result.returncode == 0, (provider, result.stdout[-3000:], result.stderr[-3000:])
        runs[provider] = _outcomes(tmp_path / provider / "results.json")
    (binary, binary_engines), (docker, docker_engines) = runs["binary"], runs["docker"]
    assert len(binary) > 1000
    differing = {k: (binary.get(k), docker.get(k)) for k in binary.keys() | docker.keys()}
    assert not {k: v for k, v in differing.items() if v[0] != v[1]}  # (binary, docker) per cell
    assert set(docker_engines) == {"valkey-9.1", "redis-7.4+stack", "redis-8.0"}
    for engine_id, facts in docker_engines.items():
        image = built[engine_id.partition("+")[0]]  # a variant runs its base's image
        assert facts["provider"] == "docker"
        assert facts["image"] == {"ref": image.tag, "id": image.image_id, "digest": None}
        same = ("line", "version", "build", "modules", "module_versions", "commands")
        assert {k: facts[k] for k in same} == {k: binary_engines[engine_id][k] for k in same}
    assert (tmp_path / "docker" / "logs").is_dir()  # the containers' logs, saved at stop


def test_pool_runs_a_variant_with_its_modules_in_a_container(
    built: dict[str, Any], catalog: EngineCatalog
) -> None:
    pool = EnginePool(catalog, provider="docker")
    try:
        running = pool.engine("redis-7.4+stack")
        assert running.facts["provider"] == "docker"
        assert running.facts["module_versions"] == catalog.get("redis-7.4+stack").loaded_modules
        conn = pool.admin("redis-7.4+stack")
        assert conn.call("JSON.SET", "doc", "$", '{"a":[1,2]}') == "OK"
        assert conn.call("JSON.GET", "doc", "$.a[1]") == "[2]"
        pool.reset("redis-7.4+stack")
        assert conn.call("DBSIZE") == 0
        container = running.process
    finally:
        pool.close()
    assert isinstance(container, DockerEngine) and container.container_name == ""


# -- topology ---------------------------------------------------------------------------------


def test_redis_primary_replicates_to_a_valkey_replica(
    built: dict[str, Any], catalog: EngineCatalog
) -> None:
    with start_replica_pair(catalog.get("redis-7.2"), catalog.get("valkey-9.1")) as pair:
        assert pair.replication["role"] == "slave"
        assert pair.replication["master_host"] == pair.primary.name  # by name, over the network
        with RespConnection(pair.primary.host, pair.primary.port) as primary:
            assert primary.call("SET", "greeting", "hello") == "OK"
            assert primary.call("HSET", "h", "f1", "v1", "f2", "v2") == 2
            assert primary.call("RPUSH", "l", "a", "b", "c") == 3
            assert primary.call("ZADD", "z", "1", "one", "2", "two") == 2
            assert primary.call("WAIT", "1", "5000") == 1  # the replica acknowledged
        with RespConnection(pair.replica.host, pair.replica.port) as replica:
            assert replica.call("INFO", "server").count("valkey_version:9.1.2") == 1
            assert replica.call("GET", "greeting") == "hello"
            assert replica.call("HGETALL", "h") == ["f1", "v1", "f2", "v2"]
            assert replica.call("LRANGE", "l", "0", "-1") == ["a", "b", "c"]
            assert replica.call("ZRANGE", "z", "0", "-1", "WITHSCORES") == ["one", "1", "two", "2"]
            refused = replica.call("SET", "greeting", "bye")
            assert str(refused).startswith("READONLY")


def test_a_valkey_replica_cannot_load_redis_7_4_rdb(
    built: dict[str, Any], catalog: EngineCatalog
) -> None:
    # Redis 7.4 writes RDB version 12; Valkey reads up to 11 (Redis 7.2's): why the pair above
    # is the one the topology uses.
    with pytest.raises(ReplicationError, match="Can't handle RDB format version 12"):
        start_replica_pair(catalog.get("redis-7.4"), catalog.get("valkey-9.1"), sync_timeout=2)


# -- errors -----------------------------------------------------------------------------------


def test_no_daemon_is_one_error(
    tmp_path: Path, catalog: EngineCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"unix://{tmp_path}/no-docker.sock"
    run = _cli(
        "run", "--provider", "docker", "--engines", "valkey-9.1", "--families", "strings",
        "--out", str(tmp_path), env={"DOCKER_HOST": dead},
    )  # fmt: skip
    _one_error(run, f"cannot reach the Docker daemon at {dead}: no such socket")
    # the pytest plugin used directly says it once too, not once per case
    plugin = subprocess.run(
        [sys.executable, "-m", "pytest", str(data_dir("suites") / "strings"), "-p",
         "no:cacheprovider", "--provider", "docker", "--engines", "valkey-9.1", "--clients",
         "raw", "-q"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "DOCKER_HOST": dead},
    )  # fmt: skip
    assert plugin.returncode == 4, plugin.stdout[-2000:]
    assert f"ERROR: cannot reach the Docker daemon at {dead}" in plugin.stderr
    assert "failed" not in plugin.stdout
    monkeypatch.setenv("DOCKER_HOST", dead)
    with pytest.raises(DockerUnavailableError, match="no such socket"):
        DockerEngine(catalog.get("valkey-9.1")).start()


def test_image_that_is_nowhere_is_one_error(built: dict[str, Any], tmp_path: Path) -> None:
    run = _cli(
        "run", "--provider", "docker", "--engines", "valkey-9.1", "--families", "strings",
        "--engine-image", "valkey-9.1=respmatrix-test/absent:1", "--out", str(tmp_path),
    )  # fmt: skip
    _one_error(run, "respmatrix-test/absent:1 is not on this machine", "build-image valkey-9.1")


def test_port_clash_is_one_error(built: dict[str, Any]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        start = _cli("engines", "start", "valkey-9.1", "--provider", "docker", "--port", port)
    _one_error(start, f"port {port}", "already in use")


@pytest.fixture
def bad_config_image(built: dict[str, Any], client: Any) -> Iterator[str]:
    """A respmatrix image whose config file has a directive no server knows."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (
            ("Dockerfile", f"FROM {built['valkey-9.1'].tag}\nCOPY engine.conf /etc/respmatrix/\n"),
            ("engine.conf", "port 6379\nno-such-directive yes\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data.encode()))
    context.seek(0)
    client.images.build(fileobj=context, custom_context=True, tag=BAD_CONFIG_IMAGE, rm=True)
    yield BAD_CONFIG_IMAGE
    client.images.remove(BAD_CONFIG_IMAGE)


def test_container_exiting_at_start_shows_its_log(bad_config_image: str, tmp_path: Path) -> None:
    run = _cli(
        "run", "--provider", "docker", "--engines", "valkey-9.1", "--families", "strings",
        "--engine-image", f"valkey-9.1={bad_config_image}", "--out", str(tmp_path),
    )  # fmt: skip
    _one_error(run, "exited at start with code 1", "no-such-directive", "Bad directive")


def test_wrong_engine_in_the_image_is_refused(
    built: dict[str, Any], catalog: EngineCatalog
) -> None:
    with pytest.raises(EngineIdentityError, match=r"should be redis 7\.4\.1"):
        DockerEngine(catalog.get("redis-7.4"), built["redis-7.2"].tag).start()
    with pytest.raises(EngineStartError, match="exited at start"):
        DockerEngine(catalog.get("valkey-9.1"), extra_args=("--no-such-option", "1")).start()


# -- cleanup on every exit path ---------------------------------------------------------------


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_interrupted_run_leaves_no_container(
    built: dict[str, Any], client: Any, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run = subprocess.Popen(
        [
            sys.executable, "-m", "respmatrix", "run", "--provider", "docker",
            "--engines", "redis-8.0", "--families", "strings", "--clients", "raw,redis-py",
            "-n", "0", "--no-install", "--out", str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        # Interrupt once cases run against a container of the run itself (not the trial start).
        _wait_for(
            lambda: (
                run.poll() is None
                and bool(_owned_by(client, run.pid))
                and any(p.stat().st_size for p in out.glob(".parts/*.jsonl"))
            ),
            60,
            "the run's cases",
        )
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=30) == 130, run.stderr.read() if run.stderr else ""
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert _owned_by(client, run.pid) == []  # removed by the run itself, not later
    assert (out / "results.json").is_file()  # what ran is kept


def test_killed_owner_is_cleaned_up_by_its_watchdog(built: dict[str, Any], client: Any) -> None:
    start = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "respmatrix",
            "engines",
            "start",
            "valkey-9.1",
            "--provider",
            "docker",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert start.stdout is not None
        assert "listening on" in start.stdout.readline()
        assert len(_owned_by(client, start.pid)) == 1
        start.kill()  # SIGKILL: no atexit, no handler runs
        start.wait()
        _wait_for(lambda: not _owned_by(client, start.pid), 15, "the watchdog's cleanup")
    finally:
        if start.poll() is None:
            start.kill()
            start.wait()


def test_next_start_sweeps_containers_of_dead_owners(
    built: dict[str, Any], client: Any, catalog: EngineCatalog
) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_owner = {
        ownership.LABEL_OWNER: f"{gone.stdout.strip()}:1",
        ownership.LABEL_HOST: socket.gethostname(),
    }
    network = client.networks.create(f"respmatrix-test-orphan-{os.getpid()}", labels=dead_owner)
    orphan = client.containers.create(
        built["valkey-9.1"].tag, labels=dead_owner, network=network.name
    )
    with DockerEngine(catalog.get("valkey-9.1")):
        remaining = {c.id for c in client.containers.list(all=True)}
        assert orphan.id not in remaining
        assert network.id not in {n.id for n in client.networks.list()}
