"""Command scripts as redis-cli / valkey-cli read them: one command per line, quoted as needed.

The quoting follows the CLIs' own argument splitter (``sdssplitargs``): a bare word is any run of
non-blank characters without quotes; anything else goes in double quotes with ``\\xHH`` for bytes
that are not printable ASCII, so binary and unicode values survive a copy and paste.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

_BARE = re.compile(rb"[A-Za-z0-9_.:{}+*$@/=<>!?,;^%&~|()\[\]#-]+")
_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\n"): "\\n", ord("\r"): "\\r",
            ord("\t"): "\\t", 7: "\\a", 8: "\\b"}  # fmt: skip


def as_bytes(arg: Any) -> bytes:
    """The bytes a RESP client sends for one argument (as :func:`encode_command` does)."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, str):
        return arg.encode()
    if isinstance(arg, int | float) and not isinstance(arg, bool):
        return repr(arg).encode()
    raise TypeError(f"cannot send {type(arg).__name__} as a RESP argument")


def quote_arg(arg: Any) -> str:
    """One argument as the CLI must be given it."""
    data = as_bytes(arg)
    if _BARE.fullmatch(data):
        return data.decode()
    out = []
    for byte in data:
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def format_command(args: Sequence[Any]) -> str:
    return " ".join(quote_arg(a) for a in args)


def format_script(commands: Iterable[Sequence[Any]]) -> str:
    return "".join(format_command(c) + "\n" for c in commands)


class ScriptSyntaxError(ValueError):
    """A script line the CLI could not split (an unbalanced quote)."""


_UNESCAPE = {"n": b"\n", "r": b"\r", "t": b"\t", "b": b"\b", "a": b"\a"}


def split_line(line: str) -> list[bytes]:
    """Split one script line into arguments the way redis-cli does (``sdssplitargs``)."""
    data = line.encode()
    args: list[bytes] = []
    i, n = 0, len(data)
    while True:
        while i < n and data[i : i + 1].isspace():
            i += 1
        if i >= n:
            return args
        current = bytearray()
        in_double = in_single = False
        while True:
            if i >= n:
                if in_double or in_single:
                    raise ScriptSyntaxError(f"unbalanced quotes in {line!r}")
                break
            c = data[i : i + 1]
            if in_double:
                if c == b"\\" and data[i + 1 : i + 2] == b"x" and _is_hex(data[i + 2 : i + 4]):
                    current.append(int(data[i + 2 : i + 4], 16))
                    i += 3
                elif c == b"\\" and i + 1 < n:
                    nxt = data[i + 1 : i + 2].decode()
                    current += _UNESCAPE.get(nxt, nxt.encode())
                    i += 1
                elif c == b'"':
                    if i + 1 < n and not data[i + 1 : i + 2].isspace():
                        raise ScriptSyntaxError(
                            f"closing quote must be followed by a space: {line!r}"
                        )
                    in_double = False
                    i += 1
                    break
                else:
                    current += c
            elif in_single:
                if c == b"\\" and data[i + 1 : i + 2] == b"'":
                    current += b"'"
                    i += 1
                elif c == b"'":
                    if i + 1 < n and not data[i + 1 : i + 2].isspace():
                        raise ScriptSyntaxError(
                            f"closing quote must be followed by a space: {line!r}"
                        )
                    in_single = False
                    i += 1
                    break
                else:
                    current += c
            elif c.isspace():
                break
            elif c == b'"':
                in_double = True
            elif c == b"'":
                in_single = True
            else:
                current += c
            i += 1
        args.append(bytes(current))


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(ch in b"0123456789abcdefABCDEF" for ch in pair)


def parse_script(text: str) -> list[list[bytes]]:
    """The commands of a script (blank lines skipped)."""
    return [args for line in text.splitlines() if (args := split_line(line))]
