"""DUMP on the producer, RESTORE on the consumer, one key (= one data type) at a time."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from respmatrix.clients.resp import RespConnection
from respmatrix.migration.engines import StepTimeout
from respmatrix.migration.outcome import DIFFERENT, ERROR, PASS, REFUSED, MigrationOutcome
from respmatrix.migration.snapshot import Snapshot, SnapshotReader, compare_key
from respmatrix.replies import RespError

METHOD = "dump-restore"
RELAXED_CONFIG = "rdb-version-check"


@dataclass(frozen=True)
class Payload:
    key: str
    data: bytes
    expire_at_ms: int  # absolute Unix ms for RESTORE ... ABSTTL; 0: no TTL

    @property
    def rdb_version(self) -> int:
        """The RDB version in the payload's trailer (2 bytes LE before the 8-byte CRC64)."""
        return int.from_bytes(self.data[-10:-8], "little")


def dump_payloads(conn: RespConnection, keys: list[str]) -> list[Payload]:
    """DUMP every key with its remaining TTL."""
    payloads = []
    for key in keys:
        data, ttl = conn.pipeline([("DUMP", key), ("PTTL", key)])
        if isinstance(data, RespError) or data is None:
            raise RuntimeError(f"DUMP {key} failed on the producer: {data}")
        raw = data.encode(errors="surrogateescape") if isinstance(data, str) else data
        # ABSTTL keeps the expiry where it was, however long the consumers take to come.
        expire_at = int(time.time() * 1000) + int(ttl) if int(ttl) >= 0 else 0
        payloads.append(Payload(key, raw, expire_at))
    return payloads


def restore_payloads(
    conn: RespConnection,
    payloads: list[Payload],
    expected: Snapshot,
    producer: str,
    consumer: str,
) -> list[MigrationOutcome]:
    """RESTORE each payload on the consumer and compare the key it made with the producer's."""
    reader = SnapshotReader(conn)
    outcomes = []
    for payload in payloads:
        kind, reason, more = _restore_one(conn, reader, payload, expected)
        outcomes.append(
            MigrationOutcome(
                METHOD, producer, consumer, payload.key, kind, reason,
                extra={"rdb_version": payload.rdb_version}, **more,
            )
        )  # fmt: skip
    refused = [o for o in outcomes if o.outcome == REFUSED]
    previous = version_check(conn)
    if refused and previous is not None:
        # Valkey 8.1+ can be told to attempt payloads of unknown RDB versions; say what that
        # gives, as a separate fact: by default the payload is still refused.
        by_key = {p.key: p for p in payloads}
        conn.call("CONFIG", "SET", RELAXED_CONFIG, "relaxed")
        try:
            for outcome in refused:
                _, reason, _ = _restore_one(conn, reader, by_key[outcome.subject], expected)
                outcome.extra["relaxed"] = reason
        finally:
            conn.call("CONFIG", "SET", RELAXED_CONFIG, previous)
    conn.call("FLUSHALL")
    return outcomes


def version_check(conn: RespConnection) -> str | None:
    """The consumer's rdb-version-check setting (Valkey 8.1+), None where it has none."""
    reply = conn.call("CONFIG", "GET", RELAXED_CONFIG)
    return str(reply[1]) if isinstance(reply, list) and len(reply) == 2 else None


def _restore_one(
    conn: RespConnection, reader: SnapshotReader, payload: Payload, expected: Snapshot
) -> tuple[str, str, dict[str, Any]]:
    restore = ["RESTORE", payload.key, str(payload.expire_at_ms), payload.data, "REPLACE"]
    if payload.expire_at_ms:
        restore.append("ABSTTL")
    reply = conn.call(*restore)
    if isinstance(reply, RespError):
        return REFUSED, f"RESTORE refused: {reply.message}", {"error": reply.message}
    if reply != "OK":
        return ERROR, f"RESTORE answered {reply!r}", {}
    try:
        actual = reader.read(payload.key)
    except StepTimeout:
        raise  # no reply in time says nothing about the key; the caller measures again
    except (RuntimeError, OSError) as exc:
        return ERROR, f"restored, but reading it back failed: {exc}", {}
    if actual is None:
        what = ["key missing after RESTORE"]
        return DIFFERENT, "RESTORE said OK but the key is absent", {"differences": what}
    what = compare_key(expected.keys[payload.key], actual)
    if what:
        return DIFFERENT, "restored but different: " + "; ".join(what), {"differences": what}
    return PASS, "restored and identical", {}
