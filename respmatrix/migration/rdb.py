"""SAVE on the producer, then start the consumer on that file and compare what it loaded."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from respmatrix.catalog import EngineSpec
from respmatrix.clients.resp import RespConnection
from respmatrix.launcher import EngineProcess, EngineStartError
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
        with connect(process) as conn:
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
