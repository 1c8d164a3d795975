"""The two GLIDE client modes (valkey-glide asyncio, valkey-glide-sync) against a real valkey:
every RESP reply type, error replies in their wire text, commands GLIDE cannot express, the
package version, and the guards that keep a run from hanging. About 5 s."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from respmatrix.cases import Pattern
from respmatrix.clients import adapter_class
from respmatrix.clients import glide as glide_module
from respmatrix.clients.base import ClientCannotExpress, Endpoint
from respmatrix.clients.glide import wire_error
from respmatrix.clients.glide_shapes import INEXPRESSIBLE, UNCHANGED, through_glide
from respmatrix.expectations import same
from respmatrix.launcher import EngineProcess
from respmatrix.replies import ClientFailure, RespError, SetReply

MODES = {"valkey-glide": "valkey-glide", "valkey-glide-sync": "valkey-glide-sync"}


@pytest.fixture(params=[(m, p) for m in MODES for p in (2, 3)], ids=lambda v: f"{v[0]}-resp{v[1]}")
def glide(request: pytest.FixtureRequest, running: dict[str, EngineProcess]):
    client_id, protocol = request.param
    process = running["valkey-9.1"]
    adapter = adapter_class(client_id)(Endpoint.single(process.host, process.port), protocol)
    adapter.call("FLUSHALL")
    yield adapter
    adapter.close()


def test_every_reply_type(glide) -> None:
    assert glide.call("SET", "k", "v") == "OK"  # simple string
    assert glide.call("PING") == "PONG"
    assert glide.call("GET", "k") == "v"  # bulk string
    assert glide.call("GET", "missing") is None  # null
    assert glide.call("INCR", "n") == 1  # integer
    assert glide.call("RPUSH", "l", "a", 7) == 2
    assert glide.call("LRANGE", "l", 0, -1) == ["a", "7"]  # array
    dumped = glide.call("DUMP", "k")
    assert isinstance(dumped, bytes) and dumped[:1] == b"\x00"  # not UTF-8: stays bytes
    glide.call("SADD", "s", "x", "y")
    members = glide.call("SMEMBERS", "s")  # a set in RESP3; GLIDE makes it one in RESP2 too
    assert isinstance(members, SetReply) and sorted(members) == ["x", "y"]
    glide.call("ZADD", "z", "1.5", "m")
    assert glide.call("ZSCORE", "z", "m") == 1.5  # a double (GLIDE converts RESP2's text too)
    config = glide.call("CONFIG", "GET", "maxmemory-policy")  # a map (RESP2 converted)
    assert config == {"maxmemory-policy": "noeviction"}
    assert glide.call("EXPIRE", "k", 100) is True  # GLIDE's boolean for EXPIRE, both protocols
    if glide.protocol == 3:
        assert glide.call("DEBUG", "PROTOCOL", "true") is True  # RESP3 boolean
        assert glide.call("DEBUG", "PROTOCOL", "verbatim") == "This is a verbatim\nstring"
        assert glide.call("DEBUG", "PROTOCOL", "double") == 3.141
    # A transaction through the shared connection, one command at a time.
    assert glide.call("MULTI") == "OK"
    assert glide.call("INCR", "n") == "QUEUED"
    assert glide.call("EXEC") == [2]


def test_error_replies_keep_their_wire_text(glide) -> None:
    glide.call("RPUSH", "l", "a")
    assert glide.call("GET", "l") == RespError(
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    )
    unknown = glide.call("NOSUCHCOMMAND")
    assert isinstance(unknown, RespError) and unknown.message.startswith(
        "ERR unknown command 'NOSUCHCOMMAND'"
    )
    assert not unknown.code_dropped
    assert glide.call("EVALSHA", "0" * 40, 0) == RespError("NOSCRIPT No matching script.")
    assert glide.call("PING") == "PONG"  # the connection is still usable


@pytest.mark.parametrize(
    "command",
    [("SUBSCRIBE", "ch"), ("MONITOR",), ("CLIENT", "REPLY", "OFF"), ("QUIT",), ("RESET",)],
    ids=lambda c: " ".join(c),
)
def test_commands_glide_cannot_express(glide, command: tuple[str, ...]) -> None:
    with pytest.raises(ClientCannotExpress):
        glide.call(*command)
    assert glide.call("SET", "k", "v") == "OK"  # nothing was sent: the connection is intact


def test_glide_refusing_a_timeout_is_a_client_failure(glide) -> None:
    failure = glide.call("BLPOP", "k", "-1")
    assert isinstance(failure, ClientFailure)
    assert "Timeout cannot be negative" in failure.message


def test_package_versions_recorded() -> None:
    for client_id, package in MODES.items():
        cls = adapter_class(client_id)
        assert cls.package == package
        assert cls.package_version() == version(package)


def test_two_asyncio_clients_both_answer(running: dict[str, EngineProcess]) -> None:
    """GLIDE's asyncio replies arrive through one pipe read on one loop: two live adapters
    must share it (one loop each made the second adapter wait forever)."""
    process = running["valkey-9.1"]
    endpoint = Endpoint.single(process.host, process.port)
    first = adapter_class("valkey-glide")(endpoint, 2)
    second = adapter_class("valkey-glide")(endpoint, 3)
    try:
        assert second.call("PING") == "PONG"
        assert first.call("PING") == "PONG"
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("client_id", list(MODES))
def test_a_call_that_never_returns_is_cut_off(
    running: dict[str, EngineProcess], monkeypatch: pytest.MonkeyPatch, client_id: str
) -> None:
    """BLPOP k 0 gets no deadline from GLIDE; the adapter's own deadline ends it."""
    monkeypatch.setattr(glide_module, "CALL_DEADLINE_S", 0.5)
    process = running["valkey-9.1"]
    adapter = adapter_class(client_id)(Endpoint.single(process.host, process.port), 3)
    try:
        assert adapter.call("BLPOP", "nokey", "0.1") is None  # a blocking command that ends
        with pytest.raises(TimeoutError, match="no reply to BLPOP"):
            adapter.call("BLPOP", "nokey", 0)
        with pytest.raises(TimeoutError, match="earlier call never returned"):
            adapter.call("PING")
    finally:
        adapter.close()


