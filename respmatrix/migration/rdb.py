"""SAVE on the producer, then start the consumer on that file and compare what it loaded."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from respmatrix.catalog import EngineSpec
from respmatrix.clients.resp import RespConnection
from respmatrix.launcher import EngineProcess, EngineStartError
from respmatrix.migration.dataset import field_ttl_keys
from respmatrix.migration.engines import connect, engine_process, log_lines, warnings
from respmatrix.migration.outcome import DIFFERENT, ERROR, PASS, REFUSED, MigrationOutcome
from respmatrix.migration.snapshot import Snapshot, SnapshotReader, compare

METHOD = "rdb"
SUBJECT = "dataset"


def save_rdb(conn: RespConnection, process: EngineProcess, dest: Path) -> Path:
    """``SAVE`` on the producer and copy its RDB file to ``dest``."""
    reply = conn.call("SAVE")
    if reply != "OK":
        raise RuntimeError(f"SAVE on {process.spec.id} answered {reply}")
    dbfilename = conn.call("CONFIG", "GET", "dbfilename")[1]
    assert process.workdir is not None
    shutil.copyfile(process.workdir / dbfilename, dest)
    return dest


@dataclass(frozen=True)
class SavedRdb:
    """An RDB file of the producer and what it holds."""

    path: Path
    expected: Snapshot
    field_ttl_keys: tuple[str, ...] = ()
    without_field_ttls: SavedRdb | None = None  # a second file, without those keys


def save_rdb_files(
    conn: RespConnection, process: EngineProcess, expected: Snapshot, dest: Path
) -> SavedRdb:
    """``SAVE`` the producer's dataset to ``dest``; where it holds hashes with field TTLs, also
    a second file without them (this deletes them on the producer).

    A file is loaded all or nothing: a consumer that cannot read a field TTL (Valkey 9 with
    ``rdb-version-check relaxed`` on a Redis 7.4+ file) would otherwise hide the answer for
    every other type.
    """
    path = save_rdb(conn, process, dest)
    keys = tuple(field_ttl_keys(list(expected.keys)))
    if not keys:
        return SavedRdb(path, expected)
    conn.call("DEL", *keys)
    plain = Snapshot({k: v for k, v in expected.keys.items() if k not in keys})
    plain_path = save_rdb(conn, process, dest.with_name(f"{dest.stem}-no-field-ttls.rdb"))
    return SavedRdb(path, expected, keys, SavedRdb(plain_path, plain))


def migrate_rdb(
    spec: EngineSpec,
    store: object,
    saved: SavedRdb,
    producer: str,
    log_dir: Path,
    timeout: float = 15.0,
    relaxed: bool = False,
) -> MigrationOutcome:
    """:func:`load_rdb` of the file; a refused file that holds hashes with field TTLs is tried
    once more without them, as replication does, and both answers are kept."""
    first = load_rdb(spec, store, saved.path, saved.expected, producer, log_dir, timeout, relaxed)
    plain = saved.without_field_ttls
    if first.outcome != REFUSED or plain is None:
        return first
    second = load_rdb(spec, store, plain.path, plain.expected, producer, log_dir, timeout, relaxed)
    first.extra["without_field_ttls"] = second.reason
    if second.outcome not in (PASS, DIFFERENT):
        return first
    then = "it loads and is identical" if second.outcome == PASS else second.reason
    return MigrationOutcome(
        METHOD, producer, spec.id, SUBJECT, DIFFERENT,
        f"refused at load with hashes with field TTLs ({first.error}); without them {then}",
        error=first.error,
        differences=[f"{k}: the file does not load with it" for k in saved.field_ttl_keys]
        + second.differences,
        extra={**first.extra, "without_field_ttls": second.reason},
    )  # fmt: skip


def rdb_version(path: Path) -> int:
    """The version in the file header (``REDIS0011`` -> 11)."""
    header = path.read_bytes()[:9]
    return int(header[5:9]) if header[:5] == b"REDIS" else -1


def load_rdb(
    spec: EngineSpec,
    store: object,
    rdb_file: Path,
    expected: Snapshot,
    producer: str,
    log_dir: Path,
    timeout: float = 15.0,
    relaxed: bool = False,
) -> MigrationOutcome:
    """Start ``spec`` with ``rdb_file`` as its dump file; refused, partial, different or same.

    ``relaxed`` starts it with ``rdb-version-check relaxed`` (Valkey 8.1+ only).
    """
    consumer = spec.id
    extra = {"rdb_version": rdb_version(rdb_file)}

    def outcome(kind: str, reason: str, **more: object) -> MigrationOutcome:
        return MigrationOutcome(
            METHOD,
            producer,
            consumer,
            SUBJECT,
            kind,
            reason,
            extra=extra,
            **more,  # type: ignore[arg-type]
        )

    data_dir = Path(tempfile.mkdtemp(prefix="respmatrix-rdb-"))
    process = None
    try:
        shutil.copyfile(rdb_file, data_dir / "dump.rdb")
        args: tuple[str, ...] = ("--dir", str(data_dir), "--dbfilename", "dump.rdb")
        if relaxed:
            args += ("--rdb-version-check", "relaxed")
        process = engine_process(spec, store, log_dir, args, start_timeout=timeout)
        try:
            process.start()
        except EngineStartError as exc:
            said = warnings(log_lines(process))
            if "exited at start" in str(exc) and said:
                extra["log"] = said[:6]
                return outcome(REFUSED, f"refused at load: {said[0]}", error=said[0])
            return outcome(ERROR, f"did not start: {str(exc).splitlines()[0]}")
        with connect(process, timeout) as conn:
            actual = SnapshotReader(conn).snapshot()
        diff = compare(expected, actual)
        if diff.identical:
            return outcome(PASS, f"loaded and identical ({len(expected.keys)} keys)")
        kind = "loaded partially" if diff.missing else "loaded but different"
        return outcome(DIFFERENT, f"{kind}: {diff.summary()}", differences=_lines(diff))
    finally:
        if process is not None:
            process.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _lines(diff: object) -> list[str]:
    out = [f"{key}: missing" for key in diff.missing]  # type: ignore[attr-defined]
    out += [f"{key}: unexpected" for key in diff.extra]  # type: ignore[attr-defined]
    out += [f"{k}: {'; '.join(w)}" for k, w in diff.changed.items()]  # type: ignore[attr-defined]
    return out
