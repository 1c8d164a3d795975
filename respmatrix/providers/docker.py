"""The docker provider: one engine in one container, started with testcontainers-python.

The image is the user's ``--engine-image`` if given, else the locally built
``respmatrix/<id>:<version>`` (``respmatrix engines build-image``), else the catalog's official
image (pulled if missing). The container publishes the server port on a free host port, is ready
when it answers PING, and must identify as the catalog's line and exact version, exactly like a
local binary. Every container carries its owner's labels (see ``ownership``) and is removed on
every exit path.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

from respmatrix.catalog import EngineSpec
from respmatrix.clients.resp import RespConnection
from respmatrix.launcher import (
    EngineIdentity,
    EngineStartError,
    check_identity,
    identify,
    port_is_free,
)
from respmatrix.providers import images, ownership

LABEL_ENGINE_ID = "dev.respmatrix.engine-id"  # on containers: which catalog engine runs inside
_started = [0]  # containers started by this process, for unique names

# What a server started from an image not built here needs on its command line to behave like
# ours (built images have the same settings in their config file).
_FOREIGN_IMAGE_ARGS = (
    "--protected-mode", "no",
    "--save", "",
    "--appendonly", "no",
    "--enable-debug-command", "yes",
    "--enable-module-command", "yes",
)  # fmt: skip


class DockerUnavailableError(EngineStartError):
    """No Docker daemon answers (not running, wrong DOCKER_HOST, no permission on the socket)."""


class ImageUnavailableError(EngineStartError):
    """The image is not on this machine and cannot be pulled."""


def docker_client() -> Any:
    """A ``docker.DockerClient`` that has answered a ping, or DockerUnavailableError."""
    import docker
    import docker.errors

    where = os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerUnavailableError(
            f"cannot reach the Docker daemon at {where}: {_reason(exc)}; start Docker or point "
            "DOCKER_HOST at it, or use --provider binary"
        ) from None
    return client


def _reason(exc: BaseException) -> str:
    """The innermost useful words of a docker/requests error chain."""
    text = str(exc)
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "PermissionError"):
        if marker in text:
            return {
                "FileNotFoundError": "no such socket",
                "ConnectionRefusedError": "connection refused",
                "PermissionError": "permission denied on the socket",
            }[marker]
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _disable_ryuk_without_image(client: Any) -> None:
    """Ryuk is testcontainers' reaper; it needs its image. Without it our own cleanup does the job.

    An explicit TESTCONTAINERS_RYUK_DISABLED (or the properties file) is left alone.
    """
    import docker.errors
    from testcontainers.core.config import testcontainers_config as config

    if "TESTCONTAINERS_RYUK_DISABLED" in os.environ or config.ryuk_disabled:
        return
    try:
        client.images.get(config.ryuk_image)
    except docker.errors.ImageNotFound:
        config.ryuk_disabled = True


def resolve_image(spec: EngineSpec, client: Any, override: str | None = None) -> Any:
    """The image to run for ``spec`` (a ``docker.models.images.Image``), pulling as a last resort.

    ``override`` (``--engine-image``) wins; else the locally built tag; else the catalog image.
    """
    import docker.errors
    from docker.utils import parse_repository_tag

    candidates = [override] if override else [images.image_tag(spec), spec.image]
    for ref in candidates:
        with contextlib.suppress(docker.errors.ImageNotFound):
            return client.images.get(ref)
    ref = candidates[-1]
    repository, tag = parse_repository_tag(ref)
    try:
        return client.images.pull(repository, tag=tag or "latest")
    except docker.errors.DockerException as exc:
        reason = getattr(exc, "explanation", None) or _reason(exc)
        absent = (
            f"neither {' nor '.join(candidates)} is" if len(candidates) > 1 else f"{ref} is not"
        )
        raise ImageUnavailableError(
            f"{spec.id}: {absent} on this machine, and pulling {ref} failed: "
            f"{reason}; build a local image with `respmatrix engines build-image {spec.id}` or "
            f"name one (--engine-image {spec.id}=IMAGE with run and pytest, --image IMAGE with "
            "engines start)"
        ) from None


_local_daemons: dict[str, bool] = {}


def _daemon_is_local(client: Any) -> bool:
    """True when published ports appear on this host's loopback (the daemon shares our host).

    A unix socket outside a container is the common case; inside a container, a daemon whose
    host name is ours runs in our namespaces (docker-in-docker in one sandbox). Asked once per
    daemon and process.
    """
    from testcontainers.core import utils
    from testcontainers.core.config import testcontainers_config as config

    base_url = client.api.base_url
    if base_url not in _local_daemons:
        if config.tc_host_override or config.connection_mode_override:
            local = False  # the user told testcontainers where containers are reachable
        elif not base_url.startswith("http+docker://local"):
            local = False
        else:
            local = not utils.inside_container() or client.info()["Name"] == socket.gethostname()
        _local_daemons[base_url] = local
    return _local_daemons[base_url]


def image_facts(image: Any, ref: str) -> dict[str, Any]:
    """The image a container ran, for the results file: the name used, its id, its digest."""
    digests = image.attrs.get("RepoDigests") or []
    return {"ref": ref, "id": image.id, "digest": digests[0] if digests else None}


class DockerEngine:
    """A running container for one catalog engine; ``stop()`` removes it."""

    container_port = images.PORT

    def __init__(
        self,
        spec: EngineSpec,
        image: str | None = None,
        *,
        port: int | None = None,
        name: str | None = None,
        network: Any = None,
        extra_args: tuple[str, ...] = (),
        start_timeout: float = 15.0,
        log_dir: Path | None = None,
    ) -> None:
        self.spec = spec
        self.requested_image = image
        self.requested_port = port
        self.name = name
        self.network = network  # a testcontainers Network: reachable there as ``name``
        self.extra_args = extra_args
        self.start_timeout = start_timeout
        self.log_dir = log_dir  # the container's log is saved there when it stops
        self.log_path: Path | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.image_ref = ""
        self.image: dict[str, Any] = {}
        self.identity: EngineIdentity | None = None
        self.started_in = 0.0
        self._container: Any = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def container_name(self) -> str:
        return self._container.get_wrapped_container().name if self._container else ""

    def command(self, labels: dict[str, str]) -> list[str]:
        """The server's argv: our config file, or the same settings as flags for other images.

        A variant's modules are loaded from where ``build-image`` put them; another image is
        expected to load them itself, and the identity check (MODULE LIST) holds it to that.
        """
        server = images.server_name(self.spec)
        config = labels.get(images.LABEL_CONFIG)
        if not config:
            return [server, *_FOREIGN_IMAGE_ARGS, *self.extra_args]
        modules = [
            arg
            for name in self.spec.load
            for arg in ("--loadmodule", f"{images.MODULE_DIR}/{name}.so")
        ]
        return [server, config, *modules, *self.extra_args]

    def start(self) -> DockerEngine:
        """Start the container, wait until the server answers, and check its identity."""
        from testcontainers.core.container import DockerContainer

        began = time.perf_counter()
        client = docker_client()
        try:
            ownership.sweep_orphans(client)  # what owners that died left behind
            local = _daemon_is_local(client)
            _disable_ryuk_without_image(client)
            image = resolve_image(self.spec, client, self.requested_image)
            self.image_ref = self.requested_image or next(
                (t for t in (images.image_tag(self.spec), self.spec.image) if t in image.tags),
                image.tags[0] if image.tags else image.id,
            )
            self.image = image_facts(image, self.image_ref)
        finally:
            client.close()
        if self.requested_port and local and not port_is_free("127.0.0.1", self.requested_port):
            raise EngineStartError(f"port {self.requested_port} on 127.0.0.1 is already in use")
        labels = {
            **ownership.owner_labels(),
            LABEL_ENGINE_ID: self.spec.id,
        }
        container = DockerContainer(self.image_ref, command=self.command(image.labels or {}))
        # Published on loopback only when the daemon shares our host: a server with protected
        # mode off should not face the network. docker-py takes (host ip, host port) tuples.
        binding: Any = ("127.0.0.1", self.requested_port) if local else self.requested_port
        container.ports[f"{self.container_port}/tcp"] = binding
        _started[0] += 1
        # Readable in `docker ps`, unique per process and start.
        self.name = self.name or (
            f"respmatrix-{self.spec.id.replace('+', '-')}-{os.getpid()}-{_started[0]}"
        )
        container.with_name(self.name)
        if self.network is not None:
            container.with_network(self.network).with_network_aliases(self.name)
        container.with_kwargs(labels=labels)
        ownership.ensure_watchdog()
        self._container = container
        ownership.track(self)
        try:
            self._start_container(container)
            self.host = "127.0.0.1" if local else container.get_container_host_ip()
            self._wait_ready(began)
            self.identity = identify(self.host, self.port)
            where = f"the container {self.container_name} (image {self.image_ref})"
            check_identity(self.spec, self.identity, where)
        except BaseException:
            self.stop()
            raise
        self.started_in = time.perf_counter() - began
        return self

    def _start_container(self, container: Any) -> None:
        import docker.errors

        try:
            container.start()
        except docker.errors.APIError as exc:
            text = str(exc.explanation or exc)
            if "already allocated" in text or "address already in use" in text:
                raise EngineStartError(
                    f"port {self.requested_port} is already in use (docker: {text[:200]})"
                ) from None
            if "Conflict" in text and "name" in text:
                raise EngineStartError(
                    f"a container named {self.name} already exists: {text[:200]}"
                ) from None
            raise EngineStartError(
                f"{self.spec.id}: docker could not start {self.image_ref}: {text[:300]}"
            ) from None

    def _wait_ready(self, began: float) -> None:
        """PING until PONG; a container that exits meanwhile is an error showing its log."""
        deadline = began + self.start_timeout
        wrapped = self._container.get_wrapped_container()
        checked = 0.0
        while True:
            now = time.perf_counter()
            if now - checked > 0.05 or not self.port:  # the daemon costs more than a connect
                checked = now
                wrapped.reload()
                if wrapped.status in ("exited", "dead"):
                    code = wrapped.attrs.get("State", {}).get("ExitCode")
                    raise EngineStartError(
                        f"{self.spec.id}: the container from {self.image_ref} exited at start "
                        f"with code {code}; last lines of its log:\n{self.log_tail()}"
                    )
                bindings = wrapped.ports.get(f"{self.container_port}/tcp") or []
                self.port = int(bindings[0]["HostPort"]) if bindings else 0
            if self.port and self._answers():
                return
            if now > deadline:
                raise EngineStartError(
                    f"{self.spec.id} in {self.container_name} did not answer on {self.address} "
                    f"within {self.start_timeout:.0f}s; last lines of its log:\n{self.log_tail()}"
                )
            time.sleep(0.005)

    def _answers(self) -> bool:
        try:
            with RespConnection(self.host, self.port, timeout=1.0) as conn:
                return conn.call("PING") == "PONG"
        except OSError:
            # docker-proxy accepts, then drops the connection until the server listens
            return False

    def log_tail(self, lines: int = 20) -> str:
        if self._container is None:
            return ""
        try:
            raw = self._container.get_wrapped_container().logs(tail=lines)
        except Exception as exc:  # the daemon may be gone too; the log is a courtesy
            return f"(log unavailable: {exc})"
        return raw.decode(errors="replace").rstrip()

    def stop(self) -> None:
        """Remove the container; safe to call twice and after a failed start."""
        container, self._container = self._container, None
        ownership.untrack(self)
        if container is None:
            return
        if self.log_dir is not None and self.port:
            self._save_log(container)
        with contextlib.suppress(Exception):  # removed already, or the daemon is gone
            container.stop()
        ownership.release_watchdog()

    def _save_log(self, container: Any) -> None:
        assert self.log_dir is not None
        with contextlib.suppress(Exception):  # a log we cannot fetch must not block the removal
            log = container.get_wrapped_container().logs()
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self.log_path = self.log_dir / f"{self.spec.id}-{self.port}.log"
            self.log_path.write_bytes(log)

    def describe(self) -> dict[str, Any]:
        """Engine facts for the results file."""
        from respmatrix.launcher import engine_facts

        return {**engine_facts(self.spec, self.identity, "docker"), "image": dict(self.image)}

    def __enter__(self) -> DockerEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
