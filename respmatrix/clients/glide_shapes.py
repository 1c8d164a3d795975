"""What GLIDE hands back for a reply, computed from the reply the protocol carries.

GLIDE converts replies by command name, even through ``custom_command`` and in RESP2 as in RESP3
(glide-core ``value_conversion.rs``, ``expected_type_for_cmd``): EXPIRE answers a boolean, ZSCORE a
double, HGETALL a map, ZRANGE ... WITHSCORES a member -> score map, XRANGE a map of entry id ->
field/value pairs, and so on. :func:`through_glide` applies the same conversions to a plain reply
(a case's expected value, or the raw client's reply), so a runner can compare GLIDE's reply with
what the case expects on the wire. Each rule was checked against GLIDE 2.6's own replies over the
ten data families (see tests/test_glide_client.py).

The result is :data:`UNCHANGED` when GLIDE leaves the command's reply alone, and
:data:`INEXPRESSIBLE` when the expected value cannot be converted (a ``!match`` pattern where GLIDE
makes a map key or a float).
"""

from __future__ import annotations

from typing import Any

from respmatrix.replies import RespError

UNCHANGED = object()
INEXPRESSIBLE = object()

_BOOLEAN = {"COPY", "DELIFEQ", "EXPIRE", "EXPIREAT", "HEXISTS", "HSETNX", "MOVE", "MSETNX"}
_BOOLEAN |= {"PERSIST", "PEXPIRE", "PEXPIREAT", "PFADD", "RENAMENX", "SISMEMBER", "SMOVE"}
_BOOLEAN |= {"XGROUP DESTROY", "XGROUP CREATECONSUMER"}
_BOOLEANS = {"SMISMEMBER", "SCRIPT EXISTS", "JSON.TOGGLE"}
_DOUBLE = {"INCRBYFLOAT", "HINCRBYFLOAT", "ZINCRBY", "ZSCORE", "GEODIST"}
_MAP = {"HGETALL", "CONFIG GET", "HELLO", "MEMORY STATS", "XINFO STREAM", "PUBSUB NUMSUB"}
_MAP |= {"PUBSUB SHARDNUMSUB"}
_SCORED = {"ZRANGE", "ZUNION", "ZINTER", "ZDIFF"}  # with WITHSCORES


class _Inexpressible(Exception):
    pass


def through_glide(args: tuple[Any, ...] | list[Any], value: Any) -> Any:
    """``value`` (a plain reply to the command ``args``) as GLIDE returns it."""
    words = [_word(a) for a in args]
    if not words:
        return UNCHANGED
    name = words[0]
    full = f"{name} {words[1]}" if len(words) > 1 else name
    if isinstance(value, RespError) or value == "QUEUED":
        return UNCHANGED  # GLIDE passes error replies and a queued command's QUEUED through
    if isinstance(value, str | bytes) and not _takes_text(name, words):
        return UNCHANGED  # only the double rules convert a string
    try:
        return _convert(name, full, words, value)
    except (_Inexpressible, IndexError, KeyError, TypeError, ValueError):
        return INEXPRESSIBLE


def _takes_text(name: str, words: list[str]) -> bool:
    return name in _DOUBLE or (name == "ZADD" and "INCR" in words[2:])


