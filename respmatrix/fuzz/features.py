"""The features a fuzzed command exercises: the names the divergence registry is keyed by.

Every command has its own name (``hexpire``) and ``<command>-<option>`` for each option word it
carries (``set-ifeq``, ``zscan-noscores``). A few registry features depend on the values rather
than on the words (a negative field TTL, a hexadecimal score, a cursor with a leading space);
``_VALUE_FEATURES`` tags those. The tags only decide which registry entries may explain a
difference; an entry still has to match exactly the engines that answered differently.

Some tags depend on the state of the command's first key: its TYPE, and for a numeric SORT
whether it holds an empty element. The lockstep asks the engines for them before sending the
commands of ``KEY_STATE`` (see :meth:`Lockstep.features`). Inside MULTI the state at EXEC time
is unknown (``None``): every state-dependent tag is then included, and the registry split still
has to match the replies exactly.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from respmatrix.fuzz.commands import LUA, sha1
from respmatrix.fuzz.normalise import command_name

HFE_SET = {"HEXPIRE", "HPEXPIRE", "HEXPIREAT", "HPEXPIREAT"}
HFE_QUERY = {"HTTL", "HPTTL", "HEXPIRETIME", "HPEXPIRETIME", "HPERSIST"}
HFE_ALL = HFE_SET | HFE_QUERY | {"HGETEX", "HSETEX", "HGETDEL"}
ZSET_RANGE = {"ZCOUNT", "ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZREMRANGEBYSCORE", "ZRANGE",
              "ZRANGESTORE"}  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_HEX_FLOAT = re.compile(r"^\s*[+-]?0[xX]")
# Option words given their own feature name in the registry.
_RENAMED = {
    ("XADD", "KEEPREF"): "xadd-reference-policy", ("XADD", "DELREF"): "xadd-reference-policy",
    ("XADD", "ACKED"): "xadd-reference-policy", ("XTRIM", "KEEPREF"): "xtrim-reference-policy",
    ("XTRIM", "DELREF"): "xtrim-reference-policy", ("XTRIM", "ACKED"): "xtrim-reference-policy",
    ("SSCAN", "NOVALUES"): "sscan-novalues",
}  # fmt: skip


def _text(arg: Any) -> str:
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)


def _int(arg: Any) -> int | None:
    try:
        return int(_text(arg))
    except ValueError:
        return None


# Commands whose tags depend on their first key's state: the index of that key in the command.
KEY_STATE = {
    "OBJECT ENCODING": 2, "OBJECT REFCOUNT": 2, "BITCOUNT": 1, "BITPOS": 1, "GETEX": 1,
    "DUMP": 1, "SORT": 1, "SORT_RO": 1, "HPERSIST": 1, "HEXPIRE": 1, "HPEXPIRE": 1,
    "HEXPIREAT": 1, "HPEXPIREAT": 1,
}  # fmt: skip


def _may(key_type: str | None, *types: str) -> bool:
    """Whether the key may be of one of ``types`` (an unknown type may be any)."""
    return key_type is None or key_type in types


def numeric_sort(args: Sequence[Any]) -> bool:
    """A SORT that parses its elements as doubles (no ALPHA, no constant BY pattern)."""
    upper = [_text(a).upper() for a in args[2:]]
    if "ALPHA" in upper:
        return False
    by = upper.index("BY") if "BY" in upper else None
    return by is None or (by + 1 < len(upper) and "*" in upper[by + 1])


def features_of(
    args: Sequence[Any], key_type: str | None = None, empty_element: bool | None = None
) -> set[str]:
    """Feature names of one command. ``key_type`` is the TYPE of its first key and
    ``empty_element`` whether that key holds an empty element (SORT); ``None`` is unknown."""
    name = command_name(args)
    base = name.lower().replace(" ", "-")
    found = {base}
    words = [_text(a) for a in args[1:]]
    for word in words:
        upper = word.upper()
        if word.isupper() and _WORD.fullmatch(word):  # option words; key names are lower case
            found.add(_RENAMED.get((name, upper), f"{base}-{upper.lower()}"))
    for predicate, feature in _VALUE_FEATURES.get(name, ()):
        if predicate(words, key_type):
            found.add(feature)
    if name in ("SORT", "SORT_RO") and numeric_sort(args) and empty_element is not False:
        # ffc (Valkey 9.1) refuses "" as a double where strtod reads 0
        found.add("sort-empty-string-score")
    if name in HFE_ALL:
        found |= _hfe_features(name, words, key_type)
    if name in SCRIPT_CALLS and words:
        body = _SCRIPT_BODIES.get(words[0].lower(), words[0])  # EVALSHA: the body it names
        found |= {f for marker, f in LUA_LIBRARIES.items() if marker in body}
    zset_numbers = ZSET_RANGE | {
        "ZADD",
        "ZINCRBY",
        "ZUNION",
        "ZINTER",
        "ZUNIONSTORE",
        "ZINTERSTORE",
    }
    if name in zset_numbers and any(
        _HEX_FLOAT.match(w) or (w[:1].isspace() and w.strip()) for w in words
    ):
        found |= {"zset-score-hex", "zset-weight-hex", "zset-range-bound-strtod-forms"}
    return found


def _cursor_at(index: int) -> Callable[[list[str], str | None], str]:
    return lambda words, _t: words[index] if len(words) > index else "x"


def _value_features() -> dict[str, list[tuple[Callable[[list[str], str | None], bool], str]]]:
    table: dict[str, list[tuple[Callable[[list[str], str | None], bool], str]]] = {}
    for name, index in (("SCAN", 0), ("SSCAN", 1), ("HSCAN", 1), ("ZSCAN", 1)):
        cursor = _cursor_at(index)
        table[name] = [
            (lambda w, t, c=cursor: c(w, t).startswith("-"), "scan-negative-cursor"),
            (lambda w, t, c=cursor: c(w, t) == "", "scan-empty-cursor"),
            (lambda w, t, c=cursor: c(w, t)[:1].isspace(), "scan-cursor-leading-space"),
        ]
    table["SCAN"].append((lambda w, t: _after(w, "TYPE") not in _TYPES, "scan-type-unknown"))
    string = (lambda _w, t: _may(t, "string"), "string-embstr-limit")
    table["OBJECT ENCODING"] = [
        string,
        (lambda _w, t: _may(t, "string"), "string-embstr-limit-128"),
        (lambda _w, t: _may(t, "hash"), "object-encoding-hash-field-ttl"),
        (lambda _w, t: _may(t, "hash"), "object-encoding-hfe-without-ttl"),
    ]
    table["OBJECT REFCOUNT"] = [
        (lambda _w, t: _may(t, "string"), "object-refcount-shared-integers")
    ]
    # a missing key dumps to nil everywhere: only a payload carries the RDB version
    table["DUMP"] = [(lambda _w, t: t != "none", "dump-payload-format")]
    table["FUNCTION DUMP"] = [(lambda _w, _t: True, "dump-payload-format")]
    # Redis 7.2 looks the key up first: a missing key skips the argument check, another type
    # answers WRONGTYPE (bitmap-missing-key-skips-arg-check)
    other_type = ("list", "set", "zset", "hash", "stream")
    table["BITCOUNT"] = [
        (lambda w, _t: len(w) == 2, "bitcount-start-only"),
        (lambda _w, t: _may(t, "none"), "bitcount-missing-key-arg-check"),
        (lambda _w, t: _may(t, *other_type), "bitcount-wrongtype-arg-check"),
    ]
    table["BITPOS"] = [
        (lambda _w, t: _may(t, "none"), "bitpos-missing-key-arg-check"),
        (lambda _w, t: _may(t, *other_type), "bitpos-wrongtype-arg-check"),
    ]
    table["LREM"] = [(lambda w, _t: len(w) > 1 and _int(w[1]) == -(2**63), "lrem-count-long-min")]
    xread_plus = (lambda w, _t: "+" in w, "xread-last-entry")
    table["XREAD"] = [
        xread_plus,
        (lambda w, _t: "+" in w, "xread-last-entry-after-xdel"),
        (lambda w, _t: "+" in w, "xread-last-entry-empty-stream"),
        (lambda w, _t: len(_after_all(w, "STREAMS")) % 2 == 1, "xread-unbalanced-error"),
    ]
    table["XREADGROUP"] = [
        (lambda w, _t: len(_after_all(w, "STREAMS")) % 2 == 1, "xread-unbalanced-error"),
        (lambda _w, _t: True, "xreadgroup-entries-read-after-trim"),
    ]
    for name in ("XGROUP CREATE", "XGROUP SETID"):
        table[name] = [
            (lambda w, _t: "ENTRIESREAD" in (x.upper() for x in w),
             "xgroup-entriesread-beyond-entries-added"),
        ]  # fmt: skip
    table["XINFO GROUPS"] = [
        (lambda _w, _t: True, "xinfo-lag-cursor-behind-first-entry"),
        (lambda _w, _t: True, "xinfo-lag-tombstones-before-first-entry"),
        (lambda _w, _t: True, "xgroup-entriesread-beyond-entries-added"),
        (lambda _w, _t: True, "xreadgroup-entries-read-after-trim"),
    ]
    table["XINFO STREAM"] = table["XINFO GROUPS"]
    # The fuzzer's own findings, registered by hand: tag them so a rerun explains them.
    table["GETEX"] = [
        (lambda w, t: _may(t, "none") and any(x.upper() in _TIMES for x in w),
         "getex-missing-key-arg-check"),
        # the same check before the lookup, met on a key of another type (Valkey 9.1 answers
        # the argument error, the others WRONGTYPE): no registry entry lists it yet
        (lambda w, t: _may(t, *other_type) and any(x.upper() in _TIMES for x in w),
         "getex-wrongtype-arg-check"),
    ]  # fmt: skip
    table["RESTORE"] = [(lambda w, _t: _rdb_version(w) == 0, "restore-rdb0-payload")]
    # lua-register-function-error is a feature of FUNCTION LOAD's error text: error_features
    table["SET"] = [(lambda w, _t: _set_in_the_past(w), "set-past-expire-stored")]
    return table


def _set_in_the_past(words: list[str]) -> bool:
    """SET with an EXAT/PXAT deadline at or before now (set-past-expire-not-stored). EX/PX
    of 0 or less is refused by every engine, so only absolute times reach the store."""
    upper = [w.upper() for w in words]
    now_ms = time.time() * 1000
    for index, word in enumerate(upper[2:-1], start=2):
        number = _int(words[index + 1]) if word in ("EXAT", "PXAT") else None
        if number is not None and 0 < number * (1000 if word == "EXAT" else 1) <= now_ms:
            return True
    return False


_TIMES = {"EX", "PX", "EXAT", "PXAT"}


def _rdb_version(words: list[str]) -> int | None:
    """The RDB version in a DUMP payload's footer (2 bytes little-endian before the CRC64)."""
    if len(words) < 3 or len(words[2]) < 10:
        return None
    low, high = words[2][-10], words[2][-9]
    return ord(low) | ord(high) << 8 if ord(low) < 256 and ord(high) < 256 else None


