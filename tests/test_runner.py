"""Outcome decisions on real engines: pass, fail, unsupported, divergent, stale entries."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from respmatrix.cases import load_case
from respmatrix.clients import adapter_class
from respmatrix.clients.base import Endpoint
from respmatrix.launcher import EngineProcess
from respmatrix.registry import DivergenceRegistry
from respmatrix.runner import run_case

REGISTRY = {
    "divergences": [
        {
            "id": "ifeq-valkey-only",
            "kind": "unsupported",
            "features": ["set-ifeq"],
            "support": {"redis": False, "valkey": {"added": "8.1"}},
            "reply": {"error_match": "^ERR syntax error"},
            "note": "IFEQ exists on Valkey 8.1+ only.",
            "source": "https://valkey.io/commands/set/",
        },
        {
            "id": "lazyfree-on",
            "kind": "divergent",
            "features": ["lazyfree"],
            "applies": {"redis": False, "valkey": {"added": "8.0"}},
            "note": "Valkey turned lazyfree on by default.",
            "source": "https://github.com/valkey-io/valkey/pull/913",
        },
        {
            "id": "stale-claim",
            "kind": "unsupported",
            "features": ["plain-get"],
            "support": {"redis": True, "valkey": False},
            "reply": {"error_match": "^ERR unknown command"},
            "note": "Deliberately wrong: GET exists everywhere.",
            "source": "https://valkey.io/commands/get/",
        },
    ]
}

IFEQ = {
    "claim": "SET IFEQ replaces on match",
    "features": ["set-ifeq"],
    "steps": [
        {"send": ["SET", "k", "v1"], "expect": "OK"},
        {"send": ["SET", "k", "v2", "IFEQ", "v1"], "expect": "OK"},
        {"send": ["GET", "k"], "expect": "v2"},
    ],
}
LAZY = {
    "claim": "lazyfree-lazy-user-del defaults to no",
    "features": ["lazyfree"],
    "steps": [
        {
            "send": ["CONFIG", "GET", "lazyfree-lazy-user-del"],
            "expect_resp2": ["lazyfree-lazy-user-del", "no"],
            "expect_resp3": {"lazyfree-lazy-user-del": "no"},
            "divergent": {
                "lazyfree-on": {
                    "expect_resp2": ["lazyfree-lazy-user-del", "yes"],
                    "expect_resp3": {"lazyfree-lazy-user-del": "yes"},
                }
            },
        },
    ],
}
WRONG = {
    "claim": "a deliberately wrong expectation",
    "features": ["append"],
    "steps": [
        {"send": ["APPEND", "k", "abc"], "expect": 4},
    ],
}
STALE = {
    "claim": "GET of a missing key is nil",
    "features": ["plain-get"],
    "steps": [
        {"send": ["GET", "nokey"], "expect": None},
    ],
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump(REGISTRY))
    for name, body in {"ifeq": IFEQ, "lazy": LAZY, "wrong": WRONG, "stale": STALE}.items():
        (tmp_path / "t").mkdir(exist_ok=True)
        (tmp_path / "t" / f"{name}.yaml").write_text(yaml.safe_dump(body))
    return tmp_path


def outcome(tree: Path, name: str, process: EngineProcess, client: str, protocol: int):
    registry = DivergenceRegistry.load(tree / "registry.yaml")
    case = load_case(tree / "t" / f"{name}.yaml", tree)
    adapter = adapter_class(client)(Endpoint.single(process.host, process.port), protocol)
    try:
        adapter.call("FLUSHALL")
        return run_case(case, adapter, process.spec, registry)
    finally:
        adapter.close()


@pytest.mark.parametrize("client", ["raw", "redis-py", "valkey-py"])
@pytest.mark.parametrize("protocol", [2, 3])
def test_outcomes(tree: Path, running, client: str, protocol: int) -> None:
    valkey, redis = running["valkey-9.1"], running["redis-7.2"]
    assert outcome(tree, "ifeq", valkey, client, protocol).outcome == "pass"
    lacking = outcome(tree, "ifeq", redis, client, protocol)
    assert (lacking.outcome, lacking.divergence) == ("unsupported", "ifeq-valkey-only")
    assert lacking.detail["step"] == 2

    diverging = outcome(tree, "lazy", valkey, client, protocol)
    assert (diverging.outcome, diverging.divergence) == ("divergent", "lazyfree-on")
    assert outcome(tree, "lazy", redis, client, protocol).outcome == "pass"

    wrong = outcome(tree, "wrong", valkey, client, protocol)
    assert wrong.outcome == "fail" and "expected 4, got 3" in wrong.detail["message"]

    stale = outcome(tree, "stale", valkey, client, protocol)
    assert (stale.outcome, stale.divergence) == ("fail", "stale-claim")
    assert "stale registry entry" in stale.detail["message"]


def test_alternative_for_one_protocol_only(tmp_path: Path, running) -> None:
    """An alternative stated for RESP2 only: RESP3 must pass plainly, not be called divergent."""
    registry = {
        "divergences": [
            {
                "id": "resp2-only",
                "kind": "divergent",
                "features": ["synthetic"],
                "applies": {"redis": False, "valkey": True},
                "note": "A made-up difference for this test.",
                "source": "https://valkey.io/",
            }
        ]
    }
    case = {
        "claim": "a difference declared for RESP2 only",
        "features": ["synthetic"],
        "steps": [
            {"send": ["SET", "k", "v"], "expect": "OK"},
            {
                "send": ["GET", "k"],
                "expect_resp2": "other",
                "expect_resp3": "v",
                "divergent": {"resp2-only": {"expect_resp2": "v"}},
            },
        ],
    }
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump(registry))
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "one.yaml").write_text(yaml.safe_dump(case))
    got = {
        (engine, protocol): outcome(tmp_path, "one", running[engine], "raw", protocol).outcome
        for engine in ("valkey-9.1", "redis-7.2")
        for protocol in (2, 3)
    }
    assert got == {
        ("valkey-9.1", 2): "divergent",
        ("valkey-9.1", 3): "pass",
        ("redis-7.2", 2): "fail",
        ("redis-7.2", 3): "pass",
    }


def test_a_double_reply_is_caught(running) -> None:
    """PFDEBUG SIMD with a bad argument answers twice on engines that have it (a server bug);
    the reference client must notice the extra reply rather than shift later replies."""
    from respmatrix.clients.resp import RespConnection

    valkey = running["valkey-9.1"]
    with RespConnection(valkey.host, valkey.port) as conn:
        reply = conn.call("PFDEBUG", "SIMD", "FOO")
        assert str(reply).startswith("ERR")
        deadline = __import__("time").monotonic() + 2
        while not conn.unsolicited() and __import__("time").monotonic() < deadline:
            pass
        assert conn.unsolicited() in (b"+enabled\r\n", b"+disabled\r\n")
    with RespConnection(valkey.host, valkey.port) as conn:
        assert conn.call("PING") == "PONG"
        assert conn.unsolicited() == b""


CLIENT_REGISTRY = {
    "divergences": [
        {
            "id": "no-hexpire-method",
            "kind": "client",
            "outcome": "unsupported",
            "features": ["method.hexpire"],
            "clients": {"valkey-py": {"added": "6.1"}},
            "reply": {"error_match": "^missing-method: "},
            "note": "valkey-py dropped hexpire() in 6.1.",
            "source": "https://github.com/valkey-io/valkey-py/issues/270",
        },
        {
            "id": "command-callback",
            "kind": "client",
            "outcome": "divergent",
            "features": ["method.command-list"],
            "clients": {"redis-py": True, "valkey-py": True},
            "note": "The COMMAND callback chokes on COMMAND LIST.",
            "source": "https://github.com/redis/redis-py/blob/master/redis/_parsers/helpers.py",
        },
        {
            "id": "old-redis-py-only",
            "kind": "client",
            "outcome": "unsupported",
            "features": ["method.echo"],
            "clients": {"redis-py": {"added": "0", "removed": "1.0"}},
            "reply": {"error_match": "^missing-method: "},
            "note": "A range no installed redis-py falls in.",
            "source": "https://github.com/redis/redis-py/releases",
        },
    ]
}
TYPED_CASES = {
    "hexpire": {
        "claim": "hexpire() returns the per-field codes",
        "api": ["redis-py"],
        "features": ["method.hexpire"],
        "steps": [
            {"send": ["HSET", "k", "a", "1"], "expect": 1},
            {"call": "hexpire", "args": ["k", 100, "a", "zz"], "expect": [1, -2]},
        ],
    },
    "command-list": {
        "claim": "COMMAND LIST through execute_command() is a list of names",
        "api": ["redis-py"],
        "features": ["method.command-list"],
        "steps": [
            {
                "call": "execute_command",
                "args": ["COMMAND", "LIST", "FILTERBY", "PATTERN", "zrangest*"],
                "expect": ["zrangestore"],
                "divergent": {"command-callback": {"client_error": "^TypeError: "}},
            }
        ],
    },
    "echo": {
        "claim": "echo() returns its argument as bytes",
        "api": ["redis-py"],
        "features": ["method.echo"],
        "steps": [{"call": "echo", "args": ["hi"], "expect": "hi"}],
    },
    "missing": {
        "claim": "a method no client has is a client failure, not an engine reply",
        "api": ["redis-py"],
        "features": ["method.nothing"],
        "steps": [{"call": "no_such_method", "args": [], "expect": "OK"}],
    },
}


@pytest.fixture
def typed_tree(tmp_path: Path) -> Path:
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump(CLIENT_REGISTRY))
    (tmp_path / "t").mkdir()
    for name, body in TYPED_CASES.items():
        (tmp_path / "t" / f"{name}.yaml").write_text(yaml.safe_dump(body))
    return tmp_path


@pytest.mark.parametrize("protocol", [2, 3])
def test_client_entries_and_typed_calls(typed_tree: Path, running, protocol: int) -> None:
    """Client registry entries apply by client mode and package version, and their outcomes
    carry scope: client; a typed call goes through the library's own method and parser."""
    valkey = running["valkey-9.1"]

    hexpire = outcome(typed_tree, "hexpire", valkey, "redis-py", protocol)
    assert hexpire.outcome == "pass"
    missing = outcome(typed_tree, "hexpire", valkey, "valkey-py", protocol)
    assert (missing.outcome, missing.divergence) == ("unsupported", "no-hexpire-method")
    assert missing.detail["scope"] == "client"
    assert missing.detail["observed"].startswith("missing-method: valkey")

    for client in ("redis-py", "valkey-py"):
        choked = outcome(typed_tree, "command-list", valkey, client, protocol)
        assert (choked.outcome, choked.divergence) == ("divergent", "command-callback")
        assert choked.detail["scope"] == "client"

    # The entry covers redis-py < 1.0 only: the installed redis-py is out of range, passes.
    assert outcome(typed_tree, "echo", valkey, "redis-py", protocol).outcome == "pass"

    unregistered = outcome(typed_tree, "missing", valkey, "redis-py", protocol)
    assert unregistered.outcome == "fail"
    assert unregistered.detail["scope"] == "client"
    assert "missing-method" in unregistered.detail["message"]


