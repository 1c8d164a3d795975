"""Reply comparison: strict types, unordered sets, error codes dropped by client libraries."""

from __future__ import annotations

from respmatrix.cases import Expectation
from respmatrix.expectations import mismatch, same
from respmatrix.replies import RespError, SetReply


def test_strict_types() -> None:
    assert same(1, 1)
    assert not same(1, True)
    assert not same(1, 1.0)
    assert not same("1", 1)
    assert same(1.5, 1.5)
    assert same({"a": [1, "x"]}, {"a": [1, "x"]})
    assert not same({"a": 1}, {"a": 1, "b": 2})


def test_order_matters_unless_unordered_or_a_set() -> None:
    assert not same(["a", "b"], ["b", "a"])
    assert same(["a", "b"], ["b", "a"], unordered=True)
    assert same(["a", "b"], SetReply(["b", "a"]))
    assert not same(["a", "a"], SetReply(["a", "b"]))


def test_error_expectations() -> None:
    exact = Expectation("error", "ERR syntax error")
    assert mismatch(exact, RespError("ERR syntax error")) is None
    # redis-py strips "ERR "; the adapter marks that and the comparison allows for it
    assert mismatch(exact, RespError("syntax error", code_dropped=True)) is None
    assert mismatch(exact, RespError("syntax error")) is not None
    assert mismatch(exact, "OK") == 'expected an error reply, got "OK"'
    regex = Expectation("error_match", "^WRONGTYPE")
    assert mismatch(regex, RespError("WRONGTYPE Operation against a key")) is None
    assert mismatch(Expectation("value", "OK"), RespError("ERR x")) is not None


def test_range_and_match() -> None:
    assert mismatch(Expectation("range", [1, 10]), 5) is None
    assert mismatch(Expectation("range", [1, 10]), 11) is not None
    assert mismatch(Expectation("range", [1, 10]), True) is not None
    assert (
        mismatch(Expectation("range", [{"unix": -5}, {"unix": 5}]), __import__("time").time())
        is None
    )
    assert mismatch(Expectation("match", r"\d+"), "123") is None
    assert mismatch(Expectation("match", r"\d+"), "12a") is not None
    assert mismatch(Expectation("type", "integer"), 3) is None
    assert mismatch(Expectation("type", "integer"), True) is not None


def test_match_tag_inside_values(tmp_path) -> None:
    from respmatrix.cases import load_case

    (tmp_path / "geo").mkdir()
    path = tmp_path / "geo" / "pos.yaml"
    path.write_text(
        "claim: coordinates come back close to what was stored\n"
        "features: [geopos]\n"
        "steps:\n"
        "  - send: [GEOPOS, k, m]\n"
        "    expect: [[!match '^13\\.36138[0-9]*$', '38.11']]\n"
    )
    case = load_case(path, tmp_path)
    expectation = case.steps[0].expectation(2)
    assert mismatch(expectation, [["13.361389338970184", "38.11"]]) is None
    assert mismatch(expectation, [["13.36", "38.11"]]) is not None
    assert "match" in mismatch(expectation, [[1, "38.11"]])


def test_unordered_tags_inside_values(tmp_path) -> None:
    from respmatrix.cases import load_case

    (tmp_path / "z").mkdir()
    path = tmp_path / "z" / "scan.yaml"
    path.write_text(
        "claim: a ZSCAN page holds every member once with its score\n"
        "features: [zscan]\n"
        "steps:\n"
        "  - send: [ZSCAN, k, 0]\n"
        "    expect: ['0', !unordered_pairs [a, '1', b, '2']]\n"
        "  - send: [XINFO, CONSUMERS, s, g]\n"
        "    expect: [[name, c, idle, !range [0, 1000],\n"
        "              seen-time, !range [{unix_ms: -60000}, {unix_ms: 1000}]]]\n"
        "  - send: [SCAN, 0]\n"
        "    expect: ['0', !unordered [k, k2]]\n"
    )
    case = load_case(path, tmp_path)
    pairs, consumers, keys = (step.expectation(2) for step in case.steps)
    now_ms = int(__import__("time").time() * 1000)
    assert mismatch(consumers, [["name", "c", "idle", 5, "seen-time", now_ms]]) is None
    assert mismatch(consumers, [["name", "c", "idle", 5000, "seen-time", now_ms]]) is not None
    assert mismatch(consumers, [["name", "c", "idle", "5", "seen-time", now_ms]]) is not None
    assert mismatch(pairs, ["0", ["b", "2", "a", "1"]]) is None
    assert mismatch(pairs, ["0", ["b", "1", "a", "2"]]) is not None  # pairs must stay pairs
    assert mismatch(keys, ["0", ["k2", "k"]]) is None
    assert mismatch(keys, ["0", ["k2", "k2"]]) is not None