_TYPES = {"string", "list", "set", "zset", "hash", "stream", "none", ""}


def _after(words: list[str], token: str) -> str:
    upper = [w.upper() for w in words]
    if token not in upper:
        return ""
    index = upper.index(token)
    return words[index + 1].lower() if index + 1 < len(words) else ""


def _after_all(words: list[str], token: str) -> list[str]:
    upper = [w.upper() for w in words]
    return words[upper.index(token) + 1 :] if token in upper else []


_VALUE_FEATURES = _value_features()


def _hfe_features(name: str, words: list[str], key_type: str | None) -> set[str]:
    """The hash-field-TTL features: error texts and edge behaviours differ by line there."""
    found: set[str] = set()
    upper = [w.upper() for w in words]
    numbers = [_int(w) for w in words[1:]]
    if any(n is not None and n < 0 for n in numbers):
        found.add("hfe-negative-expire")
    if any(n is not None and n >= 2**46 // 1000 for n in numbers):
        found.add("hfe-expire-beyond-redis-limit")
    if "FIELDS" in upper:
        index = upper.index("FIELDS")
        count = _int(words[index + 1]) if index + 1 < len(words) else None
        given = len(words) - index - 2
        if name == "HSETEX":
            given //= 2
        if count is None or count <= 0:
            found.add("hfe-numfields-invalid")
        elif count != given:
            found.add("hfe-numfields-mismatch")
    expected_at = {**dict.fromkeys(HFE_SET, 2), **dict.fromkeys(HFE_QUERY, 1)}.get(name)
    if expected_at is not None:
        position = upper.index("FIELDS") if "FIELDS" in upper else None
        conditions = [w for w in upper[2:] if w in {"NX", "XX", "GT", "LT"}]
        if position is None or position != expected_at + (1 if conditions else 0):
            found.add("hfe-query-fields-token" if name in HFE_QUERY else "hfe-fields-token")
        if len(conditions) > 1:
            found.add("hexpire-condition-combination")
        if name in HFE_SET:
            time = _int(words[1]) if len(words) > 1 else None
            if time is not None and (time <= 0 or name.endswith("AT")):
                found.add("hexpire-past-time-condition")
    if name in {"HGETEX", "HGETDEL"} and "FIELDS" not in upper:
        found.add("hfe-fields-token")
    if name in {"HGETEX", "HSETEX"}:
        lower = name.lower()
        options = [w for w in upper if w in {"EX", "PX", "EXAT", "PXAT", "PERSIST", "KEEPTTL",
                                              "FNX", "FXX", "NX", "XX"}]  # fmt: skip
        if len(options) != len(set(options)):
            found.add(f"{lower}-repeated-option")
        if len(set(options)) > 1:
            found.add(f"{lower}-conflicting-options")
        head = upper[1 : upper.index("FIELDS")] if "FIELDS" in upper else upper[1:]
        known = {"EX", "PX", "EXAT", "PXAT", "PERSIST", "KEEPTTL", "FNX", "FXX", "NX", "XX"}
        if any(w not in known and _int(w) is None for w in head):
            found.add(f"{lower}-unknown-option")
        past = any(n is not None and n <= 0 for n in numbers) or any(
            u in ("EXAT", "PXAT") and i + 1 < len(upper) and _is_past(words[i + 1], u)
            for i, u in enumerate(upper)
        )
        if name == "HSETEX" and past:
            found |= {"hsetex-past-expiry-new-field", "hsetex-past-expiry-new-key"}
    if name == "HPERSIST" and key_type not in ("hash", "none"):
        found.add("hpersist-wrongtype")
    if name in HFE_SET and key_type not in ("hash", "none"):
        found.add("hexpire-wrongtype-arg-check")
    if name == "HGETEX" and "FIELDS" not in upper[1:]:
        found.add("hgetex-missing-fields-arity")
    return found


SCRIPT_CALLS = {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"}
# Script bodies that reach a library whose availability the registry tracks.
LUA_LIBRARIES = {"os.": "lua-os-clock"}


_SCRIPT_BODIES = {sha1(body): body for body in LUA}


def _is_past(value: str, unit: str) -> bool:
    """An absolute EXAT/PXAT time before 2001 (the fuzzer's past times are 0, 1, 1000000000)."""
    number = _int(value)
    return number is not None and number < (10**9 if unit == "EXAT" else 10**12)


# Error features that say what a command refused inside MULTI does to the transaction (Valkey
# aborts it): they carry to the EXEC. The others only describe the text of an error.
TRANSACTION_REFUSALS = {"multi-nested", "watch-inside-multi"}


def error_features(args: Sequence[Any], in_transaction: bool) -> set[str]:
    """Features of an error reply's text, added when every engine answered the step with an
    error: the registry words some messages differently by line (script errors, refusals
    inside MULTI, register_function errors) without the command behaving differently."""
    name = command_name(args)
    found = set()
    if name == "FUNCTION LOAD" and any("register_function" in _text(a) for a in args[2:]):
        found.add("lua-register-function-error")
    if name in SCRIPT_CALLS:
        found |= {"lua-error-format", "lua-noscript-command-error", "noscript-error"}
    if in_transaction:
        found.add("multi-forbidden-command-error")
        if name == "MULTI":
            found.add("multi-nested")
        elif name == "WATCH":
            found.add("watch-inside-multi")
    return found
