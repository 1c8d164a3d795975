"""The consumer as a replica of the producer: handshake, full sync, then the stream of writes.

The dataset is written on the producer before ``REPLICAOF`` (it travels in the full sync) and
again under another prefix after the link is up (it travels as commands), then both sides are
read and compared. When it fails, the consumer's log and ``INFO replication`` say where:
``handshake`` (no full resync started), ``full sync`` (the transfer or its load failed) or
``stream of writes`` (synced, but later commands were refused or lost).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from respmatrix.catalog import EngineSpec
from respmatrix.clients.resp import RespConnection
from respmatrix.launcher import EngineProcess, parse_info
from respmatrix.migration.dataset import write_dataset
from respmatrix.migration.engines import (
    StepTimeout,
    connect,
    engine_process,
    log_lines,
    log_offset,
    timed_log_lines,
    warnings,
)
from respmatrix.migration.outcome import DIFFERENT, ERROR, PASS, REFUSED, MigrationOutcome
from respmatrix.migration.snapshot import SnapshotReader, compare

METHOD = "replication"
SUBJECT = "dataset"
BEFORE, AFTER = "before:", "after:"
STAGES = ("handshake", "full sync", "stream of writes")

# Notice lines that mark the end of each stage on the replica; Valkey says "primary" where Redis
# says "master", so they are matched in lower case.
_SYNC_STARTED = ("full resync from", "partial resynchronization accepted")
_SYNC_DONE = ("<-> replica sync: finished with success", "successful partial resynchronization")


def replicate(
    producer: EngineSpec,
    consumer: EngineSpec,
    store: object,
    log_dir: Path,
    timeout: float = 10.0,
    relaxed: bool = False,
) -> MigrationOutcome:
    """Replicate ``producer`` -> ``consumer``; each attempt has ``timeout`` seconds.

    ``relaxed`` sets ``rdb-version-check relaxed`` on the replica first (Valkey 8.1+ only).

    A sync that fails while the dataset holds hashes with field TTLs is tried once more
    without them: a primary may write an older RDB version for an older replica (Valkey 9.1
    does) and then refuse only the keys that version cannot hold.
    """
    first, field_ttl_keys = _attempt(producer, consumer, store, log_dir, timeout, True, relaxed)
    if first.outcome != REFUSED or not field_ttl_keys:
        return first
    # Second try: no field TTL at sync time, but the writes after the sync still set some.
    second, _ = _attempt(producer, consumer, store, log_dir, timeout, False, relaxed)
    first.extra["without_field_ttls"] = second.reason
    if second.outcome not in (PASS, DIFFERENT):
        return first
    then = "it syncs and stays identical" if second.outcome == PASS else second.reason
    return MigrationOutcome(
        METHOD, producer.id, consumer.id, SUBJECT, DIFFERENT,
        f"full sync refuses hashes with field TTLs ({first.error}); without them {then}",
        error=first.error,
        differences=[f"{k}: not in the full sync" for k in field_ttl_keys] + second.differences,
        extra={**first.extra, "stage": second.extra.get("stage", "full sync"),
               "without_field_ttls": second.reason},
    )  # fmt: skip


def _attempt(
    producer: EngineSpec,
    consumer: EngineSpec,
    store: object,
    log_dir: Path,
    timeout: float,
    field_ttls: bool,
    relaxed: bool = False,
) -> tuple[MigrationOutcome, list[str]]:
    processes: list[EngineProcess] = []
    written: list[str] = []

    def outcome(kind: str, reason: str, **more: Any) -> MigrationOutcome:
        return MigrationOutcome(METHOD, producer.id, consumer.id, SUBJECT, kind, reason, **more)

    try:
        try:
            primary = engine_process(producer, store, log_dir).start()
            processes.append(primary)
            replica = engine_process(consumer, store, log_dir).start()
            processes.append(replica)
        except Exception as exc:  # any start failure makes this pair unmeasurable
            return outcome(ERROR, f"could not start the servers: {str(exc).splitlines()[0]}"), []
        # Above WAIT's own timeout, so WAIT answers before the socket gives up on it.
        with connect(primary, 2 * timeout) as a, connect(replica, 2 * timeout) as b:
            # Diskless sync waits 5 s by default for more replicas to join; one is all there is.
            a.call("CONFIG", "SET", "repl-diskless-sync-delay", "0")
            if relaxed:
                reply = b.call("CONFIG", "SET", "rdb-version-check", "relaxed")
                if reply != "OK":
                    return outcome(ERROR, f"rdb-version-check relaxed refused: {reply}"), []
            written = write_dataset(a, BEFORE, modules=False, field_ttls=field_ttls)
            field_ttl_keys = [k for k in written if "field-ttl" in k]
            try:
                return _sync(primary, replica, a, b, timeout, outcome), field_ttl_keys
            except StepTimeout:
                raise  # a server that is slow to answer has not refused anything
            except (ConnectionError, OSError) as exc:
                # A server that exits while loading the sync (Valkey 8.1 with rdb-version-check
                # relaxed, fed RDB 80) closes our connection; its log says why.
                said = [t for _, t in _warnings_since(replica, 0, "replica")]
                said += [t for _, t in _warnings_since(primary, 0, "primary")]
                cause = said[0] if said else str(exc)
                reason = f"a server exited during the sync: {cause}"
                extra = {"stage": "full sync", "log": said[:6]}
                return outcome(REFUSED, reason, error=cause, extra=extra), field_ttl_keys
    finally:
        for process in processes:
            process.stop()


def _warnings_since(process: EngineProcess, offset: int, who: str) -> list[tuple[str, str]]:
    """(time, "who: message") of the warnings a server logged after ``offset``."""
    lines = timed_log_lines(process, offset)
    said = set(warnings([(level, text) for _, level, text in lines]))
    return [
        (when, f"{who}: {text}") for when, level, text in lines if level == "#" and text in said
    ]


def _sync(
    primary: EngineProcess,
    replica: EngineProcess,
    a: RespConnection,
    b: RespConnection,
    timeout: float,
    outcome: Any,
) -> MigrationOutcome:
    b_from, a_from = log_offset(replica), log_offset(primary)
    began = time.monotonic()
    reply = b.call("REPLICAOF", primary.host, str(primary.port))
    if reply != "OK":
        return outcome(
            REFUSED, f"REPLICAOF refused: {reply}", error=str(reply), extra={"stage": "handshake"}
        )
    deadline = began + timeout
    stage_reached = 0
    failing_since = None
    while True:
        texts = [t.lower() for _, t in log_lines(replica, b_from)]
        if any(m in t for t in texts for m in _SYNC_STARTED):
            stage_reached = max(stage_reached, 1)
        if any(m in t for t in texts for m in _SYNC_DONE):
            stage_reached = 2
        info = parse_info(str(b.call("INFO", "replication")))
        if info.get("master_link_status") == "up" and stage_reached == 2:
            break
        said = sorted(  # by time only: within one log, the order it was written in
            _warnings_since(replica, b_from, "replica")
            + _warnings_since(primary, a_from, "primary"),
            key=lambda line: line[0],
        )
        now = time.monotonic()
        if said and failing_since is None:
            failing_since = now
        stage = STAGES[min(stage_reached, 1)]
        # A failed sync is retried at once, forever: one second after the first warning
        # without a link, it has failed (the earliest warning, from either side, is the cause).
        if failing_since is not None and now - failing_since > 1.0:
            log = list(dict.fromkeys(text for _, text in said))
            return outcome(
                REFUSED, f"failed in {stage}: {log[0]}", error=log[0],
                extra={"stage": stage, "log": log[:6]},
            )  # fmt: skip
        if now > deadline:
            return outcome(
                ERROR, f"no sync within {timeout:.0f}s (stuck in {stage})",
                extra={"stage": stage, "log": texts[-6:]},
            )  # fmt: skip
        time.sleep(0.05)
    synced_in = time.monotonic() - began
    mid = log_offset(replica)
    write_dataset(a, AFTER, modules=False)
    acked = a.call("WAIT", "1", str(int(timeout * 1000)))
    expected = SnapshotReader(a).snapshot()
    actual = SnapshotReader(b).snapshot()
    diff = compare(expected, actual)
    stream_errors = [
        t for _, t in log_lines(replica, mid) if "error to its master" in t or "CRITICAL" in t
    ] + warnings(log_lines(replica, mid))
    extra: dict[str, Any] = {"synced_in_ms": round(synced_in * 1000)}
    if diff.identical and not stream_errors:
        return outcome(
            PASS,
            f"replicated and identical ({len(expected.keys)} keys, before and after the sync)",
            extra=extra,
        )
    before_bad = [k for k in [*diff.missing, *diff.changed] if k.startswith(BEFORE)]
    stage = "full sync" if before_bad else "stream of writes"
    extra |= {"stage": stage, "acked_replicas": acked}
    if stream_errors:
        extra["log"] = stream_errors[:6]
    said = [stream_errors[0]] if stream_errors else []
    reason = f"{stage}: " + "; ".join(said + ([diff.summary()] if not diff.identical else []))
    return outcome(
        DIFFERENT, reason,
        error=stream_errors[0] if stream_errors else None,
        differences=[diff.summary()] if not diff.identical else [],
        extra=extra,
    )  # fmt: skip
