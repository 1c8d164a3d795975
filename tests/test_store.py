"""The engine store, run for real: a local HTTP server on 127.0.0.1 serves small archives.

The archives hold a tiny shell script standing in for a server binary; it needs its bundled
library on LD_LIBRARY_PATH to answer ``--version``, so the store's environment handling is
exercised too. The ``engines`` test checks the real engines in the default store.
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tarfile
import threading
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from rich.progress import Progress

from respmatrix.catalog import EngineCatalog, EngineSpec
from respmatrix.datafiles import data_dir
from respmatrix.sources import debian_mirror, source_url
from respmatrix.store import (
    BuildError,
    CorruptDownloadError,
    DownloadError,
    EngineNotInstalledError,
    EngineStore,
    EngineVersionMismatchError,
    ExtractError,
    UnknownModuleError,
)
from tests.conftest import ENGINE_IDS, require_installed

FAKE_SERVER = """#!/bin/sh
first=${LD_LIBRARY_PATH%%:*}
[ -f "$first/libfake.so.1" ] || { echo "libfake.so.1: not found" >&2; exit 127; }
echo "Redis server v=__VERSION__ sha=00000000:0 malloc=libc bits=64 build=0"
"""


def make_wheel(version: str = "1.2.3") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        script = zipfile.ZipInfo("fake_pkg/bin/redis-server")
        script.external_attr = 0o755 << 16
        zf.writestr(script, FAKE_SERVER.replace("__VERSION__", version))
        zf.writestr("fake_pkg/lib/libfake.so.1", b"not really a library")
        zf.writestr("fake_pkg/lib/mod.so", b"module")
        zf.writestr("fake_pkg/README", b"ignored")
    return buf.getvalue()


def make_deb(files: dict[str, bytes], symlinks: dict[str, str]) -> bytes:
    """A real .deb layout: an ar archive holding debian-binary, control and data tars."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size, info.mode = len(content), 0o755
            tar.addfile(info, io.BytesIO(content))
        for name, target in symlinks.items():
            info = tarfile.TarInfo(f"./{name}")
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    control = io.BytesIO()
    with tarfile.open(fileobj=control, mode="w:xz") as tar:
        content = b"Package: fake\n"
        info = tarfile.TarInfo("./control")
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    out = io.BytesIO()
    out.write(b"!<arch>\n")
    for name, payload in [
        ("debian-binary", b"2.0\n"),
        ("control.tar.xz", control.getvalue()),
        ("data.tar.xz", data.getvalue()),
    ]:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(payload):<10}`\n"
        out.write(header.encode())
        out.write(payload + (b"\n" if len(payload) % 2 else b""))
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FileServer:
    base: str
    files: dict[str, bytes] = field(default_factory=dict)
    hits: Counter[str] = field(default_factory=Counter)

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@pytest.fixture
def http() -> Iterator[FileServer]:
    """A throwaway HTTP server on 127.0.0.1 that counts the requests for each file."""
    state = FileServer(base="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.lstrip("/")
            state.hits[name] += 1
            body = state.files.get(name)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def fake_spec(http: FileServer, *, version: str = "1.2.3", **changes: Any) -> EngineSpec:
    wheel = make_wheel(version)
    http.files["fake.whl"] = wheel
    source = {
        "kind": "pypi-wheel",
        "url": http.url("fake.whl"),
        "filename": "fake.whl",
        "sha256": sha(wheel),
        "extract": {
            "fake_pkg/bin/redis-server": "bin/redis-server",
            "fake_pkg/lib/": "lib/",
        },
    }
    spec = EngineSpec(
        id="redis-1.2",
        line="redis",
        version="1.2.3",
        image="redis:1.2.3",
        server="bin/redis-server",
        sources=(source,),
        library_dirs=("lib",),
        modules={"mod": "lib/mod.so"},
    )
    return replace(spec, **changes)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob(".tmp-*")) + sorted(
        p.name for p in root.glob(".trash-*")
    )


def test_install_runs_and_verifies_the_server(http: FileServer, tmp_path: Path) -> None:
    store = EngineStore(tmp_path)
    spec = fake_spec(http)
    assert not store.is_installed(spec)

    folder = store.install(spec)

    assert folder == tmp_path / "redis-1.2" and store.is_installed(spec)
    env = store.server_env(spec)
    assert env["LD_LIBRARY_PATH"].split(":")[0] == str(folder / "lib")
    out = subprocess.run(
        [store.server_path(spec), "--version"], env=env, capture_output=True, text=True, check=True
    )
    assert "v=1.2.3" in out.stdout
    assert store.module_path(spec, "mod").read_bytes() == b"module"
    assert not (folder / "README").exists()
    status = store.status(spec)
    assert status.installed and status.installed_at and status.path == folder
    assert leftovers(tmp_path) == []


def test_server_env_keeps_the_callers_library_path(http: FileServer, tmp_path: Path) -> None:
    store = EngineStore(tmp_path)
    spec = fake_spec(http)
    env = store.server_env(spec, base={"LD_LIBRARY_PATH": "/opt/x", "PATH": "/bin"})
    assert env["LD_LIBRARY_PATH"] == f"{tmp_path / 'redis-1.2' / 'lib'}:/opt/x"
    assert env["PATH"] == "/bin"


def test_install_is_idempotent_and_downloads_are_cached(http: FileServer, tmp_path: Path) -> None:
    spec = fake_spec(http)
    store = EngineStore(tmp_path)
    store.install(spec)
    assert http.hits["fake.whl"] == 1
    marker = (tmp_path / "redis-1.2" / ".respmatrix-installed.json").read_text()

    store.install(spec)
    EngineStore(tmp_path).install(spec)
    assert http.hits["fake.whl"] == 1
    assert (tmp_path / "redis-1.2" / ".respmatrix-installed.json").read_text() == marker

    assert store.uninstall(spec) and not store.is_installed(spec)
    assert not (tmp_path / "redis-1.2").exists()
    store.install(spec)  # from the download cache
    assert http.hits["fake.whl"] == 1 and store.is_installed(spec)
    assert store.uninstall(spec) and not store.uninstall(spec)


def test_a_damaged_cached_download_is_fetched_again(http: FileServer, tmp_path: Path) -> None:
    spec = fake_spec(http)
    (tmp_path / "downloads").mkdir(parents=True)
    (tmp_path / "downloads" / "fake.whl").write_bytes(b"truncated")
    EngineStore(tmp_path).install(spec)
    assert http.hits["fake.whl"] == 1


def test_sha256_mismatch_is_refused_and_the_file_removed(http: FileServer, tmp_path: Path) -> None:
    spec = fake_spec(http)
    pinned = "0" * 64
    spec = replace(spec, sources=({**spec.sources[0], "sha256": pinned},))
    store = EngineStore(tmp_path)

    with pytest.raises(CorruptDownloadError) as err:
        store.install(spec)

    message = str(err.value)
    assert pinned in message and sha(http.files["fake.whl"]) in message
    assert http.url("fake.whl") in message and "the file was removed" in message
    assert list((tmp_path / "downloads").iterdir()) == []
    assert not store.is_installed(spec) and not (tmp_path / "redis-1.2").exists()
    assert leftovers(tmp_path) == []


def test_unreachable_url_gives_one_clear_error(http: FileServer, tmp_path: Path) -> None:
    spec = fake_spec(http)
    closed = socket_port_that_is_closed()
    url = f"http://127.0.0.1:{closed}/fake.whl"
    spec = replace(spec, sources=({**spec.sources[0], "url": url},))

    with pytest.raises(DownloadError) as err:
        EngineStore(tmp_path).install(spec)
    assert url in str(err.value) and "refused" in str(err.value).lower()

    missing = replace(spec, sources=({**spec.sources[0], "url": http.url("nope.whl")},))
    with pytest.raises(DownloadError, match="HTTP 404"):
        EngineStore(tmp_path).install(missing)
    assert leftovers(tmp_path) == [] and list((tmp_path / "downloads").iterdir()) == []


def socket_port_that_is_closed() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends


class InterruptingProgress:
    """A progress sink that raises Ctrl-C when a given step starts, as a user would."""

    def __init__(self, on: str) -> None:
        self.on = on
        self.tasks: list[str] = []

    def add_task(self, description: str, total: float | None = None) -> int:
        self.tasks.append(description)
        if description.startswith(self.on):
            raise KeyboardInterrupt
        return len(self.tasks)

    def update(self, task: int, advance: float = 0) -> None:
        pass

    def remove_task(self, task: int) -> None:
        pass


def test_interrupted_install_leaves_nothing_that_looks_installed(
    http: FileServer, tmp_path: Path
) -> None:
    spec = fake_spec(http)
    store = EngineStore(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        store.install(spec, progress=InterruptingProgress(on="extract"))

    assert not store.is_installed(spec) and not (tmp_path / "redis-1.2").exists()
    assert leftovers(tmp_path) == []
    with pytest.raises(
        EngineNotInstalledError, match=re.escape("respmatrix engines install redis-1.2")
    ):
        store.server_path(spec)
    store.install(spec)  # the lock was released and the cached download is reused
    assert store.is_installed(spec) and http.hits["fake.whl"] == 1


def test_ctrl_c_during_a_build_cleans_up(http: FileServer, tmp_path: Path) -> None:
    # The "build" sends SIGINT to this very Python process, as a Ctrl-C in the terminal would.
    spec = fake_spec(
        http,
        build={
            "source_dir": "bin",
            "command": ["sh", "-c", "kill -INT $PPID; sleep 10"],
            "outputs": {"redis-server": "bin/redis-server"},
        },
    )
    store = EngineStore(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        store.install(spec)
    assert not store.is_installed(spec) and leftovers(tmp_path) == []


def test_failed_build_names_the_log_and_shows_its_tail(http: FileServer, tmp_path: Path) -> None:
    script = "for i in $(seq 1 30); do echo build-line-$i; done; echo 'cc: error' >&2; exit 3"
    spec = fake_spec(
        http,
        build={
            "source_dir": "lib",
            "command": ["sh", "-c", script],
            "jobs": 2,
            "outputs": {"x": "bin/x"},
        },
    )
    store = EngineStore(tmp_path)
    with pytest.raises(BuildError) as err:
        store.install(spec)

    message = str(err.value)
    log = tmp_path / "redis-1.2.build.log"
    assert str(log) in message and "exit 3" in message
    assert "cc: error" in message and "build-line-30" in message
    assert "build-line-5\n" not in message  # only the tail
    assert "-j2" in log.read_text().splitlines()[0]
    assert not store.is_installed(spec) and leftovers(tmp_path) == []


def test_build_outputs_are_installed(http: FileServer, tmp_path: Path) -> None:
    spec = fake_spec(
        http,
        build={
            "source_dir": "src",
            "command": ["sh", "-c", "mkdir -p out && cp ../lib/mod.so out/built.so"],
            "jobs": "auto",
            "outputs": {"out/built.so": "lib/built.so"},
        },
    )
    source = {**spec.sources[0], "extract": {**spec.sources[0]["extract"], "fake_pkg/": "src/"}}
    spec = replace(spec, sources=(source,))
    folder = EngineStore(tmp_path).install(spec)
    assert (folder / "lib" / "built.so").read_bytes() == b"module"
    assert not (folder / "src").exists()  # the source tree is not kept


def test_version_mismatch_is_refused(http: FileServer, tmp_path: Path) -> None:
    spec = fake_spec(http, version="1.2.3")
    spec = replace(spec, version="1.2.4")
    store = EngineStore(tmp_path)
    with pytest.raises(
        EngineVersionMismatchError, match=r"expected redis 1\.2\.4.*reported 1\.2\.3"
    ):
        store.install(spec)
    assert not store.is_installed(spec) and leftovers(tmp_path) == []


def test_missing_library_dir_makes_the_server_fail_the_check(
    http: FileServer, tmp_path: Path
) -> None:
    spec = fake_spec(http, library_dirs=())
    with pytest.raises(EngineVersionMismatchError, match=re.escape("libfake.so.1: not found")):
        EngineStore(tmp_path).install(spec)


def test_missing_archive_member_is_reported(http: FileServer, tmp_path: Path) -> None:
    spec = fake_spec(http)
    extract = {**spec.sources[0]["extract"], "fake_pkg/bin/valkey-server": "bin/other"}
    spec = replace(spec, sources=({**spec.sources[0], "extract": extract},))
    with pytest.raises(ExtractError, match="fake_pkg/bin/valkey-server"):
        EngineStore(tmp_path).install(spec)
    assert leftovers(tmp_path) == []


def test_catalog_change_makes_an_install_stale(http: FileServer, tmp_path: Path) -> None:
    store = EngineStore(tmp_path)
    old = fake_spec(http, version="1.2.3")
    store.install(old)
    new = fake_spec(http, version="1.2.5")  # new wheel, new sha256
    new = replace(new, version="1.2.5")
    assert not store.is_installed(new)
    store.install(new)
    assert store.is_installed(new) and not store.is_installed(old)
    assert leftovers(tmp_path) == []


def test_concurrent_installs_share_one_download(http: FileServer, tmp_path: Path) -> None:
    spec = fake_spec(http)
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(EngineStore(tmp_path).install(spec))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert results == [tmp_path / "redis-1.2"] * 4
    assert http.hits["fake.whl"] == 1


def test_debian_package_extraction_with_symlink(http: FileServer, tmp_path: Path) -> None:
    server = FAKE_SERVER.replace("__VERSION__", "1.2.3").encode()
    deb = make_deb(
        {
            "usr/bin/fake-check-rdb": server,
            "usr/lib/x86_64-linux-gnu/libfake.so.1.0": b"lib",
        },
        {"usr/lib/x86_64-linux-gnu/libfake.so.1": "libfake.so.1.0"},
    )
    http.files["pool/main/f/fake/fake_1.0_amd64.deb"] = deb
    source = {
        "kind": "debian-package",
        "pool_path": "pool/main/f/fake/fake_1.0_amd64.deb",
        "filename": "fake_1.0_amd64.deb",
        "sha256": sha(deb),
        "extract": {
            "usr/bin/fake-check-rdb": "bin/redis-server",
            "usr/lib/x86_64-linux-gnu/": "lib/",
        },
    }
    spec = replace(fake_spec(http), sources=(source,), modules={})
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESPMATRIX_DEBIAN_MIRROR", http.base + "/")
        assert source_url(source) == http.url("pool/main/f/fake/fake_1.0_amd64.deb")
        folder = EngineStore(tmp_path).install(spec)
    assert (folder / "lib" / "libfake.so.1").is_symlink()
    assert (folder / "lib" / "libfake.so.1").read_bytes() == b"lib"


def test_debian_mirror_comes_from_env_then_apt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESPMATRIX_DEBIAN_MIRROR", "http://mirror.example/debian/")
    assert debian_mirror() == "http://mirror.example/debian"
    monkeypatch.delenv("RESPMATRIX_DEBIAN_MIRROR")
    assert debian_mirror().startswith(("http://", "https://"))


def test_apt_config_parsing(tmp_path: Path) -> None:
    from respmatrix.sources import _apt_mirror

    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# URIs: http://commented.example/debian\nURIs: http://m.example/debian\n"
    )
    assert _apt_mirror(tmp_path) == "http://m.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text(
        "deb [arch=amd64] https://one.example/debian bookworm main\n"
    )
    assert _apt_mirror(tmp_path) == "https://one.example/debian"


def test_rich_progress_is_driven(http: FileServer, tmp_path: Path) -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with Progress(console=console) as progress:
        EngineStore(tmp_path).install(fake_spec(http), progress=progress)
        assert progress.tasks == []  # every task it added was removed again


def test_unknown_module_is_a_clear_error(http: FileServer, tmp_path: Path) -> None:
    spec = fake_spec(http)
    with pytest.raises(UnknownModuleError, match=r"bundles no module 'rejson'.*mod"):
        EngineStore(tmp_path).module_path(spec, "rejson")


def test_a_variant_runs_from_its_base_install(http: FileServer, tmp_path: Path) -> None:
    base = fake_spec(http)
    variant = replace(base, id="redis-1.2+mod", base=base.id, load=("mod",))
    store = EngineStore(tmp_path)
    assert not store.is_installed(variant)
    store.install(variant)  # installs the base's folder, once
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "downloads",
        "redis-1.2",
    ]
    assert store.is_installed(base) and store.is_installed(variant)
    assert store.server_path(variant) == store.server_path(base)
    assert store.module_args(base) == ()
    assert store.module_args(variant) == ("--loadmodule", str(tmp_path / "redis-1.2/lib/mod.so"))
    assert store.status(variant).id == "redis-1.2+mod"


def _catalog_with(tmp_path: Path, **variant: Any) -> Path:
    raw = yaml.safe_load((data_dir("engines") / "catalog.yaml").read_text())
    raw["engines"][0]["variants"] = [variant]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_catalog_variants_load_bundled_modules_only(tmp_path: Path) -> None:
    path = _catalog_with(tmp_path, id="redis-7.2+graph", load={"graph": "4.16.3"})
    with pytest.raises(ValueError, match=r"loads graph, which redis-7.2 does not bundle"):
        EngineCatalog.load(path)
    path = _catalog_with(tmp_path, id="redis-7.4+json", load={"ReJSON": "2.6.9"})
    with pytest.raises(ValueError, match=r"must be named redis-7.2\+<variant>"):
        EngineCatalog.load(path)
    path = _catalog_with(tmp_path, id="redis-7.2+json", load={"ReJSON": "2.6"})
    with pytest.raises(ValueError, match=r"variants/0/load"):
        EngineCatalog.load(path)


def test_catalog_stack_variants() -> None:
    catalog = EngineCatalog.load()
    for base_id in ("redis-7.2", "redis-7.4"):
        base, stack = catalog.get(base_id), catalog.get(f"{base_id}+stack")
        # the base id is the clean server; the variant is the same install with the modules
        assert (base.load, base.loaded_modules) == ((), {})
        assert (stack.install_id, stack.variant, stack.sources) == (base.id, "stack", base.sources)
        stack_modules = {"ReJSON", "search", "bf", "timeseries"}
        assert set(stack.load) == set(stack.loaded_modules) == stack_modules
    # vector sets are compiled into Redis 8; every id of a line is selected with its line
    assert catalog.get("redis-8.0").loaded_modules == {"vectorset": "0.0.1"}
    assert "redis-7.4+stack" in [e.id for e in catalog.select("redis")]
    assert [e.id for e in catalog.select("all")] == ENGINE_IDS


def test_uninstalling_a_variant_leaves_the_shared_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from respmatrix.cli import main

    monkeypatch.setenv("RESPMATRIX_HOME", str(tmp_path))
    folder = tmp_path / "engines" / "redis-7.2"
    folder.mkdir(parents=True)
    assert main(["engines", "uninstall", "redis-7.2+stack"]) == 0
    assert "runs from redis-7.2's install" in capsys.readouterr().out
    assert folder.is_dir()


def test_default_root_follows_respmatrix_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESPMATRIX_HOME", str(tmp_path))
    assert EngineStore().root == tmp_path / "engines"


# --- the real catalog ------------------------------------------------------------------------


def test_catalog_pins_every_source() -> None:
    catalog = EngineCatalog.load()
    assert [e.id for e in catalog] == ENGINE_IDS
    for engine in catalog:
        assert engine.id == f"{engine.line}-{engine.minor}" + (
            f"+{engine.variant}" if engine.variant else ""
        )
        assert engine.image.endswith(f":{engine.version}")
        for source in engine.sources:
            assert re.fullmatch(r"[0-9a-f]{64}", source["sha256"])
            assert source_url(source).endswith(source["filename"])


def test_catalog_schema_rejects_an_unpinned_source(tmp_path: Path) -> None:
    raw = yaml.safe_load((data_dir("engines") / "catalog.yaml").read_text())
    raw["engines"][0]["sources"][0]["sha256"] = "ABC"
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="sha256"):
        EngineCatalog.load(path)


@pytest.mark.engines
def test_installed_engines_report_their_catalog_version() -> None:
    store = EngineStore()
    for engine in EngineCatalog.load():
        require_installed(store, engine)  # a missing engine fails, never a silent skip
        result = subprocess.run(
            [store.server_path(engine), "--version"],
            env=store.server_env(engine),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 0, (engine.id, result.stderr)
        assert f" v={engine.version} " in result.stdout, (engine.id, result.stdout)
        name = "Valkey server" if engine.line == "valkey" else "Redis server"
        assert result.stdout.startswith(name), (engine.id, result.stdout)
        for module in engine.modules:
            assert store.module_path(engine, module).is_file(), (engine.id, module)