def _convert(name: str, full: str, words: list[str], value: Any) -> Any:
    if value is None:
        return UNCHANGED
    if name in _BOOLEAN or full in _BOOLEAN:
        return _boolean(value)
    if name in _BOOLEANS or full in _BOOLEANS:
        return [_boolean(v) for v in value]
    if name in _DOUBLE or (name == "ZADD" and "INCR" in words[2:]):
        return _double(value)
    if name == "ZMSCORE":
        return [None if v is None else _double(v) for v in value]
    if name in _MAP or full in _MAP or (name == "LCS" and "IDX" in words):
        return _map(value)
    if full in ("XINFO GROUPS", "XINFO CONSUMERS"):
        return [_map(v) for v in value]
    if (name in _SCORED and "WITHSCORES" in words) or name in ("ZPOPMIN", "ZPOPMAX"):
        return _score_map(value)
    if name in ("ZMPOP", "BZMPOP"):
        return [value[0], _score_map(value[1])]
    if name in ("LMPOP", "BLMPOP"):
        return {_key(value[0]): value[1]}
    if name in ("ZRANK", "ZREVRANK") and "WITHSCORE" in words:
        return [value[0], _double(value[1])]
    if name in ("BZPOPMIN", "BZPOPMAX"):
        return [value[0], value[1], _double(value[2])]
    if name == "HRANDFIELD" and "WITHVALUES" in words:
        return _pairs(value)
    if name == "ZRANDMEMBER" and "WITHSCORES" in words:
        return [[m, _double(s)] for m, s in _pairs(value)]
    if name in ("XRANGE", "XREVRANGE"):
        return _entries(value)
    if name in ("XREAD", "XREADGROUP"):
        streams = value.items() if isinstance(value, dict) else value
        return {_key(stream): _entries(entries) for stream, entries in streams}
    if name == "XCLAIM" and "JUSTID" not in words:
        return _entries(value)
    if name == "XAUTOCLAIM" and "JUSTID" not in words:
        return [value[0], _entries(value[1]), *value[2:]]
    if full == "FUNCTION LIST" and isinstance(value, list):
        return [_library(lib) for lib in value]
    if name == "GEOPOS":
        return [None if p is None else [_double(p[0]), _double(p[1])] for p in value]
    if name == "GEOSEARCH" and {"WITHDIST", "WITHHASH", "WITHCOORD"} & set(words):
        return [_geo_item(item, words) for item in value]
    return UNCHANGED


def _word(arg: Any) -> str:
    if isinstance(arg, bytes):
        return arg.decode(errors="replace").upper()
    return str(arg).upper()


def _boolean(value: Any) -> Any:
    return bool(value) if type(value) is int else value


def _double(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise _Inexpressible from None
    if type(value) is int:
        return float(value)
    if isinstance(value, float) or value is None:
        return value
    raise _Inexpressible  # a pattern where GLIDE makes a float


def _key(value: Any) -> Any:
    if isinstance(value, str | bytes | int | float):
        return value
    raise _Inexpressible  # a pattern cannot be a map key


def _pairs(value: Any) -> list[list[Any]]:
    if value and all(isinstance(v, list) for v in value):
        return [list(v) for v in value]  # RESP3: already pairs
    return [[value[i], value[i + 1]] for i in range(0, len(value), 2)]


def _map(value: Any) -> Any:
    if isinstance(value, dict):
        return value
    return {_key(k): v for k, v in _pairs(value)}


def _score_map(value: Any) -> dict[Any, Any]:
    if value and not isinstance(value[0], list) and len(value) == 2:
        value = [value]  # RESP3 ZPOPMIN without a count: one flat pair
    return {_key(member): _double(score) for member, score in _pairs(value)}


def _entries(value: Any) -> dict[Any, Any]:
    """Stream entries [[id, [f1, v1, ...]], ...] -> {id: [[f1, v1], ...]}."""
    # An entry deleted while pending comes back as [id, nil]: GLIDE keeps the nil.
    return {
        _key(entry_id): None if fields is None else _pairs(fields) for entry_id, fields in value
    }


def _geo_item(item: Any, words: list[str]) -> Any:
    """[name, dist?, hash?, [lon, lat]?] -> [name, [dist?, hash?, [lon, lat]?]]."""
    if not isinstance(item, list):
        return item
    extras, rest = [], list(item[1:])
    if "WITHDIST" in words:
        extras.append(_double(rest.pop(0)))
    if "WITHHASH" in words:
        extras.append(rest.pop(0))
    if "WITHCOORD" in words:
        lon, lat = rest.pop(0)
        extras.append([_double(lon), _double(lat)])
    return [item[0], extras]


def _library(value: Any) -> Any:
    """One FUNCTION LIST library (a flat list in RESP2) -> a map, its functions maps too."""
    library = _map(value)
    functions = library.get("functions")
    if isinstance(functions, list):
        library["functions"] = [_map(f) for f in functions]
    return library