def test_wire_error_text() -> None:
    signalled = "An error was signalled by the server: - "
    assert wire_error(signalled + "ResponseError: syntax error") == RespError("ERR syntax error")
    assert wire_error(signalled + "PermissionDenied: no") == RespError("NOPERM no")
    assert wire_error(signalled + "ExecAbortError: x") == RespError("EXECABORT x")
    assert wire_error("BUSYKEY: Target key name already exists.") == RespError(
        "BUSYKEY Target key name already exists."
    )
    assert wire_error("timed out") is None


def test_typed_api(glide) -> None:
    expiry = glide.api_value("ExpirySet", [glide.api_value("ExpiryType.SEC", None), 100])
    only_new = glide.api_value("ConditionalChange.ONLY_IF_DOES_NOT_EXIST", None)
    assert glide.invoke("set", ("k", "v"), {"expiry": expiry, "conditional_set": only_new}) == "OK"
    assert glide.invoke("set", ("k", "w"), {"conditional_set": only_new}) is None
    assert glide.invoke("get", ("k",), {}) == "v"
    glide.call("RPUSH", "l", "a")
    assert glide.invoke("get", ("l",), {}) == RespError(
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    )
    missing = glide.invoke("no_such_method", (), {})
    assert isinstance(missing, ClientFailure) and missing.kind == "missing-method"


