"""Starting an engine from the store as a local process, and proving it is the engine we asked for.

One server per engine per worker: it gets its own temp dir and a free loopback port, and it is
killed when the run ends, on Ctrl-C, and (through ``PR_SET_PDEATHSIG``) when the worker that
started it dies without cleaning up.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from respmatrix.catalog import EngineSpec
from respmatrix.clients.resp import RespConnection


class EngineStartError(RuntimeError):
    """The server did not start, or did not answer in time; the message carries its log tail."""


class EngineIdentityError(RuntimeError):
    """The server answering is not the engine (line and version) the catalog describes."""


@dataclass
class EngineIdentity:
    """What a running server says it is."""

    line: str
    version: str
    build: str
    info: dict[str, str] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)
    module_versions: dict[str, str] = field(default_factory=dict)  # MODULE LIST name -> version


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (the caller retries if it is taken before use)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


_WORKDIR_PREFIX = "respmatrix-engine-"


def sweep_orphaned_workdirs() -> list[Path]:
    """Remove engine temp dirs whose owning process is gone (killed with SIGKILL, say).

    The server itself died with its owner (PDEATHSIG); only its folder can be left behind.
    """
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{_WORKDIR_PREFIX}*-*"):
        owner = folder.name.removeprefix(_WORKDIR_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _process_exists(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:
    # Linux only: the server gets SIGKILL when the process that started it dies.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def parse_info(text: str) -> dict[str, str]:
    """``INFO`` text into a flat field -> value mapping."""
    fields = {}
    for line in text.splitlines():
        if line and not line.startswith("#") and ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def identify(host: str, port: int) -> EngineIdentity:
    """Ask a server who it is: ``HELLO 3`` for server and version, ``INFO server`` for the rest.

    Valkey also reports ``redis_version:7.2.4`` for compatibility, so the line comes from HELLO
    and from ``server_name``/``valkey_version``, never from ``redis_version`` alone.
    """
    with RespConnection(host, port, protocol=3) as conn:
        hello = conn.hello
        info = conn.call("INFO", "server")
        modules = conn.call("MODULE", "LIST")
    if not isinstance(hello, dict) or not isinstance(info, str):
        raise EngineIdentityError(f"{host}:{port} did not answer HELLO 3 / INFO: {hello!r}")
    fields = parse_info(info)
    line = str(hello.get("server", "")).lower()
    version = str(hello.get("version", ""))
    if "valkey_version" in fields or fields.get("server_name") == "valkey":
        if line != "valkey" or fields.get("valkey_version", version) != version:
            raise EngineIdentityError(
                f"{host}:{port} answers HELLO as {line} {version} but INFO says "
                f"valkey {fields.get('valkey_version')}"
            )
    elif line == "valkey":
        raise EngineIdentityError(
            f"{host}:{port} says valkey in HELLO but INFO lacks valkey_version"
        )
    build = fields.get("redis_build_id", "")
    sha = fields.get("redis_git_sha1", "")
    if sha.strip("0"):
        build = f"{build} (git {sha})"
    versions = {}
    if isinstance(modules, list):
        for module in modules:
            if isinstance(module, dict):
                versions[str(module.get("name"))] = module_version(module.get("ver"))
    return EngineIdentity(
        line=line,
        version=version,
        build=build,
        info=fields,
        modules=sorted(versions),
        module_versions=dict(sorted(versions.items())),
    )


def module_version(ver: object) -> str:
    """MODULE LIST's integer ``ver`` as a dotted version: 20609 -> ``2.6.9``."""
    try:
        number = int(str(ver))
    except ValueError:
        return str(ver)
    return f"{number // 10000}.{number // 100 % 100}.{number % 100}"


def check_identity(spec: EngineSpec, identity: EngineIdentity, where: str) -> None:
    """Refuse a server whose line, exact version or loaded modules are not the catalog's.

    Modules decide what module commands answer, so ``redis-7.4`` (none loaded) and
    ``redis-7.4+stack`` are told apart by MODULE LIST, module versions included.
    """
    if identity.line != spec.line or identity.version != spec.version:
        raise EngineIdentityError(
            f"{where} should be {spec.line} {spec.version} ({spec.id}) but identifies as "
            f"{identity.line} {identity.version}; refusing to record results against it"
        )
    if identity.module_versions != spec.loaded_modules:
        raise EngineIdentityError(
            f"{where} should have the modules {_modules_text(spec.loaded_modules)} ({spec.id}) "
            f"but MODULE LIST reports {_modules_text(identity.module_versions)}; refusing to "
            "record results against it"
        )


