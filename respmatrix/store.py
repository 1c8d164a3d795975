"""The local engine store: real server binaries, installed per catalog entry, verified.

An install is a small transaction: download (sha256 pinned) -> extract into a private temp
folder -> optional build -> run ``server --version`` and compare with the catalog -> write a
marker -> rename the folder into place. Only that final rename makes an engine visible, so an
interrupted or failed install never leaves something that looks installed. A per-engine file
lock serialises concurrent installs (e.g. two pytest-xdist workers).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from respmatrix.catalog import EngineSpec
from respmatrix.sources import (
    CorruptDownloadError,
    DownloadError,
    EngineStoreError,
    ExtractError,
    download,
    extract,
    file_sha256,
    source_url,
)

__all__ = [
    "BuildError",
    "CorruptDownloadError",
    "DownloadError",
    "EngineNotInstalledError",
    "EngineStatus",
    "EngineStore",
    "EngineStoreError",
    "EngineVersionMismatchError",
    "ExtractError",
    "UnknownModuleError",
]

MARKER = ".respmatrix-installed.json"
_VERSION_RE = re.compile(r"\bv=(\S+)")
_LOG_TAIL = 20


class BuildError(EngineStoreError):
    """Building an engine from source failed; the message names the log and shows its tail."""


class EngineVersionMismatchError(EngineStoreError):
    """The installed binary does not report the version the catalog promises (or does not run)."""


class EngineNotInstalledError(EngineStoreError):
    """The engine is in the catalog but not in this store."""

    def __init__(self, spec: EngineSpec, root: Path) -> None:
        super().__init__(
            f"engine {spec.id} ({spec.line} {spec.version}) is not installed in {root}; "
            f"run `respmatrix engines install {spec.id}`"
        )
        self.engine_id = spec.id


class UnknownModuleError(EngineStoreError, KeyError):
    """The catalog lists no such module for this engine."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class EngineStatus:
    """What the store knows about one catalog engine, for listings."""

    id: str
    line: str
    version: str
    installed: bool
    path: Path
    installed_at: str | None = None


def default_root() -> Path:
    """$RESPMATRIX_HOME/engines, else the user cache folder: engines are big and re-fetchable."""
    home = os.environ.get("RESPMATRIX_HOME")
    if home:
        return Path(home).expanduser() / "engines"
    return platformdirs.user_cache_path("respmatrix") / "engines"


def _fingerprint(spec: EngineSpec) -> dict[str, Any]:
    """What an installed folder was made from; a catalog change makes old folders stale."""
    return {
        "id": spec.install_id,
        "version": spec.version,
        "server": spec.server,
        "sources": [s["sha256"] for s in spec.sources],
        "extract": [s["extract"] for s in spec.sources],
        "build": spec.build,
    }


