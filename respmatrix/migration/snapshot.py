"""The logical content of a server, and what differs between two of them.

A snapshot maps each key to its type, its TTL and a value read with the type's own commands
(``LRANGE``, ``HGETALL``, ``XINFO``...), so two engines that encode the same data differently
still compare equal, and a difference is said in words ("field TTLs lost", "group g1: pending
2 -> 0"). Reading is pure RESP; comparing (:func:`compare`) is a pure function.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from respmatrix.clients.resp import RespConnection
from respmatrix.replies import RespError

# TTLs are compared as absolute expiry times (read time + PTTL, on this machine's clock), since
# seconds may pass between reading the producer and reading the consumer; the tolerance covers
# the round trips and the engines' own millisecond rounding.
TTL_TOLERANCE_MS = 2_000


@dataclass(frozen=True)
class KeyState:
    """One key as read from a server. ``value`` is a plain JSON-able structure per type."""

    type: str
    ttl_ms: int  # -1: no TTL
    value: Any
    field_ttls: dict[str, int] | None = None  # hashes only, where the server has HPTTL
    read_at_ms: int = 0  # when the TTLs were read (Unix ms), to compare expiry times

    def expires_at(self, ttl_ms: int) -> int | None:
        return None if ttl_ms < 0 else self.read_at_ms + ttl_ms


@dataclass
class Snapshot:
    keys: dict[str, KeyState] = field(default_factory=dict)

    def only(self, names: list[str]) -> Snapshot:
        return Snapshot({k: v for k, v in self.keys.items() if k in names})


def _s(value: Any) -> Any:
    """Bytes that are not UTF-8 as a hex string, so values stay JSON-able and comparable."""
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list):
        return [_s(v) for v in value]
    return value


def _pairs(reply: list[Any]) -> dict[str, Any]:
    return {str(k): v for k, v in zip(reply[::2], reply[1::2], strict=False)}


class SnapshotReader:
    """Reads keys from one server over RESP2."""

    def __init__(self, conn: RespConnection) -> None:
        self.conn = conn
        info = conn.call("COMMAND", "INFO", "HPTTL")
        self.has_field_ttls = isinstance(info, list) and bool(info) and info[0] is not None

    def call(self, *args: Any) -> Any:
        reply = self.conn.call(*args)
        if isinstance(reply, RespError):
            raise RuntimeError(f"{' '.join(map(str, args[:2]))}: {reply}")
        return reply

    def keys(self) -> list[str]:
        cursor, found = "0", set()
        while True:
            cursor, batch = self.call("SCAN", cursor, "COUNT", "1000")
            found.update(str(k) for k in batch)
            if str(cursor) == "0":
                return sorted(found)

    def snapshot(self, names: list[str] | None = None) -> Snapshot:
        """Every key (or only ``names``, where they exist) with its type, TTL and value."""
        snap = Snapshot()
        for key in self.keys() if names is None else names:
            state = self.read(key)
            if state is not None:
                snap.keys[key] = state
        return snap

    def read(self, key: str) -> KeyState | None:
        kind = str(self.call("TYPE", key))
        if kind == "none":
            return None
        reader = _READERS.get(kind)
        value = reader(self, key) if reader else {"unread": f"no reader for type {kind}"}
        if kind == "string" and isinstance(value, str | bytes) and _is_hll(value):
            kind, value = "hyperloglog", {"count": self.call("PFCOUNT", key)}
        field_ttls = None
        if kind == "hash" and self.has_field_ttls:
            fields = sorted(value)
            ttls = self.call("HPTTL", key, "FIELDS", str(len(fields)), *fields) if fields else []
            field_ttls = {f: int(t) for f, t in zip(fields, ttls, strict=True) if int(t) >= 0}
        ttl = int(self.call("PTTL", key))
        return KeyState(kind, ttl, _s(value), field_ttls, int(time.time() * 1000))

    # -- one reader per TYPE answer --------------------------------------------------------
    def _string(self, key: str) -> Any:
        return self.call("GET", key)

    def _list(self, key: str) -> Any:
        return self.call("LRANGE", key, "0", "-1")

    def _hash(self, key: str) -> Any:
        return dict(sorted(_pairs(_s(self.call("HGETALL", key))).items()))

    def _set(self, key: str) -> Any:
        return sorted(map(str, _s(self.call("SMEMBERS", key))))

    def _zset(self, key: str) -> Any:
        return [
            [m, float(s)]
            for m, s in zip(
                *[iter(self.call("ZRANGE", key, "0", "-1", "WITHSCORES"))] * 2, strict=True
            )
        ]

    def _stream(self, key: str) -> Any:
        info = _pairs(self.call("XINFO", "STREAM", key))
        groups = []
        for raw in self.call("XINFO", "GROUPS", key):
            group = _pairs(raw)
            name = str(group["name"])
            pending = self.call("XPENDING", key, name, "-", "+", "1000")
            consumers = {
                str(c["name"]): c["pending"]
                for c in (_pairs(r) for r in self.call("XINFO", "CONSUMERS", key, name))
            }
            groups.append(
                {
                    "name": name,
                    "last-delivered-id": group.get("last-delivered-id"),
                    "entries-read": group.get("entries-read"),
                    "lag": group.get("lag"),
                    "pending": [[p[0], p[1], p[3]] for p in pending],  # id, consumer, deliveries
                    "consumers": consumers,
                }
            )
        return {
            "entries": _s(self.call("XRANGE", key, "-", "+")),
            "length": info.get("length"),
            "last-generated-id": info.get("last-generated-id"),
            "max-deleted-entry-id": info.get("max-deleted-entry-id"),
            "entries-added": info.get("entries-added"),
            "groups": sorted(groups, key=lambda g: g["name"]),
        }

    def _json(self, key: str) -> Any:
        import json

        return json.loads(self.call("JSON.GET", key, "$"))

    def _bloom(self, key: str) -> Any:
        return _pairs(self.call("BF.INFO", key))

    def _timeseries(self, key: str) -> Any:
        return [[t, str(v)] for t, v in self.call("TS.RANGE", key, "-", "+")]

    def _vectorset(self, key: str) -> Any:
        count = int(self.call("VCARD", key))
        members = sorted(map(str, self.call("VRANDMEMBER", key, str(count)) or []))
        return {m: [round(float(x), 3) for x in self.call("VEMB", key, m)] for m in members}

    def _graph(self, key: str) -> Any:
        reply = self.call("GRAPH.RO_QUERY", key, "MATCH (n) RETURN n.n ORDER BY n.n")
        return _s(reply[1]) if isinstance(reply, list) and len(reply) > 1 else reply


_READERS = {
    "string": SnapshotReader._string,
    "list": SnapshotReader._list,
    "hash": SnapshotReader._hash,
    "set": SnapshotReader._set,
    "zset": SnapshotReader._zset,
    "stream": SnapshotReader._stream,
    "ReJSON-RL": SnapshotReader._json,
    "MBbloom--": SnapshotReader._bloom,
    "TSDB-TYPE": SnapshotReader._timeseries,
    "vectorset": SnapshotReader._vectorset,
    "graphdata": SnapshotReader._graph,
}


def _is_hll(value: str | bytes) -> bool:
    raw = value.encode(errors="surrogateescape") if isinstance(value, str) else value
    return raw[:4] == b"HYLL"


# -- comparing -----------------------------------------------------------------------------------


def _ttl_close(a: int | None, b: int | None, tolerance_ms: int) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= tolerance_ms


def _ttl_text(ttl: int) -> str:
    return "none" if ttl < 0 else f"{ttl / 1000:.0f}s"


def compare_key(
    expected: KeyState, actual: KeyState, tolerance_ms: int = TTL_TOLERANCE_MS
) -> list[str]:
    """How ``actual`` differs from ``expected``, in words; empty when logically identical."""
    if expected.type != actual.type:
        return [f"type {expected.type} -> {actual.type}"]
    out = []
    if expected.value != actual.value:
        out.append(_value_difference(expected.type, expected.value, actual.value))
    a, b = expected.expires_at(expected.ttl_ms), actual.expires_at(actual.ttl_ms)
    if not _ttl_close(a, b, tolerance_ms):
        out.append(f"TTL {_expiry_change(a, b, expected.ttl_ms, actual.ttl_ms)}")
    out += _field_ttl_difference(expected, actual, tolerance_ms)
    return out


def _expiry_change(a: int | None, b: int | None, ttl_a: int, ttl_b: int) -> str:
    if a is None or b is None:
        return f"{_ttl_text(ttl_a)} -> {_ttl_text(ttl_b)}"
    return f"expiry moved by {(b - a) / 1000:+.0f}s"


def _field_ttl_difference(expected: KeyState, actual: KeyState, tolerance_ms: int) -> list[str]:
    want, got = expected.field_ttls, actual.field_ttls
    if not want:
        return [] if not got else [f"field TTLs appeared on {', '.join(sorted(got))}"]
    if got is None:
        return [f"field TTLs cannot be read (no HPTTL) for {', '.join(sorted(want))}"]
    lost = sorted(set(want) - set(got))
    if lost:
        return [f"field TTLs lost on {', '.join(lost)}"]
    out = []
    for name in sorted(want):
        a, b = expected.expires_at(want[name]), actual.expires_at(got[name])
        if not _ttl_close(a, b, tolerance_ms):
            out.append(f"field TTL of {name}: {_expiry_change(a, b, want[name], got[name])}")
    extra = sorted(set(got) - set(want))
    if extra:
        out.append(f"field TTLs appeared on {', '.join(extra)}")
    return out


def _value_difference(kind: str, expected: Any, actual: Any) -> str:
    if isinstance(expected, dict) and isinstance(actual, dict):
        changed = sorted(k for k in {*expected, *actual} if expected.get(k) != actual.get(k))
        parts = []
        for name in changed[:3]:
            if kind == "stream" and name == "groups":
                parts.append(_groups_difference(expected["groups"], actual["groups"]))
            else:
                parts.append(f"{name}: {_short(expected.get(name))} -> {_short(actual.get(name))}")
        more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
        return f"{kind} value differs: " + "; ".join(parts) + more
    if isinstance(expected, list) and isinstance(actual, list):
        return f"{kind} value differs: {len(expected)} -> {len(actual)} elements" + (
            "" if len(expected) != len(actual) else ", same count, other contents"
        )
    return f"{kind} value differs: {_short(expected)} -> {_short(actual)}"


def _groups_difference(expected: list[dict], actual: list[dict]) -> str:
    by_name = {g["name"]: g for g in actual}
    for group in expected:
        other = by_name.get(group["name"])
        if other is None:
            return f"group {group['name']} lost"
        for name in group:
            if group[name] != other.get(name):
                was, now = _short(group[name]), _short(other.get(name))
                return f"group {group['name']} {name}: {was} -> {now}"
    return f"groups {[g['name'] for g in expected]} -> {[g['name'] for g in actual]}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class SnapshotDiff:
    """Per key: missing on the consumer, unexpected there, or present and different."""

    missing: list[str]
    extra: list[str]
    changed: dict[str, list[str]]

    @property
    def identical(self) -> bool:
        return not (self.missing or self.extra or self.changed)

    def summary(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"missing {', '.join(self.missing)}")
        if self.extra:
            parts.append(f"unexpected {', '.join(self.extra)}")
        parts += [f"{key}: {'; '.join(what)}" for key, what in self.changed.items()]
        return " | ".join(parts) or "identical"


def compare(
    expected: Snapshot, actual: Snapshot, tolerance_ms: int = TTL_TOLERANCE_MS
) -> SnapshotDiff:
    """What ``actual`` lacks, adds, or holds differently compared with ``expected``."""
    changed = {}
    for key in sorted(set(expected.keys) & set(actual.keys)):
        what = compare_key(expected.keys[key], actual.keys[key], tolerance_ms)
        if what:
            changed[key] = what
    return SnapshotDiff(
        sorted(set(expected.keys) - set(actual.keys)),
        sorted(set(actual.keys) - set(expected.keys)),
        changed,
    )
