"""Cases on more than one connection, on a real engine through every sync and asyncio client.

A background BLPOP on connection b is woken by a push from main; a background command nobody
wakes is reported, not waited for; extra connections are closed when the case ends; pushed
messages are read without sending anything; badly wired step scripts are refused on load.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from respmatrix.cases import load_case
from respmatrix.clients import adapter_class
from respmatrix.clients.base import Endpoint
from respmatrix.clients.resp import RespConnection
from respmatrix.connections import NoReplyError
from respmatrix.datafiles import DataFileError
from respmatrix.launcher import EngineProcess
from respmatrix.registry import DivergenceRegistry
from respmatrix.replies import PushReply
from respmatrix.runner import run_case

CLIENTS = ["raw", "redis-py", "valkey-py", "redis-py-async", "valkey-py-async"]

WAKEUP = {
    "claim": "a BLPOP blocked on b is woken by an LPUSH from main",
    "features": ["blpop"],
    "steps": [
        {"conn": "b", "send": ["BLPOP", "k", 5], "background": "pop"},
        {"sleep_ms": 50},
        {"send": ["LPUSH", "k", "v"], "expect": 1},
        {"await": "pop", "expect": ["k", "v"], "took_ms": [0, 4000]},
        {"send": ["EXISTS", "k"], "expect": 0},
    ],
}
NEVER_WOKEN = {
    "claim": "a BLPOP nobody wakes is reported after the await timeout",
    "features": ["blpop"],
    "steps": [
        {"conn": "b", "send": ["BLPOP", "k", 0], "background": "pop"},
        {"await": "pop", "timeout_ms": 300, "expect": ["k", "v"]},
    ],
}
SLOW_TIMEOUT = {
    "claim": "took_ms bounds fail a reply that came too fast",
    "features": ["blpop"],
    "steps": [{"send": ["BLPOP", "k", 0.1], "expect": None, "took_ms": [2000, 3000]}],
}
PUBSUB = {
    "claim": "a message published on main reaches the subscriber b",
    "features": ["pubsub"],
    "steps": [
        {"conn": "b", "send": ["SUBSCRIBE", "ch"], "expect": ["subscribe", "ch", 1]},
        {"send": ["PUBLISH", "ch", "hi"], "expect": 1},
        {"conn": "b", "receive": True, "expect": ["message", "ch", "hi"]},
        {"conn": "b", "receive": True, "timeout_ms": 100, "expect": None},
    ],
}


def _tree(tmp_path: Path, cases: dict[str, dict]) -> Path:
    (tmp_path / "t").mkdir(exist_ok=True)
    for name, body in cases.items():
        (tmp_path / "t" / f"{name}.yaml").write_text(yaml.safe_dump(body))
    return tmp_path


def _run(tree: Path, name: str, process: EngineProcess, client: str, protocol: int):
    case = load_case(tree / "t" / f"{name}.yaml", tree)
    adapter = adapter_class(client)(Endpoint.single(process.host, process.port), protocol)
    try:
        adapter.call("FLUSHALL")
        return run_case(case, adapter, process.spec, DivergenceRegistry([]))
    finally:
        adapter.close()


def _client_ids(process: EngineProcess) -> set[int]:
    """Ids of the engine's clients, not counting the connection that asks."""
    with RespConnection(process.host, process.port) as admin:
        listing = admin.call("CLIENT", "LIST")
        own = admin.call("CLIENT", "ID")
    return {int(line.split("id=")[1].split()[0]) for line in listing.splitlines() if line} - {own}


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("protocol", [2, 3])
def test_background_blpop_woken_from_main(tmp_path: Path, running, client, protocol) -> None:
    tree = _tree(tmp_path, {"wakeup": WAKEUP, "pubsub": PUBSUB})
    valkey = running["valkey-9.1"]
    before = _client_ids(valkey)
    outcome = _run(tree, "wakeup", valkey, client, protocol)
    assert outcome.outcome == "pass", outcome.detail
    outcome = _run(tree, "pubsub", valkey, client, protocol)
    assert outcome.outcome == "pass", outcome.detail
    # the extra connections are gone once the case is over (the server notices the close
    # asynchronously, so give it a moment)
    deadline = time.monotonic() + 2
    while _client_ids(valkey) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _client_ids(valkey) - before == set()


