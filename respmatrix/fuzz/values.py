"""Argument strategies shared by the machines: values, numbers, times, with their edge cases.

Times to live are never small and positive (a TTL that could run out during a run would make
replies depend on timing): they are 0, negative, in the past, or hours away.
"""

from __future__ import annotations

from hypothesis import strategies as st

EDGE_INTS = [
    "0",
    "1",
    "-1",
    "2",
    "3",
    "10",
    "100",
    "-100",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
]
BAD_NUMBERS = [
    "",
    "abc",
    "1.5",
    " 1",
    "1 ",
    "0x10",
    "+1",
    "01",
    "1e3",
    "-0",
    "inf",
    "nan",
    "1" * 25,
]
FLOATS = [
    "0",
    "1",
    "-1",
    "1.5",
    "0.1",
    "-0.0",
    "inf",
    "-inf",
    "+inf",
    "1e308",
    "1e309",
    "3.0000000000000001",
    "5e-324",
    "0x10",
    " 2",
    "2 ",
    "nan",
    "1e",
    "abc",
    "",
    "17.5",
    "-2.25",
    "1E2",
    ".5",
    "5.",
]
WORDS = [
    "",
    "a",
    "b",
    "c",
    "abc",
    "0",
    "1",
    "-1",
    "10",
    "1.5",
    "foo bar",
    "ñ",
    "日本語",
    "😀",
    "\x00",
    "a\x00b",
    "\r\n",
    "\"q'",
    "\\",
    "*",
    "[a-c]*",
    "?",
    "-",
    "+",
    "(1",
    "[a",
]


def ints() -> st.SearchStrategy[str]:
    return st.one_of(st.integers(-3, 12).map(str), st.sampled_from(EDGE_INTS))


def numbers() -> st.SearchStrategy[str]:
    """Integer arguments, valid or not."""
    return st.one_of(ints(), st.sampled_from(BAD_NUMBERS))


def floats() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(FLOATS), st.integers(-5, 5).map(str))


def values() -> st.SearchStrategy[str | bytes]:
    """Values: text, binary, unicode, numbers, and strings around the embedded-string limits."""
    return st.one_of(
        st.sampled_from(WORDS),
        ints(),
        st.binary(max_size=6),
        st.text(max_size=6),
        st.integers(0, 140).map(lambda n: "x" * n),
    )


def small_count() -> st.SearchStrategy[str]:
    return st.one_of(st.integers(-3, 6).map(str), st.sampled_from(BAD_NUMBERS + EDGE_INTS))


def ttl_seconds() -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            "0",
            "-1",
            "-100",
            "3600",
            "100000",
            "9223372036854775807",
            "9223372036854",
            "70368744177",
            "abc",
            "",
            "1.5",
            "4611686018427387",
        ]
    )


def unix_seconds() -> st.SearchStrategy[str]:
    """Absolute times: long past, far future, out of range."""
    return st.sampled_from(
        [
            "1",
            "0",
            "-1",
            "1000000000",
            "4102444800",
            "9999999999",
            "70368744177664",
            "9223372036854775807",
            "x",
        ]
    )


def fields() -> st.SearchStrategy[str]:
    return st.sampled_from(["f1", "f2", "f3", "", "1", "ñ", "f1"])


def members() -> st.SearchStrategy[str]:
    return st.sampled_from(["a", "b", "c", "d", "1", "2", "10", "-1", "1.5", "", "ñ", "x" * 70])