def test_typed_case_needs_an_api(tmp_path: Path) -> None:
    from respmatrix.datafiles import DataFileError

    body = dict(TYPED_CASES["echo"])
    del body["api"]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "x.yaml").write_text(yaml.safe_dump(body))
    with pytest.raises(DataFileError, match="names the client `api`"):
        load_case(tmp_path / "t" / "x.yaml", tmp_path)


def test_raw_client_cannot_run_a_typed_step(typed_tree: Path, running) -> None:
    """The raw client offers no typed API: a typed step through it is a client failure."""
    got = outcome(typed_tree, "hexpire", running["valkey-9.1"], "raw", 2)
    assert got.outcome == "fail" and "cannot-express" in got.detail["message"]


CONVERTER_REGISTRY = {
    "divergences": [
        {
            "id": "converts-replies",
            "kind": "client",
            "outcome": "divergent",
            "features": ["expire"],
            "clients": {"valkey-glide-sync": True, "raw": True},
            "reply": {"converted": True},
            "note": "The client converts replies by command name.",
            "source": "https://github.com/valkey-io/valkey-glide",
        }
    ]
}
EXPIRE_CASE = {
    "claim": "EXPIRE on an existing key answers 1",
    "features": ["something-else"],  # a converter entry applies whatever the features
    "steps": [
        {"send": ["SET", "k", "v"], "expect": "OK"},
        {"send": ["EXPIRE", "k", 100], "expect": 1},
    ],
}