class EngineStore:
    """Installed engines under one root folder, one sub-folder per engine id."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.downloads = self.root / "downloads"

    # --- paths and queries ----------------------------------------------------------------

    def engine_dir(self, spec: EngineSpec) -> Path:
        """The folder the engine lives in once installed (whether or not it is).

        A variant (``redis-7.4+stack``) shares its base's folder: same binary, same files.
        """
        return self.root / spec.install_id

    def is_installed(self, spec: EngineSpec) -> bool:
        """True only for a complete install of exactly this catalog entry."""
        folder = self.engine_dir(spec)
        marker = self._read_marker(folder)
        return (
            marker is not None
            and marker.get("fingerprint") == _fingerprint(spec)
            and (folder / spec.server).is_file()
        )

    def server_path(self, spec: EngineSpec) -> Path:
        """The server binary; raises EngineNotInstalledError if the engine is not installed."""
        if not self.is_installed(spec):
            raise EngineNotInstalledError(spec, self.root)
        return self.engine_dir(spec) / spec.server

    def server_env(self, spec: EngineSpec, base: dict[str, str] | None = None) -> dict[str, str]:
        """A full environment for starting the server: its library_dirs first on LD_LIBRARY_PATH.

        The libraries (e.g. OpenSSL 1.1) are meant for that server process only, never for ours.
        """
        return _library_env(self.engine_dir(spec), spec, base)

    def module_path(self, spec: EngineSpec, name: str) -> Path:
        """Path of a module bundled with the engine (for ``--loadmodule``)."""
        try:
            rel = spec.modules[name]
        except KeyError:
            known = ", ".join(spec.modules) or "none"
            raise UnknownModuleError(
                f"engine {spec.id} bundles no module {name!r} (it has: {known})"
            ) from None
        self.server_path(spec)  # a clear EngineNotInstalledError beats a failing --loadmodule
        return self.engine_dir(spec) / rel

    def module_args(self, spec: EngineSpec) -> tuple[str, ...]:
        """Server arguments that load the modules ``spec`` starts with (none for a base id)."""
        args: list[str] = []
        for name in spec.load:
            args += ["--loadmodule", str(self.module_path(spec, name))]
        return tuple(args)

    def status(self, spec: EngineSpec) -> EngineStatus:
        """Installed or not, where, and since when."""
        installed = self.is_installed(spec)
        marker = self._read_marker(self.engine_dir(spec)) if installed else None
        return EngineStatus(
            id=spec.id,
            line=spec.line,
            version=spec.version,
            installed=installed,
            path=self.engine_dir(spec),
            installed_at=marker.get("installed_at") if marker else None,
        )

    # --- install / uninstall --------------------------------------------------------------

    def install(self, spec: EngineSpec, progress: Any = None) -> Path:
        """Install ``spec`` if needed and return its folder; does nothing when already installed.

        ``progress`` is an optional ``rich.progress.Progress``; None means silent.
        """
        if self.is_installed(spec):
            return self.engine_dir(spec)
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock(spec):
            if self.is_installed(spec):  # another process finished it while we waited
                return self.engine_dir(spec)
            self._remove_stale_temp(spec)
            tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{spec.install_id}-", dir=self.root))
            try:
                tmp.chmod(0o755)  # mkdtemp makes it private; engines are plain readable files
                for source in spec.sources:
                    archive = self._fetch(source, progress)
                    with self._step(progress, f"extract {source['filename']}"):
                        extract(archive, source, tmp)
                if spec.build:
                    with self._step(progress, f"build {spec.id}"):
                        self._build(spec, tmp)
                server = tmp / spec.server
                if not server.is_file():
                    raise ExtractError(f"{spec.id}: the sources gave no server at {spec.server}")
                server.chmod(server.stat().st_mode | 0o755)
                self._check_version(spec, tmp)
                self._write_marker(spec, tmp)
                self._commit(spec, tmp)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return self.engine_dir(spec)

    def uninstall(self, spec: EngineSpec) -> bool:
        """Remove the engine folder (downloads stay cached); True if something was removed."""
        folder = self.engine_dir(spec)
        if not folder.exists():
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock(spec):
            trash = Path(tempfile.mkdtemp(prefix=f".trash-{spec.install_id}-", dir=self.root))
            try:
                # The marker goes first so a half-removed folder never looks installed.
                (folder / MARKER).unlink(missing_ok=True)
                folder.rename(trash / "engine")
            finally:
                shutil.rmtree(trash, ignore_errors=True)
        return True

    # --- steps ----------------------------------------------------------------------------

    def _fetch(self, source: dict[str, Any], progress: Any) -> Path:
        """A verified local copy of ``source``, from the download cache or the network."""
        cached = self.downloads / source["filename"]
        if cached.is_file():
            if file_sha256(cached) == source["sha256"]:
                return cached
            cached.unlink()  # stale or damaged: fetch it again
        download(source_url(source), cached, source["sha256"], progress)
        return cached

    def build_log(self, spec: EngineSpec) -> Path:
        """Where the last build of ``spec`` wrote its output."""
        return self.root / f"{spec.install_id}.build.log"

    def _build(self, spec: EngineSpec, tmp: Path) -> None:
        build = spec.build or {}
        source_dir = tmp / build["source_dir"]
        command = [str(c) for c in build["command"]]
        jobs = build.get("jobs")
        if jobs == "auto":
            command.append(f"-j{os.cpu_count() or 1}")
        elif jobs:
            command.append(f"-j{int(jobs)}")
        log = self.build_log(spec)
        with log.open("wb") as out:
            out.write(f"$ cd {source_dir} && {' '.join(command)}\n".encode())
            out.flush()
            try:
                # Own process group, so an interrupt can stop make *and* its compilers before
                # the temp folder is removed under them.
                proc = subprocess.Popen(
                    command,
                    cwd=source_dir,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise BuildError(
                    f"cannot build {spec.id}: {command[0]}: {exc.strerror or exc}; "
                    "a C toolchain is needed (Debian: apt-get install build-essential)"
                ) from exc
            try:
                returncode = proc.wait()
            except BaseException:
                _stop_group(proc)
                raise
        if returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-_LOG_TAIL:])
            raise BuildError(
                f"building {spec.id} failed (exit {returncode}); full log: {log}\n"
                f"last lines:\n{tail}"
            )
        for built, dest in build["outputs"].items():
            target = tmp / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                shutil.copy2(source_dir / built, target)
            except FileNotFoundError:
                raise BuildError(
                    f"building {spec.id} produced no {built}; full log: {log}"
                ) from None
        shutil.rmtree(source_dir)

    def _check_version(self, spec: EngineSpec, folder: Path) -> None:
        server = folder / spec.server
        try:
            result = subprocess.run(
                [str(server), "--version"],
                env=_library_env(folder, spec),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise EngineVersionMismatchError(f"{spec.id}: cannot run {server}: {exc}") from exc
        output = (result.stdout + result.stderr).strip()
        match = _VERSION_RE.search(result.stdout)
        reported = match.group(1) if match else None
        if result.returncode != 0 or reported != spec.version:
            raise EngineVersionMismatchError(
                f"{spec.id}: expected {spec.line} {spec.version}, but `{spec.server} --version` "
                f"reported {reported or 'no version'} (exit {result.returncode}): {output[:500]}"
            )

    def _write_marker(self, spec: EngineSpec, folder: Path) -> None:
        data = {
            "fingerprint": _fingerprint(spec),
            "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        marker = folder / MARKER
        marker.write_text(json.dumps(data, indent=2) + "\n")

    def _commit(self, spec: EngineSpec, tmp: Path) -> None:
        """Swap the finished temp folder in; a previous (stale) folder is moved aside first."""
        folder = self.engine_dir(spec)
        trash = None
        if folder.exists() or folder.is_symlink():
            trash = Path(tempfile.mkdtemp(prefix=f".trash-{spec.install_id}-", dir=self.root))
            folder.rename(trash / "engine")
        try:
            tmp.rename(folder)
        finally:
            if trash is not None:
                shutil.rmtree(trash, ignore_errors=True)

    def _remove_stale_temp(self, spec: EngineSpec) -> None:
        """Temp folders a killed install left behind (we hold the lock: none is in use)."""
        for pattern in (f".tmp-{spec.install_id}-*", f".trash-{spec.install_id}-*"):
            for path in self.root.glob(pattern):
                shutil.rmtree(path, ignore_errors=True)

    @contextlib.contextmanager
    def _lock(self, spec: EngineSpec) -> Iterator[None]:
        with (self.root / f".lock-{spec.install_id}").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @staticmethod
    @contextlib.contextmanager
    def _step(progress: Any, description: str) -> Iterator[None]:
        """An indeterminate progress task for the duration of a step (no-op without progress)."""
        if progress is None:
            yield
            return
        task = progress.add_task(description, total=None)
        try:
            yield
        finally:
            progress.remove_task(task)

    @staticmethod
    def _read_marker(folder: Path) -> dict[str, Any] | None:
        try:
            data = json.loads((folder / MARKER).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None


def _library_env(
    folder: Path, spec: EngineSpec, base: dict[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    dirs = [str(folder / d) for d in spec.library_dirs]
    if dirs:
        current = env.get("LD_LIBRARY_PATH")
        env["LD_LIBRARY_PATH"] = os.pathsep.join([*dirs, *([current] if current else [])])
    return env


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a build's whole process group, then kill it if it lingers."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