SHAPE_SETUP = [
    ("SET", "s", "1.5"),
    ("HSET", "h", "a", "1", "b", "2"),
    ("SADD", "st", "x", "y"),
    ("ZADD", "z", "1", "a", "2.5", "b", "3", "c"),
    ("RPUSH", "l", "p", "q", "r"),
    ("XADD", "x", "1-0", "f", "v", "g", "w"),
    ("XADD", "x", "2-0", "f", "v2"),
    ("XGROUP", "CREATE", "x", "grp", "0"),
    ("GEOADD", "geo", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"),
    ("SET", "k1", "ohmytext"),
    ("SET", "k2", "mynewtext"),
]
# Commands whose replies GLIDE converts (and two it leaves alone), in an order that keeps every
# reply deterministic: the raw client's reply, converted by through_glide, must be GLIDE's reply.
SHAPE_COMMANDS = [
    ("EXPIRE", "s", 100),
    ("SMISMEMBER", "st", "x", "q"),
    ("PFADD", "hll", "a"),
    ("INCRBYFLOAT", "s", "0.25"),
    ("ZSCORE", "z", "b"),
    ("ZINCRBY", "z", 1, "a"),
    ("ZADD", "z", "INCR", 1, "c"),
    ("ZMSCORE", "z", "a", "nope"),
    ("HGETALL", "h"),
    ("CONFIG", "GET", "maxmemory"),
    ("ZRANGE", "z", 0, -1, "WITHSCORES"),
    ("ZRANGE", "z", 0, -1),
    ("ZRANK", "z", "b", "WITHSCORE"),
    ("HRANDFIELD", "h", 5, "WITHVALUES"),
    ("XRANGE", "x", "-", "+"),
    ("XREAD", "STREAMS", "x", "0"),
    ("XREADGROUP", "GROUP", "grp", "c1", "STREAMS", "x", ">"),
    ("XAUTOCLAIM", "x", "grp", "c2", 0, "0"),
    ("LCS", "k1", "k2", "IDX"),
    ("GEODIST", "geo", "Palermo", "Catania"),
    ("GEOSEARCH", "geo", "FROMLONLAT", 15, 37, "BYRADIUS", 200, "km", "ASC", "WITHDIST"),
    ("LMPOP", 1, "l", "LEFT", "COUNT", 2),
    ("ZPOPMIN", "z"),
    ("ZPOPMAX", "z", 2),
    ("ZADD", "z", 1, "a", 2, "b"),
    ("ZMPOP", 1, "z", "MIN"),
    ("BZPOPMIN", "z", 1),
    ("GET", "s"),
]


def test_through_glide_predicts_glide_replies(glide, running: dict[str, EngineProcess]) -> None:
    process = running["valkey-9.1"]
    raw = adapter_class("raw")(Endpoint.single(process.host, process.port), glide.protocol)
    try:
        for command in SHAPE_SETUP:
            raw.call(*command)
        wire = [raw.call(*command) for command in SHAPE_COMMANDS]
        raw.call("FLUSHALL")
        for command in SHAPE_SETUP:
            glide.call(*command)
        for command, reply in zip(SHAPE_COMMANDS, wire, strict=True):
            predicted = through_glide(command, reply)
            if predicted is UNCHANGED:
                predicted = reply
            assert same(predicted, glide.call(*command)), command
    finally:
        raw.close()


def test_through_glide_rules() -> None:
    assert through_glide(("EXPIRE", "k", 1), 0) is False
    assert through_glide(("GET", "k"), "v") is UNCHANGED
    assert through_glide(("ZRANGE", "z", 0, -1), ["a"]) is UNCHANGED  # no WITHSCORES
    assert through_glide(("ZRANGE", "z", 0, -1, "WITHSCORES"), ["a", "1"]) == {"a": 1.0}
    assert through_glide(("XRANGE", "s", "-", "+"), [["1-0", ["f", "v"]]]) == {"1-0": [["f", "v"]]}
    assert through_glide(("XRANGE", "s", "-", "+"), [[Pattern("^1-"), ["f"]]]) is INEXPRESSIBLE
    assert through_glide(("BLMPOP", 0, 1, "k", "LEFT"), "QUEUED") is UNCHANGED  # inside MULTI
    assert through_glide(("EXPIRE", "k", 1), RespError("ERR x")) is UNCHANGED
    assert through_glide(("LMPOP", 1, "k", "LEFT"), 7) is INEXPRESSIBLE
    assert through_glide(
        ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"), {"s": [["1-0", None]]}
    ) == {"s": {"1-0": None}}
    claimed = through_glide(
        ("XAUTOCLAIM", "s", "g", "c", 0, "0"), ["0-0", [["1-0", ["a", "1"]]], []]
    )
    assert claimed == ["0-0", {"1-0": [["a", "1"]]}, []]
