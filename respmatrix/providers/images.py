"""Build a local Docker image FROM scratch out of an installed engine.

No image can be pulled on an offline machine, but the engine store already holds each server
binary. The image holds just that binary, the shared libraries ``ldd`` says it and its modules
need (the dynamic loader included, so nothing comes from a base image), the modules, and a
minimal config. The root file system is a tar made with fixed owners and times, so the same
store always gives the same content hash; a rebuild of unchanged content keeps the image as is.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from respmatrix.catalog import EngineSpec
from respmatrix.launcher import EngineStartError

IMAGE_REPOSITORY = "respmatrix"
SERVER_DIR = PurePosixPath("/usr/local/bin")
LIBRARY_DIR = PurePosixPath("/usr/lib/respmatrix")
MODULE_DIR = LIBRARY_DIR / "modules"
CONFIG_PATH = PurePosixPath("/etc/respmatrix/engine.conf")
DATA_DIR = PurePosixPath("/data")
PORT = 6379

# Labels that mark an image as built here; the provider reads them to know how to start it.
LABEL_ENGINE = "dev.respmatrix.engine"
LABEL_VERSION = "dev.respmatrix.version"
LABEL_LINE = "dev.respmatrix.line"
LABEL_CONFIG = "dev.respmatrix.config"
LABEL_CONTENT = "dev.respmatrix.content"  # sha256 of the root file system tar

# bind 0.0.0.0: the host reaches the server through the published port, a replica through the
# network. Nothing persists (no RDB snapshots, no AOF); /data only takes a replica's sync file.
# DEBUG and MODULE are open to every client, not only "local" ones as in the binary provider:
# in a container the harness is never local, and cases use DEBUG and MODULE LOAD.
SERVER_CONFIG = f"""\
bind 0.0.0.0
port {PORT}
protected-mode no
daemonize no
dir {DATA_DIR}
save ""
appendonly no
logfile ""
enable-debug-command yes
enable-module-command yes
"""

_LDD_LINE = re.compile(r"^\s*(?:(\S+)\s+=>\s+)?(/\S+)\s+\(0x[0-9a-f]+\)\s*$")


class ImageBuildError(EngineStartError):
    """The image could not be built (missing engine, ldd failure, daemon refused the build)."""


def image_tag(spec: EngineSpec) -> str:
    """The tag ``build-image`` gives an engine and the docker provider looks for first.

    A variant (``redis-7.4+stack``) runs its base's image with modules loaded at start.
    """
    return f"{IMAGE_REPOSITORY}/{spec.install_id}:{spec.version}"


def server_name(spec: EngineSpec) -> str:
    """``redis-server`` or ``valkey-server``: some builds pick their mode from their own name."""
    return PurePosixPath(spec.server).name


@dataclass
class BuiltImage:
    """What ``build_image`` made: the tag, the image id, and how long it took."""

    engine_id: str
    tag: str
    image_id: str
    size: int
    seconds: float
    files: int
    reused: bool = False  # the tag already held this exact content


def shared_libraries(binary: Path, env: dict[str, str]) -> tuple[list[Path], Path | None]:
    """The shared libraries ``binary`` loads (resolved by ``ldd``) and its dynamic loader.

    A statically linked binary (valkey-9.0's build) has neither: ``([], None)``.
    """
    try:
        result = subprocess.run(
            ["ldd", str(binary)], env=env, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ImageBuildError(f"cannot run ldd on {binary}: {exc}") from exc
    if "not a dynamic executable" in result.stderr + result.stdout:
        return [], None
    libraries: list[Path] = []
    loader: Path | None = None
    for line in result.stdout.splitlines():
        if "not found" in line:
            raise ImageBuildError(f"{binary} needs a library ldd cannot find: {line.strip()}")
        match = _LDD_LINE.match(line)
        if not match:
            continue  # linux-vdso: provided by the kernel
        name, path = match.groups()
        if name is None:
            loader = Path(path)  # the program interpreter, listed by its own absolute path
        else:
            libraries.append(Path(path))
    if result.returncode != 0 or loader is None:
        raise ImageBuildError(
            f"ldd {binary} failed (exit {result.returncode}): {result.stderr.strip()[:300]}"
        )
    return libraries, loader


def _image_files(spec: EngineSpec, store: Any) -> dict[PurePosixPath, Path | bytes]:
    """Every file of the image: path in the image -> host file, or literal contents."""
    server = store.server_path(spec)
    env = store.server_env(spec)
    files: dict[PurePosixPath, Path | bytes] = {SERVER_DIR / server_name(spec): server}
    binaries = [server]
    for name in sorted(spec.modules):
        module = store.module_path(spec, name)
        files[MODULE_DIR / f"{name}.so"] = module
        binaries.append(module)
    loader_path: Path | None = None
    for binary in binaries:
        libraries, loader = shared_libraries(binary, env)
        loader_path = loader_path or loader
        for library in libraries:
            # Under the name the binary asks for (its soname), whatever the file is called.
            files[LIBRARY_DIR / library.name] = library
    if loader_path is not None:
        # The loader must sit at the path written into the binary (PT_INTERP), e.g. /lib64/...
        files[PurePosixPath(str(loader_path))] = loader_path
    files[CONFIG_PATH] = SERVER_CONFIG.encode()
    return files


def image_changes(spec: EngineSpec, content: str) -> list[str]:
    """The Dockerfile instructions applied on top of the root file system (``docker import``)."""
    labels = {
        LABEL_ENGINE: spec.install_id,
        LABEL_LINE: spec.line,
        LABEL_VERSION: spec.version,
        LABEL_CONFIG: str(CONFIG_PATH),
        LABEL_CONTENT: content,
    }
    return [
        f"ENV PATH={SERVER_DIR} LD_LIBRARY_PATH={LIBRARY_DIR}",
        "LABEL " + " ".join(f'{key}="{value}"' for key, value in labels.items()),
        f"WORKDIR {DATA_DIR}",
        f"EXPOSE {PORT}",
        f'CMD ["{server_name(spec)}", "{CONFIG_PATH}"]',
    ]


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
    tar.addfile(info)


class _HashingWriter:
    """A file wrapper that hashes what goes through it (the tar's sha256 names its content)."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.sha = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        return self.out.write(data)

    def tell(self) -> int:
        return self.out.tell()


def write_rootfs(spec: EngineSpec, store: Any, out: Any) -> tuple[int, str]:
    """Write the image's root file system as a tar to ``out``: (file count, sha256 of the tar).

    Fixed owners, modes and times and a sorted order make the tar, and so its hash, a function
    of the store's files only.
    """
    files = _image_files(spec, store)
    writer = _HashingWriter(out)
    with tarfile.open(fileobj=writer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs = {DATA_DIR.relative_to("/")}
        for path in files:
            parent = path.relative_to("/").parent
            while parent != PurePosixPath("."):
                dirs.add(parent)
                parent = parent.parent
        for folder in sorted(dirs, key=str):
            _add_dir(tar, str(folder))
        _add_dir(tar, "tmp", 0o1777)
        for path in sorted(files, key=str):
            source = files[path]
            name = str(path.relative_to("/"))
            if isinstance(source, bytes):
                _add(tar, name, source, 0o644)
                continue
            # resolve(): a library path is often a symlink; the image gets the real file's bytes
            # under the link's name.
            real = source.resolve()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = real.stat().st_size, 0o755, 0
            with real.open("rb") as fh:
                tar.addfile(info, fh)
    return len(files), f"sha256:{writer.sha.hexdigest()}"


def build_image(spec: EngineSpec, store: Any, client: Any) -> BuiltImage:
    """Build and tag the image for one installed engine with a ``docker.DockerClient``.

    ``docker import`` of the root file system with the instructions above: one layer, no
    intermediate containers (a Dockerfile build of the same costs seconds per instruction on
    slow storage drivers). When the tag already holds this exact content, nothing is imported.
    """
    import docker.errors

    began = time.perf_counter()
    tag = image_tag(spec)
    previous = _existing(client, tag)
    with tempfile.NamedTemporaryFile(prefix="respmatrix-rootfs-", suffix=".tar") as rootfs:
        count, content = write_rootfs(spec, store, rootfs)
        rootfs.flush()
        fresh = previous is not None and previous.labels.get(LABEL_CONTENT) == content
        if not fresh:
            try:
                client.api.import_image_from_file(
                    rootfs.name,
                    repository=tag.rpartition(":")[0],
                    tag=spec.version,
                    changes=image_changes(spec, content),
                )
            except docker.errors.APIError as exc:
                raise ImageBuildError(f"importing {tag} failed: {exc.explanation or exc}") from None
    image = client.images.get(tag)
    if previous is not None and previous.id != image.id:
        # The old image lost its tag; drop it unless a container still uses it.
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(previous.id)
    return BuiltImage(
        engine_id=spec.install_id,
        tag=tag,
        image_id=image.id,
        size=int(image.attrs.get("Size", 0)),
        seconds=time.perf_counter() - began,
        files=count,
        reused=fresh,
    )


def _existing(client: Any, tag: str) -> Any:
    import docker.errors

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