def _converter_tree(tmp_path: Path, registry: dict) -> Path:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump(registry))
    (tmp_path / "t").mkdir(exist_ok=True)
    (tmp_path / "t" / "expire.yaml").write_text(yaml.safe_dump(EXPIRE_CASE))
    return tmp_path


@pytest.mark.parametrize("protocol", [2, 3])
def test_a_converting_client_is_checked_per_step(tmp_path: Path, running, protocol: int) -> None:
    """GLIDE hands back EXPIRE's 1 as True: expected through the converter entry (divergent,
    scope client), a fail without it."""
    valkey = running["valkey-9.1"]
    tree = _converter_tree(tmp_path, CONVERTER_REGISTRY)
    got = outcome(tree, "expire", valkey, "valkey-glide-sync", protocol)
    assert (got.outcome, got.divergence, got.detail["scope"]) == (
        "divergent",
        "converts-replies",
        "client",
    )
    assert got.detail["transcript"][1]["reply"] is True
    bare = _converter_tree(tmp_path / "bare", {"divergences": []})
    assert outcome(bare, "expire", valkey, "valkey-glide-sync", protocol).outcome == "fail"


def test_a_converter_entry_is_stale_where_the_reply_is_not_converted(tmp_path: Path, running):
    """A client said to convert EXPIRE's reply that hands back the wire reply: a stale entry."""
    from respmatrix.clients.glide import GlideSyncClient
    from respmatrix.clients.raw import RawClient

    class ClaimsToConvert(RawClient):  # the real raw client, with GLIDE's conversion claimed
        converted_reply = GlideSyncClient.converted_reply

    tree = _converter_tree(tmp_path, CONVERTER_REGISTRY)
    registry = DivergenceRegistry.load(tree / "registry.yaml")
    case = load_case(tree / "t" / "expire.yaml", tree)
    valkey = running["valkey-9.1"]
    adapter = ClaimsToConvert(Endpoint.single(valkey.host, valkey.port), 2)
    try:
        got = run_case(case, adapter, valkey.spec, registry)
    finally:
        adapter.close()
    assert (got.outcome, got.divergence) == ("fail", "converts-replies")
    assert "stale registry entry" in got.detail["message"]


