"""Fetching and unpacking the files an engine is made from (PyPI wheels, Debian packages/sources).

Kept apart from the store so that the store reads as a transaction (download, extract, build,
verify, commit) while the per-format details live here. Every download is checked against the
sha256 pinned in the catalog before anything is unpacked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

from respmatrix import __version__

DEFAULT_DEBIAN_MIRROR = "http://deb.debian.org/debian"
PYPI_JSON = "https://pypi.org/pypi"
_CHUNK = 1 << 20
_TIMEOUT = 60


class EngineStoreError(Exception):
    """Base of every error the engine store raises."""


class DownloadError(EngineStoreError):
    """A source file could not be fetched (unreachable host, HTTP error, ...)."""


class CorruptDownloadError(EngineStoreError):
    """A downloaded file does not have the sha256 the catalog pins."""


class ExtractError(EngineStoreError):
    """An archive lacks a member the catalog names, or is malformed or unsafe."""


# --- where files come from ------------------------------------------------------------------


def debian_mirror() -> str:
    """The Debian mirror base: $RESPMATRIX_DEBIAN_MIRROR, else the system's apt config."""
    env = os.environ.get("RESPMATRIX_DEBIAN_MIRROR", "").strip()
    if env:
        return env.rstrip("/")
    return (_apt_mirror(Path("/etc/apt")) or DEFAULT_DEBIAN_MIRROR).rstrip("/")


def _apt_mirror(etc_apt: Path) -> str | None:
    """First non-security archive URI in deb822 ``*.sources`` files or ``sources.list``."""
    uris: list[str] = []
    for path in sorted(etc_apt.glob("sources.list.d/*.sources")):
        for line in _read_lines(path):
            if line.lower().startswith("uris:"):
                uris.extend(line.split(":", 1)[1].split())
    for path in [etc_apt / "sources.list", *sorted(etc_apt.glob("sources.list.d/*.list"))]:
        for line in _read_lines(path):
            match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line)
            if match:
                uris.append(match.group(1))
    for uri in uris:
        # Only a Debian archive has the pool paths the catalog pins (an Ubuntu runner's
        # archive.ubuntu.com does not); Debian mirrors end in /debian by convention.
        if uri.startswith(("http://", "https://")) and uri.rstrip("/").endswith("/debian"):
            return uri
    return None


def _read_lines(path: Path) -> list[str]:
    try:
        text = path.read_text()
    except OSError:
        return []
    return [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]


def source_url(source: dict[str, Any]) -> str:
    """The URL to fetch a catalog source from."""
    kind = source["kind"]
    if kind == "pypi-wheel":
        return source.get("url") or _pypi_file_url(
            source["package"], source["version"], source["filename"]
        )
    if kind in ("debian-package", "debian-source"):
        return f"{debian_mirror()}/{source['pool_path']}"
    raise EngineStoreError(f"unknown source kind {kind!r}")


def _pypi_file_url(package: str, version: str, filename: str) -> str:
    """Resolve a wheel's URL through PyPI's JSON API (used when the catalog gives no url)."""
    api = f"{PYPI_JSON}/{package}/json"
    try:
        with _open(api) as response:
            data = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise DownloadError(f"cannot query PyPI for {package}=={version} at {api}: {exc}") from exc
    for item in data.get("releases", {}).get(version, []):
        if item.get("filename") == filename:
            return urllib.parse.urljoin(api, item["url"])
    raise DownloadError(f"PyPI lists no file {filename} for {package}=={version} ({api})")


# --- downloading ----------------------------------------------------------------------------


