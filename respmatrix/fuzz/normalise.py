"""Replies made comparable across engines, and nothing more.

Only what the engines are free to differ on is normalised: the order of unordered collections
(sets, hash fields, KEYS, SCAN pages), SCAN cursors, the text of floating-point replies (RESP2
sends a double as text and each engine prints it its own way; the value is what counts), the
results of random commands (their shape is kept), and timings (TTLs and idle times keep only
their sign). Everything else, error messages included, is compared exactly.

The result is plain JSON (so it can be stored in the results file): strings, integers, lists,
``None``, ``True``/``False`` and one-key objects for the typed values (``{"error": ...}``,
``{"set": [...]}``, ``{"double": ...}``, ``{"hex": ...}``, ``{"map": [...]}``...).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from respmatrix.replies import RespError, SetReply

# Replies whose array order the engines do not define.
UNORDERED = {"SMEMBERS", "SINTER", "SUNION", "SDIFF", "KEYS", "HKEYS", "HVALS", "FUNCTION LIST"}
UNORDERED_PAIRS = {"HGETALL"}
# Random picks: only the shape of the reply is compared.
RANDOM = {"SRANDMEMBER", "HRANDFIELD", "ZRANDMEMBER", "RANDOMKEY"}
SCANS = {"SCAN": 1, "SSCAN": 2, "HSCAN": 2, "ZSCAN": 2}  # command -> index of the cursor
# Replies that carry doubles (as text under RESP2).
FLOATS = {
    "INCRBYFLOAT", "HINCRBYFLOAT", "ZSCORE", "ZMSCORE", "ZINCRBY", "ZADD", "ZRANGE",
    "ZRANGEBYSCORE", "ZREVRANGE", "ZREVRANGEBYSCORE", "ZPOPMIN", "ZPOPMAX", "ZMPOP",
    "ZUNION", "ZINTER", "ZDIFF", "ZSCAN", "ZRANDMEMBER", "GEODIST",
}  # fmt: skip
# Time to live, expiry times, idle times: only the sign (or the special values) are compared.
TIMINGS = {
    "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME", "HTTL", "HPTTL", "HEXPIRETIME",
    "HPEXPIRETIME", "OBJECT IDLETIME",
}  # fmt: skip
TIME_FIELDS = {"idle", "inactive", "seen-time", "active-time"}


def command_name(args: Sequence[Any]) -> str:
    """``SET``, or ``OBJECT ENCODING`` for commands with subcommands."""
    name = _text(args[0]).upper()
    if name in {"OBJECT", "FUNCTION", "SCRIPT", "XINFO", "XGROUP", "CONFIG", "COMMAND"} and (
        len(args) > 1
    ):
        return f"{name} {_text(args[1]).upper()}"
    return name


def _text(arg: Any) -> str:
    if isinstance(arg, bytes):
        return arg.decode(errors="replace")
    return str(arg)


def _has(args: Sequence[Any], word: str) -> bool:
    return any(_text(a).upper() == word for a in args[1:])


def _constant_by(args: Sequence[Any]) -> bool:
    """SORT ... BY <pattern without *>: no sorting, the elements come in the key's order."""
    words = [_text(a).upper() for a in args[2:]]
    return any(w == "BY" and i + 1 < len(words) and "*" not in words[i + 1]
               for i, w in enumerate(words))  # fmt: skip


def normalise(args: Sequence[Any], reply: Any, key_type: str | None = None) -> Any:
    """The comparable form of ``reply`` to the command ``args``; ``key_type`` is the TYPE of
    its key when the order of the reply depends on it (SORT BY nosort), None if unknown."""
    name = command_name(args)
    if isinstance(reply, RespError):
        return plain(reply)
    if name in RANDOM:
        return _shape(reply)
    if name in SCANS:
        return _scan(name, args, reply)
    if name in {"DUMP", "FUNCTION DUMP"} and isinstance(reply, bytes | str):
        return _dump(reply)
    if name == "FUNCTION LIST":
        return _records(plain(reply))
    if name == "SPOP" and _is_array(reply):
        return _unordered(reply)
    # SORT orders equal scores by their bytes, so its order is defined, except without
    # sorting (a BY pattern without *), where a set comes in its hash table's order
    unsorted = name in {"SORT", "SORT_RO"} and _constant_by(args) and key_type in (None, "set")
    if unsorted and _is_array(reply):
        return _unordered(reply)
    if name in UNORDERED and _is_array(reply):
        return _unordered(reply)
    if name in UNORDERED_PAIRS:
        return _pairs(reply)
    if name in TIMINGS:
        return _sign(reply)
    if name == "XPENDING" and isinstance(reply, list) and len(args) > 3:
        return [_xpending_entry(e) for e in reply]
    value = plain(reply, floats=name in FLOATS)
    return _timed_fields(value)


def _is_array(reply: Any) -> bool:
    """A RESP array (a RESP3 set keeps its own type: the two are different reply shapes)."""
    return isinstance(reply, list) and not isinstance(reply, SetReply)


