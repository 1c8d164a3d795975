"""The representative dataset a producer writes: one key per data type and encoding.

Each key is named after what it holds (``hash-large``, ``intset``...), so a per-key outcome is a
per-type outcome. Keys that need something the producer may lack (hash field TTLs, a module type)
are written only where the producer has it; :func:`capabilities` asks the server, never the
catalog, so a module that failed to load is simply absent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from respmatrix.clients.resp import RespConnection
from respmatrix.replies import RespError

Command = tuple[Any, ...]
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class KeySpec:
    """One key of the dataset: its name (= its type label), what it needs, how it is written."""

    name: str
    writes: Callable[[str], list[Command]]
    needs: str | None = None  # a capability from :func:`capabilities`, None for every engine
    description: str = ""


def _range(prefix: str, n: int, width: int = 0) -> list[str]:
    return [f"{prefix}{i:0{width}d}" for i in range(n)]


def _pairs(n: int, first: str, second: str) -> list[str]:
    """``first``/``second`` formatted with i = 0..n-1, interleaved (field value, score member)."""
    return [x for i in range(n) for x in (first.format(i=i, q=i / 4), second.format(i=i))]


def _stream(key: str) -> list[Command]:
    # Five entries, one deleted; group g1 has read three (two still pending after one ACK),
    # group g2 has read nothing: lag, entries-read and the PEL all have something to carry.
    return [
        ("XADD", key, "1-1", "f", "v1"),
        ("XADD", key, "1-2", "f", "v2"),
        ("XADD", key, "2-0", "f", "v3", "g", "w"),
        ("XADD", key, "3-0", "f", "v4"),
        ("XADD", key, "4-0", "f", "v5"),
        ("XDEL", key, "3-0"),
        ("XGROUP", "CREATE", key, "g1", "0"),
        ("XGROUP", "CREATE", key, "g2", "$"),
        ("XREADGROUP", "GROUP", "g1", "alice", "COUNT", "2", "STREAMS", key, ">"),
        ("XREADGROUP", "GROUP", "g1", "bob", "COUNT", "1", "STREAMS", key, ">"),
        ("XACK", key, "g1", "1-1"),
    ]


# fmt: off
KEYS: tuple[KeySpec, ...] = (
    KeySpec("string", lambda k: [("SET", k, "hello world")], description="short string"),
    KeySpec("string-int", lambda k: [("SET", k, "1234567")], description="int-encoded string"),
    KeySpec("string-raw", lambda k: [("SET", k, "x" * 200)], description="raw-encoded string"),
    KeySpec("string-ttl", lambda k: [("SET", k, "expiring", "PX", str(HOUR_MS))],
            description="string with a key TTL"),
    KeySpec("list", lambda k: [("RPUSH", k, "a", "b", "c", "1", "2")],
            description="small list (listpack)"),
    KeySpec("list-large", lambda k: [("RPUSH", k, *_range("element-" + "y" * 60, 300, 4))],
            description="list of several quicklist nodes"),
    KeySpec("hash", lambda k: [("HSET", k, "f1", "v1", "f2", "v2", "n", "3")],
            description="small hash (listpack)"),
    KeySpec("hash-large", lambda k: [("HSET", k, *_pairs(300, "f{i}", "v{i}"))],
            description="hash table encoded hash"),
    KeySpec("hash-ttl", lambda k: [("HSET", k, "f", "v"), ("PEXPIRE", k, str(HOUR_MS))],
            description="hash with a key TTL"),
    KeySpec("hash-field-ttl",
            lambda k: [("HSET", k, "f1", "v1", "f2", "v2", "keep", "v3"),
                       ("HPEXPIRE", k, str(HOUR_MS), "FIELDS", "2", "f1", "f2")],
            needs="hash-field-ttl", description="hash with field TTLs (HPEXPIRE)"),
    KeySpec("hash-field-ttl-large",
            lambda k: [("HSET", k, *_pairs(300, "f{i}", "v{i}")),
                       ("HPEXPIRE", k, str(HOUR_MS), "FIELDS", "3", "f0", "f1", "f2")],
            needs="hash-field-ttl", description="hash table with field TTLs"),
    KeySpec("set", lambda k: [("SADD", k, "a", "b", "c")], description="small set (listpack)"),
    KeySpec("intset", lambda k: [("SADD", k, "1", "2", "3", "100000")], description="intset"),
    KeySpec("set-large", lambda k: [("SADD", k, *_range("member-", 300))],
            description="hash table encoded set"),
    KeySpec("zset", lambda k: [("ZADD", k, "1", "a", "2.5", "b", "-3", "c")],
            description="small sorted set (listpack)"),
    KeySpec("zset-large", lambda k: [("ZADD", k, *_pairs(200, "{q}", "m{i}"))],
            description="skiplist sorted set"),
    KeySpec("stream", _stream, description="stream with consumer groups and pending entries"),
    KeySpec("hyperloglog", lambda k: [("PFADD", k, *_range("e", 50))],
            description="sparse HyperLogLog"),
    KeySpec("hyperloglog-dense", lambda k: [("PFADD", k, *_range("e", 5000))],
            description="dense HyperLogLog"),
    KeySpec("json", lambda k: [("JSON.SET", k, "$", '{"a":1,"b":[1,2,"x"],"c":{"d":null}}')],
            needs="module:ReJSON", description="RedisJSON document"),
    KeySpec("bloom", lambda k: [("BF.ADD", k, "a"), ("BF.ADD", k, "b")],
            needs="module:bf", description="RedisBloom Bloom filter"),
    KeySpec("timeseries", lambda k: [("TS.ADD", k, "1000", "1.5"), ("TS.ADD", k, "2000", "2.5")],
            needs="module:timeseries", description="RedisTimeSeries series"),
    KeySpec("vectorset",
            lambda k: [("VADD", k, "VALUES", "3", "0.1", "0.2", "0.3", "e1"),
                       ("VADD", k, "VALUES", "3", "0.5", "0.1", "0.9", "e2")],
            needs="module:vectorset", description="vector set (Redis 8 module type)"),
    KeySpec("graph", lambda k: [("GRAPH.QUERY", k, "CREATE (:P {n: 1})-[:K]->(:P {n: 2})")],
            needs="module:graph", description="FalkorDB graph"),
)
# fmt: on

KEY_NAMES = tuple(spec.name for spec in KEYS)


def capabilities(conn: RespConnection) -> set[str]:
    """What this server can hold beyond the basics: field TTLs, loaded module types."""
    found = set()
    info = conn.call("COMMAND", "INFO", "HPEXPIRE")
    if isinstance(info, list) and info and info[0] is not None:
        found.add("hash-field-ttl")
    modules = conn.call("MODULE", "LIST")
    if isinstance(modules, list):
        for module in modules:
            fields = (
                dict(zip(module[::2], module[1::2], strict=False))
                if isinstance(module, list)
                else module
            )
            if isinstance(fields, dict) and fields.get("name"):
                found.add(f"module:{fields['name']}")
    return found


def applicable(caps: Iterable[str]) -> list[KeySpec]:
    """The keys a server with these capabilities can hold."""
    have = set(caps)
    return [spec for spec in KEYS if spec.needs is None or spec.needs in have]


class DatasetWriteError(RuntimeError):
    """The producer refused a write of the dataset (a bug in the dataset, or a broken engine)."""


def write_dataset(
    conn: RespConnection, prefix: str = "", modules: bool = True, field_ttls: bool = True
) -> list[str]:
    """Write every applicable key (named ``prefix + type``); return the key names written.

    ``modules=False`` leaves out module types: an RDB file or a replication stream is all or
    nothing, and one module key the consumer lacks would hide the answer for every other type.
    ``field_ttls=False`` leaves out the hashes with field TTLs, for the same reason.
    """
    written = []
    for spec in applicable(capabilities(conn)):
        needs = spec.needs or ""
        if (not modules and needs.startswith("module:")) or (
            not field_ttls and needs == "hash-field-ttl"
        ):
            continue
        key = prefix + spec.name
        commands = spec.writes(key)
        for command, reply in zip(commands, conn.pipeline(commands), strict=True):
            if isinstance(reply, RespError):
                raise DatasetWriteError(f"{' '.join(map(str, command[:3]))}: {reply}")
        written.append(key)
    return written


def module_keys(keys: list[str], prefix: str = "") -> list[str]:
    """The keys among ``keys`` that hold a module type."""
    by_name = {spec.name: spec for spec in KEYS}
    return [
        k
        for k in keys
        if (spec := by_name.get(k.removeprefix(prefix)))
        and (spec.needs or "").startswith("module:")
    ]


def field_ttl_keys(keys: list[str], prefix: str = "") -> list[str]:
    """The keys among ``keys`` that hold hashes with field TTLs."""
    by_name = {spec.name: spec for spec in KEYS}
    return [
        k
        for k in keys
        if (spec := by_name.get(k.removeprefix(prefix))) and spec.needs == "hash-field-ttl"
    ]


def key_type(key: str, prefix: str = "") -> str:
    """The type label of a dataset key (its name without the prefix)."""
    return key.removeprefix(prefix)