@contextmanager
def _open(url: str) -> Iterator[IO[bytes]]:
    # urlopen's default opener honours http_proxy/https_proxy/no_proxy from the environment.
    request = urllib.request.Request(url, headers={"User-Agent": f"respmatrix/{__version__}"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
        yield response


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, dest: Path, sha256: str, progress: Any = None) -> None:
    """Stream ``url`` to ``dest``, verifying ``sha256``; ``dest`` appears only if it matches.

    Writes to a temporary file beside ``dest`` so a crash never leaves a half file under the
    final name; a mismatching file is deleted and reported.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    task = None
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            try:
                with _open(url) as response:
                    total = response.headers.get("Content-Length")
                    if progress is not None:
                        task = progress.add_task(
                            f"download {dest.name}", total=int(total) if total else None
                        )
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        if task is not None:
                            progress.update(task, advance=len(chunk))
            except urllib.error.HTTPError as exc:
                raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
            except urllib.error.URLError as exc:
                raise DownloadError(f"cannot download {url}: {exc.reason}") from exc
            except (OSError, ValueError) as exc:  # timeouts, resets, bad URLs
                raise DownloadError(f"cannot download {url}: {exc}") from exc
        actual = digest.hexdigest()
        if actual != sha256:
            raise CorruptDownloadError(
                f"sha256 mismatch for {dest.name} from {url}: expected {sha256}, got {actual}; "
                "the file was removed"
            )
        tmp.chmod(0o644)  # mkstemp makes it private; downloads are public files anyway
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
        if task is not None:
            progress.remove_task(task)


# --- extracting -----------------------------------------------------------------------------


def extract(archive: Path, source: dict[str, Any], dest_root: Path) -> None:
    """Copy the members that ``source['extract']`` names from ``archive`` into ``dest_root``."""
    kind = source["kind"]
    if kind == "pypi-wheel":
        _extract_zip(archive, source["extract"], dest_root)
    elif kind == "debian-package":
        with _deb_data_tar(archive) as tar:
            _extract_tar(tar, source["extract"], dest_root, archive.name)
    elif kind == "debian-source":
        with tarfile.open(archive) as tar:
            _extract_tar(tar, source["extract"], dest_root, archive.name)
    else:
        raise EngineStoreError(f"unknown source kind {kind!r}")


def _match(mapping: dict[str, str], member: str) -> tuple[str, str] | None:
    """The mapping key that selects ``member`` and where it goes in the engine folder."""
    for key, dest in mapping.items():
        if key.endswith("/"):
            if member.startswith(key) and member != key:
                return key, f"{dest.rstrip('/')}/{member[len(key) :]}"
        elif member == key:
            return key, dest
    return None


def _safe_join(root: Path, rel: str) -> Path:
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or ".." in parts:
        raise ExtractError(f"refusing unsafe archive path {rel!r}")
    return root.joinpath(*parts)


def _check_all_found(mapping: dict[str, str], found: set[str], archive_name: str) -> None:
    missing = sorted(set(mapping) - found)
    if missing:
        raise ExtractError(f"{archive_name} has no member(s) {', '.join(missing)}")


def _extract_zip(archive: Path, mapping: dict[str, str], root: Path) -> None:
    found: set[str] = set()
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                hit = _match(mapping, info.filename)
                if hit is None:
                    continue
                key, rel = hit
                found.add(key)
                path = _safe_join(root, rel)
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, path.open("wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
                mode = (info.external_attr >> 16) & 0o777
                path.chmod(mode | 0o644 if mode else 0o644)
    except zipfile.BadZipFile as exc:
        raise ExtractError(f"{archive.name} is not a valid wheel (zip): {exc}") from exc
    _check_all_found(mapping, found, archive.name)


def _extract_tar(tar: tarfile.TarFile, mapping: dict[str, str], root: Path, name: str) -> None:
    found: set[str] = set()
    for member in tar:
        member_name = member.name.removeprefix("./")
        hit = _match(mapping, member_name)
        if hit is None:
            continue
        key, rel = hit
        found.add(key)
        path = _safe_join(root, rel)
        if member.isdir():
            path.mkdir(parents=True, exist_ok=True)
        elif member.isfile():
            path.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None
            with src, path.open("wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            path.chmod((member.mode & 0o777) | 0o600)
        elif member.issym():
            # Keep only links that stay inside the engine folder.
            resolved = os.path.normpath(os.path.join(os.path.dirname(rel), member.linkname))
            if member.linkname.startswith("/") or resolved.startswith(".."):
                raise ExtractError(f"{name}: refusing symlink {member.name} -> {member.linkname}")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)
            path.symlink_to(member.linkname)
        elif member.islnk():
            link = _match(mapping, member.linkname.removeprefix("./"))
            if link is None:
                raise ExtractError(f"{name}: hard link {member.name} points outside the extract")
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(_safe_join(root, link[1]), path)
        # device files, fifos: never needed, skipped
    _check_all_found(mapping, found, name)


@contextmanager
def _deb_data_tar(deb: Path) -> Iterator[tarfile.TarFile]:
    """Open the data.tar.* member of a .deb (an ar archive) as a streaming tar."""
    with deb.open("rb") as fh:
        if fh.read(8) != b"!<arch>\n":
            raise ExtractError(f"{deb.name} is not a Debian package (no ar header)")
        while header := fh.read(60):
            if len(header) < 60:
                break
            member = header[:16].decode("ascii", "replace").strip().rstrip("/")
            size = int(header[48:58].decode("ascii").strip())
            if member.startswith("data.tar"):
                if member.endswith(".zst"):
                    raise ExtractError(f"{deb.name}: zstd-compressed data is not supported")
                payload = _Window(fh, size)
                with tarfile.open(fileobj=payload, mode="r|*") as tar:
                    yield tar
                return
            fh.seek(size + (size % 2), os.SEEK_CUR)
    raise ExtractError(f"{deb.name} has no data.tar member")


class _Window:
    """A read-only view of ``size`` bytes of a file from its current position."""

    def __init__(self, fh: IO[bytes], size: int) -> None:
        self._fh = fh
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._left:
            n = self._left
        data = self._fh.read(n)
        self._left -= len(data)
        return data
