"""Comparing an observed reply with what a case expects."""

from __future__ import annotations

import json
import math
import re
import time
from typing import Any

from respmatrix.cases import Between, Expectation, Pattern, Unordered, UnorderedPairs
from respmatrix.replies import ClientFailure, PushReply, RespError, SetReply

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "bytes": (bytes,),
    "integer": (int,),
    "float": (float,),
    "array": (list,),
    "set": (SetReply,),  # a RESP3 set, as opposed to an array
    "collection": (list,),  # an array or a set: e.g. SPOP with a count, whose reply type
    # is an array in RESP2 and a set in RESP3 (where the client keeps the difference)
    "map": (dict,),
    "null": (type(None),),
}


def resolve_time(token: Any) -> Any:
    """``{unix: N}`` / ``{unix_ms: N}`` become a Unix time N seconds / ms from now."""
    if isinstance(token, dict):
        if "unix" in token:
            return int(time.time()) + int(token["unix"])
        if "unix_ms" in token:
            return int(time.time() * 1000) + int(token["unix_ms"])
    return token


def mismatch(expected: Expectation, observed: Any) -> str | None:
    """Return why ``observed`` does not meet ``expected``, or None when it does."""
    kind, want = expected.kind, expected.value
    if kind == "client_error":
        if isinstance(observed, ClientFailure) and re.search(want, str(observed)):
            return None
        return f"expected the client to fail with {want!r}, got {describe(observed)}"
    if isinstance(observed, ClientFailure):
        return f"expected {_expected_text(expected)}, but the client failed: {observed}"
    if kind == "error" or kind == "error_match":
        if not isinstance(observed, RespError):
            return f"expected an error reply, got {describe(observed)}"
        texts = [observed.message]
        if observed.code_dropped:
            texts.append(f"ERR {observed.message}")
        ok = want in texts if kind == "error" else any(re.search(want, t) for t in texts)
        return None if ok else f"expected error {want!r}, got error {observed.message!r}"
    if isinstance(observed, RespError):
        return f"expected {_expected_text(expected)}, got error {observed.message!r}"
    if kind == "range":
        low, high = (resolve_time(b) for b in want)
        number = observed
        if isinstance(observed, str):
            try:
                number = float(observed)
            except ValueError:
                return f"expected a number in [{low}, {high}], got {describe(observed)}"
        if isinstance(number, bool) or not isinstance(number, int | float):
            return f"expected a number in [{low}, {high}], got {describe(observed)}"
        return None if low <= number <= high else f"expected [{low}, {high}], got {number}"
    if kind == "match":
        if isinstance(observed, str) and re.fullmatch(want, observed, re.DOTALL):
            return None
        return f"expected a string matching {want!r}, got {describe(observed)}"
    if kind == "type":
        ok = isinstance(observed, _TYPES[want]) and not isinstance(observed, bool)
        if want == "array":
            ok = type(observed) is list  # a SetReply or PushReply is not an array
        return None if ok else f"expected a reply of type {want}, got {describe(observed)}"
    if same(want, observed, expected.unordered):
        return None
    return f"expected {describe(want)}, got {describe(observed)}"


def _expected_text(expected: Expectation) -> str:
    return (
        describe(expected.value)
        if expected.kind == "value"
        else f"{expected.kind} {expected.value!r}"
    )


def same(want: Any, got: Any, unordered: bool = False) -> bool:
    """Deep equality with strict types (1 is not True, 1 is not 1.0), sets without order."""
    if isinstance(want, Pattern):
        return isinstance(got, str) and re.fullmatch(want.regex, got, re.DOTALL) is not None
    if isinstance(want, Between):
        if isinstance(got, bool) or not isinstance(got, int | float):
            return False
        return resolve_time(want.low) <= got <= resolve_time(want.high)
    if isinstance(want, bool) or isinstance(got, bool):
        return type(want) is type(got) and want == got
    if isinstance(want, float) or isinstance(got, float):
        if not (isinstance(want, float) and isinstance(got, float)):
            return False
        return want == got or (math.isnan(want) and math.isnan(got))
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and want.keys() == got.keys()
            and all(same(want[k], got[k], unordered) for k in want)
        )
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return False
        if isinstance(want, UnorderedPairs):
            return len(want) % 2 == 0 and _multiset_equal(_pairs(want), _pairs(got))
        if isinstance(want, Unordered):
            return _multiset_equal(list(want), list(got))
        if unordered or isinstance(got, SetReply):
            return sorted(map(_canonical, want)) == sorted(map(_canonical, got))
        return all(same(w, g, unordered) for w, g in zip(want, got, strict=True))
    return type(want) is type(got) and want == got


def _pairs(items: list[Any]) -> list[list[Any]]:
    return [list(items[i : i + 2]) for i in range(0, len(items), 2)]


def _multiset_equal(want: list[Any], got: list[Any]) -> bool:
    """Match every expected element to a distinct observed one (patterns allowed inside)."""
    left = list(got)
    for item in want:
        for index, candidate in enumerate(left):
            if same(item, candidate):
                del left[index]
                break
        else:
            return False
    return not left


def _canonical(value: Any) -> str:
    return json.dumps(jsonable(value), sort_keys=True)


def jsonable(value: Any) -> Any:
    """A JSON-ready rendering of a reply, for results details."""
    if isinstance(value, RespError):
        return {"error": value.message}
    if isinstance(value, ClientFailure):
        return {"client_error": str(value)}
    if isinstance(value, Pattern):
        return {"match": value.regex}
    if isinstance(value, Between):
        return {"range": [jsonable(value.low), jsonable(value.high)]}
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, PushReply):
        return {"push": [jsonable(v) for v in value]}
    if isinstance(value, float) and not math.isfinite(value):
        return {"double": repr(value)}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: jsonable(v) for k, v in value.items()}
        return {"map": [[jsonable(k), jsonable(v)] for k, v in value.items()]}
    return value


def describe(value: Any) -> str:
    text = json.dumps(jsonable(value), ensure_ascii=False)
    return text if len(text) <= 300 else text[:297] + "..."