def test_a_case_that_stops_inside_multi_leaves_no_transaction_open(tmp_path: Path, running):
    """The next case on the same connection must not find its commands queued."""
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump({"divergences": []}))
    (tmp_path / "t").mkdir()
    stops = {
        "claim": "a transaction whose second step is (deliberately) mis-stated",
        "features": ["multi"],
        "steps": [
            {"send": ["MULTI"], "expect": "OK"},
            {"send": ["SET", "k", "v"], "expect": "OK"},  # QUEUED in fact
            {"send": ["EXEC"], "expect": ["OK"]},
        ],
    }
    after = {
        "claim": "the next case answers at once",
        "features": ["get"],
        "steps": [{"send": ["GET", "k"], "expect": None}],
    }
    for name, body in {"stops": stops, "after": after}.items():
        (tmp_path / "t" / f"{name}.yaml").write_text(yaml.safe_dump(body))
    registry = DivergenceRegistry.load(tmp_path / "registry.yaml")
    valkey = running["valkey-9.1"]
    adapter = adapter_class("raw")(Endpoint.single(valkey.host, valkey.port), 2)
    try:
        adapter.call("FLUSHALL")  # the engine is shared with the other tests of the session
        first = run_case(load_case(tmp_path / "t" / "stops.yaml", tmp_path), adapter, valkey.spec,
                         registry)  # fmt: skip
        assert first.outcome == "fail" and first.detail["step"] == 2
        second = run_case(load_case(tmp_path / "t" / "after.yaml", tmp_path), adapter,
                          valkey.spec, registry)  # fmt: skip
        assert second.outcome == "pass", second.detail
    finally:
        adapter.close()


def _one_case(tmp_path: Path, body: dict) -> tuple:
    (tmp_path / "registry.yaml").write_text(yaml.safe_dump({"divergences": []}))
    (tmp_path / "t").mkdir(exist_ok=True)
    (tmp_path / "t" / "case.yaml").write_text(yaml.safe_dump(body))
    return load_case(tmp_path / "t" / "case.yaml", tmp_path), DivergenceRegistry.load(
        tmp_path / "registry.yaml"
    )


@pytest.mark.parametrize("client", ["raw", "redis-py", "valkey-glide-sync"])
def test_poll_waits_for_the_expected_reply_and_judges_the_last(tmp_path: Path, running, client):
    """A key set to expire in 40 ms is still there at the first GET; polling waits for nil. A
    poll whose state never comes fails with the last reply, after its time is up."""
    case, registry = _one_case(
        tmp_path,
        {
            "claim": "poll until the key expired",
            "features": ["get"],
            "steps": [
                {"send": ["SET", "k", "v", "PX", 40], "expect": "OK"},
                {"send": ["GET", "k"], "expect": None, "poll_ms": 5000},
                {"send": ["SET", "n", "1"], "expect": "OK"},
                {"send": ["GET", "n"], "expect": "2", "poll_ms": 60},
            ],
        },
    )
    valkey = running["valkey-9.1"]
    adapter = adapter_class(client)(Endpoint.single(valkey.host, valkey.port), 3)
    try:
        adapter.call("FLUSHALL")
        began = time.perf_counter()
        got = run_case(case, adapter, valkey.spec, registry)
        took = time.perf_counter() - began
    finally:
        adapter.close()
    assert got.outcome == "fail" and got.detail["step"] == 4, got.detail
    assert got.detail["message"] == 'expected "2", got "1"'
    assert 0.1 <= took < 5, took  # the 40 ms expiry plus the 60 ms poll; no 5 s wait
