"""HELLO switching a live connection between RESP2 and RESP3, on a real redis and valkey.

The YAML cases of suites/connection/HELLO run through every client mode, and the redis-py
family cannot survive HELLO 3 on a connection it opened as RESP2 (its RESP2 parser meets a map
and gives up), so those cases only switch down from RESP3. The switch up is checked here with
the raw client, which decodes whatever the server sends. About 0.1 s.
"""

from __future__ import annotations

import pytest

from respmatrix.clients.resp import RespConnection

ENGINES = ["redis-7.2", "valkey-9.1"]


@pytest.mark.parametrize("engine_id", ENGINES)
def test_hello_3_switches_a_resp2_connection_to_resp3(running, engine_id: str) -> None:
    process = running[engine_id]
    with RespConnection(process.host, process.port, protocol=2) as conn:
        assert conn.call("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "noeviction"]
        hello = conn.call("HELLO", "3")
        assert isinstance(hello, dict) and hello["proto"] == 3
        assert conn.call("CONFIG", "GET", "maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert "resp=3" in conn.call("CLIENT", "INFO").split()
        back = conn.call("HELLO", "2")
        assert isinstance(back, list) and back[back.index("proto") + 1] == 2
        assert conn.call("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "noeviction"]


@pytest.mark.parametrize("engine_id", ENGINES)
def test_hello_id_is_the_client_id(running, engine_id: str) -> None:
    process = running[engine_id]
    with RespConnection(process.host, process.port, protocol=3) as conn:
        assert conn.call("HELLO")["id"] == conn.call("CLIENT", "ID")


@pytest.mark.parametrize("engine_id", ENGINES)
def test_redis_py_resp2_connection_cannot_read_hello_3(running, engine_id: str) -> None:
    """Why the YAML HELLO 3 cases are RESP3-only: redis-py's RESP2 parser refuses the map."""
    redis = pytest.importorskip("redis")
    process = running[engine_id]
    client = redis.Redis(
        host=process.host, port=process.port, protocol=2, single_connection_client=True
    )
    try:
        with pytest.raises(redis.exceptions.InvalidResponse):
            client.execute_command("HELLO", "3")
    finally:
        client.close()