def _modules_text(modules: dict[str, str]) -> str:
    return ", ".join(f"{name} {version}" for name, version in sorted(modules.items())) or "none"


class EngineProcess:
    """A running local server for one catalog engine."""

    host = "127.0.0.1"

    def __init__(
        self,
        spec: EngineSpec,
        server: Path,
        env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        extra_args: tuple[str, ...] = (),
        start_timeout: float = 15.0,
        port: int | None = None,
    ) -> None:
        self.spec = spec
        self.server = server
        self.env = env
        self.log_dir = log_dir
        self.extra_args = extra_args
        self.start_timeout = start_timeout
        self.requested_port = port
        self.port = 0
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self.identity: EngineIdentity | None = None
        self.started_in: float = 0.0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, attempts: int = 3) -> EngineProcess:
        """Start the server, wait until it answers, and check its identity."""
        if not self.server.exists():
            raise EngineStartError(
                f"{self.spec.id}: server binary {self.server} is missing; "
                f"run `respmatrix engines install {self.spec.id}`"
            )
        for attempt in range(attempts):
            try:
                self._start_once()
                break
            except OSError as exc:  # Popen itself failed (not executable, no such loader...)
                self.stop()
                raise EngineStartError(
                    f"{self.spec.id}: cannot start {self.server}: {exc}"
                ) from exc
            except EngineStartError as exc:
                # Another process may take the free port between our probe and the bind.
                port_taken = "Address already in use" in str(exc) and not self.requested_port
                self.stop()
                if not port_taken or attempt == attempts - 1:
                    raise
        try:
            self.identity = identify(self.host, self.port)
            check_identity(self.spec, self.identity, f"the server started from {self.server}")
            pid = self.identity.info.get("process_id")
            if self._proc is None or pid != str(self._proc.pid):
                # Someone else's server took the port first; ours could not bind.
                raise EngineStartError(
                    f"{self.spec.id}: the server answering on {self.address} is process {pid}, "
                    "not the one started here"
                )
        except Exception:
            self.stop()
            raise
        return self

    def command(self) -> list[str]:
        assert self.workdir is not None and self.log_path is not None
        return [
            str(self.server),
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.workdir),
            "--logfile", str(self.log_path),
            "--daemonize", "no",
            "--save", "",
            "--appendonly", "no",
            "--enable-debug-command", "local",
            "--enable-module-command", "local",
            *self.extra_args,
        ]  # fmt: skip

    def _start_once(self) -> None:
        began = time.perf_counter()
        sweep_orphaned_workdirs()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{_WORKDIR_PREFIX}{os.getpid()}-"))
        if self.requested_port:
            self.port = self.requested_port
            if not port_is_free(self.host, self.port):
                raise EngineStartError(f"port {self.port} on {self.host} is already in use")
        else:
            self.port = free_port(self.host)
        log_dir = self.log_dir or self.workdir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{self.spec.id}-{self.port}.log"
        self._proc = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env={**os.environ, **(self.env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the server in order
        )
        deadline = began + self.start_timeout
        while True:
            if self._proc.poll() is not None:
                stderr = (
                    self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                )
                raise EngineStartError(
                    f"{self.spec.id} exited at start with code {self._proc.returncode}:\n"
                    f"{stderr}{self.log_tail()}"
                )
            if self._answers():
                self.started_in = time.perf_counter() - began
                return
            if time.perf_counter() > deadline:
                raise EngineStartError(
                    f"{self.spec.id} did not answer on {self.address} within "
                    f"{self.start_timeout:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.002)

    def _answers(self) -> bool:
        try:
            with RespConnection(self.host, self.port, timeout=1.0) as conn:
                reply = conn.call("PING")
        except OSError:
            return False
        return reply == "PONG"  # a server still loading answers -LOADING

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path and self.log_path.exists():
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        """Stop the server and remove its temp dir; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stderr:
                proc.stderr.close()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def describe(self) -> dict[str, Any]:
        """Engine facts for the results file."""
        return engine_facts(self.spec, self.identity, "binary")

    def __enter__(self) -> EngineProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def engine_facts(spec: EngineSpec, ident: Any, provider: str) -> dict[str, Any]:
    """The results file's facts about a started engine (``ident``: its checked identity, if any),
    the same for every provider."""
    return {
        "line": spec.line,
        "version": ident.version if ident else spec.version,
        "build": ident.build if ident else "",
        "provider": provider,
        "modules": ident.modules if ident else [],
        "module_versions": ident.module_versions if ident else {},
        **({"variant": spec.variant} if spec.variant else {}),
    }