@pytest.mark.parametrize("client", ["raw", "redis-py-async"])
def test_unwoken_background_step_is_reported_not_waited_for(tmp_path, running, client) -> None:
    tree = _tree(tmp_path, {"never": NEVER_WOKEN})
    valkey = running["valkey-9.1"]
    before = _client_ids(valkey)
    began = time.monotonic()
    with pytest.raises(NoReplyError, match=r"no reply to \['BLPOP', 'k', 0\] within 300 ms"):
        _run(tree, "never", valkey, client, 3)
    assert time.monotonic() - began < 5
    assert _client_ids(valkey) - before == set()  # unblocked, then closed


def test_took_ms_bounds_are_checked(tmp_path: Path, running) -> None:
    tree = _tree(tmp_path, {"slow": SLOW_TIMEOUT})
    outcome = _run(tree, "slow", running["valkey-9.1"], "raw", 2)
    assert outcome.outcome == "fail"
    assert "expected [2000, 3000] ms" in outcome.detail["message"]


def test_transcript_names_the_connection(tmp_path: Path, running) -> None:
    body = dict(PUBSUB, steps=[*PUBSUB["steps"][:2], {**PUBSUB["steps"][2], "expect": "x"}])
    tree = _tree(tmp_path, {"bad": body})
    outcome = _run(tree, "bad", running["valkey-9.1"], "raw", 3)
    assert outcome.outcome == "fail"
    sends = [step["send"] for step in outcome.detail["transcript"]]
    assert sends == [["[b]", "SUBSCRIBE", "ch"], ["PUBLISH", "ch", "hi"], ["[b]", "receive"]]


@pytest.mark.parametrize("protocol", [2, 3])
def test_raw_client_keeps_the_frame_kind(running, protocol: int) -> None:
    """RESP3 delivers pub/sub messages as push frames, RESP2 as plain arrays."""
    valkey = running["valkey-9.1"]
    subscriber = adapter_class("raw")(Endpoint.single(valkey.host, valkey.port), protocol)
    try:
        assert subscriber.call("SUBSCRIBE", "ch") == ["subscribe", "ch", 1]
        with RespConnection(valkey.host, valkey.port) as publisher:
            assert publisher.call("PUBLISH", "ch", "hi") == 1
        message = subscriber.receive(2)
        assert message == ["message", "ch", "hi"]
        assert isinstance(message, PushReply) == (protocol == 3)
    finally:
        subscriber.close()


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        ([{"await": "x", "expect": 1}], "awaits 'x', which no step started"),
        ([{"conn": "b", "send": ["BLPOP", "k", 1], "background": "x"}], "never awaited"),
        (
            [
                {"conn": "main", "send": ["BLPOP", "k", 1], "background": "x"},
                {"await": "x", "expect": None},
            ],
            "runs on an extra connection",
        ),
    ],
)
def test_miswired_steps_are_refused(tmp_path: Path, steps, error) -> None:
    case = {"claim": "a miswired step script", "features": ["x"], "steps": steps}
    tree = _tree(tmp_path, {"bad": case})
    with pytest.raises(DataFileError, match=error):
        load_case(tree / "t" / "bad.yaml", tree)


def test_background_step_refused_where_connections_cannot_wait_in_parallel(tmp_path, running):
    """A client mode whose connections share one event loop cannot block one while another sends:
    the background step reports that as the client's failure."""

    class OneLoopRaw(adapter_class("raw")):
        waits_in_parallel = False

    tree = _tree(tmp_path, {"wakeup": WAKEUP})
    valkey = running["valkey-9.1"]
    case = load_case(tree / "t" / "wakeup.yaml", tree)
    adapter = OneLoopRaw(Endpoint.single(valkey.host, valkey.port), 3)
    try:
        adapter.call("FLUSHALL")
        outcome = run_case(case, adapter, valkey.spec, DivergenceRegistry([]))
    finally:
        adapter.close()
    assert outcome.outcome == "fail"
    assert outcome.detail["step"] == 1  # the refused background step itself
    assert "cannot-express" in outcome.detail["message"]
    assert "one event loop" in outcome.detail["message"]