def plain(value: Any, floats: bool = False) -> Any:
    """A reply as JSON values, typed where JSON would lose the type."""
    if isinstance(value, RespError):
        return {"error": value.message}
    if isinstance(value, SetReply):
        return {"set": _sorted([plain(v, floats) for v in value])}
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return {"double": _double(value)}
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, str):
        if floats:
            parsed = _parse_double(value)
            if parsed is not None:
                return {"double": _double(parsed)}
        return value
    if isinstance(value, dict):
        return {"map": _sorted([[plain(k, floats), plain(v, floats)] for k, v in value.items()])}
    if isinstance(value, list):
        return [plain(v, floats) for v in value]
    return repr(value)


def _double(value: float) -> str:
    return "nan" if math.isnan(value) else repr(value)


def _parse_double(text: str) -> float | None:
    if not text or text != text.strip() or text.lower().startswith(("0x", "-0x", "+0x")):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _sorted(items: list[Any]) -> list[Any]:
    return sorted(items, key=_key)


def _unordered(items: list[Any]) -> dict[str, Any]:
    return {"unordered": _sorted([plain(v) for v in items])}


def _pairs(reply: Any) -> Any:
    if (
        isinstance(reply, list)
        and len(reply) % 2 == 0
        and all(not isinstance(v, list) for v in reply)
    ):
        pairs = [[plain(reply[i]), plain(reply[i + 1])] for i in range(0, len(reply), 2)]
        return {"unordered_pairs": _sorted(pairs)}
    return plain(reply)


def _shape(reply: Any) -> Any:
    if isinstance(reply, SetReply):
        return {"random_set": len(reply)}
    if isinstance(reply, list):
        return {"random_array": len(reply)}
    if isinstance(reply, str | bytes):
        return {"random": "string"}
    return plain(reply)


def _sign(reply: Any) -> Any:
    if isinstance(reply, list):
        return [_sign(v) for v in reply]
    if isinstance(reply, int) and not isinstance(reply, bool) and reply > 0:
        return "positive"
    return plain(reply)


def _scan(name: str, args: Sequence[Any], reply: Any) -> Any:
    if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list)):
        return plain(reply)
    cursor, items = reply
    if _text(args[SCANS[name]]) != "0":
        # a walk that starts mid-table sees whatever the hash layout puts after that cursor
        return {"scan_page_from_cursor": True}
    cursor_shape = "0" if cursor == "0" else "non-zero"
    paired = (name == "HSCAN" and not _has(args, "NOVALUES")) or (
        name == "ZSCAN" and not _has(args, "NOSCORES")
    )
    if paired and len(items) % 2 == 0:
        pairs = {
            _key(p): p
            for p in (
                [plain(items[i]), plain(items[i + 1], floats=name == "ZSCAN")]
                for i in range(0, len(items), 2)
            )
        }
        return [cursor_shape, {"unordered_pairs": _sorted(list(pairs.values()))}]
    unique = {_key(plain(v)): plain(v) for v in items}
    return [cursor_shape, {"unordered": _sorted(list(unique.values()))}]


# RDB types whose payload lists elements in hash-table order (set, hash, hashes with field TTLs).
_HASHED_RDB_TYPES = {2, 4} | set(range(22, 32))


def _dump(reply: bytes | str) -> Any:
    """A DUMP payload: exact, except that a hash table's element order (seeded per process)
    is not compared; its RDB type, version and size still are."""
    data = reply.encode() if isinstance(reply, str) else reply
    if len(data) >= 11 and data[0] in _HASHED_RDB_TYPES:
        version = int.from_bytes(data[-10:-8], "little")
        return {"dump": {"rdb_type": data[0], "rdb_version": version, "bytes": len(data)}}
    return plain(reply)


def _records(value: Any) -> Any:
    """FUNCTION LIST: libraries and their functions live in dictionaries (no defined order)."""
    if isinstance(value, list):
        items = [_records(v) for v in value]
        if items and all(isinstance(v, list | dict) for v in items):
            return _sorted(items)
        return items
    if isinstance(value, dict) and "map" in value:
        return {"map": [[k, _records(v)] for k, v in value["map"]]}
    return value


def _xpending_entry(entry: Any) -> Any:
    if isinstance(entry, list) and len(entry) == 4 and isinstance(entry[2], int):
        return [plain(entry[0]), plain(entry[1]), _sign(entry[2]), plain(entry[3])]
    return plain(entry)


def _timed_fields(value: Any) -> Any:
    """Idle and inactive times inside XINFO-style replies keep only their sign."""
    if isinstance(value, dict) and "map" in value and len(value) == 1:
        return {
            "map": [
                [k, _sign(v) if k in TIME_FIELDS else _timed_fields(v)] for k, v in value["map"]
            ]
        }
    if isinstance(value, list):
        out = []
        for i, item in enumerate(value):
            previous = value[i - 1] if i % 2 == 1 else None
            if isinstance(previous, str) and previous in TIME_FIELDS and isinstance(item, int):
                out.append(_sign(item))
            else:
                out.append(_timed_fields(item))
        return out
    return value
