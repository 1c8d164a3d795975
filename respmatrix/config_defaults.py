"""The configuration an engine starts with, and which of those values differ between engines.

Every started engine's ``CONFIG GET *`` rides along in the results (``engines.<id>.config``), so
a report can show the defaults that change behaviour across a cutover (Valkey's lazyfree
defaults, its larger replication backlog) from the run itself, not from a list typed by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from respmatrix.clients.resp import RespConnection

# Values the harness or the host decides (the launcher's own flags, per-process paths and ports):
# they say nothing about the engine, and some would differ on every start.
HARNESS_SET = frozenset(
    {
        "port", "bind", "dir", "logfile", "pidfile", "daemonize", "save", "appendonly",
        "enable-debug-command", "enable-module-command", "hz", "unixsocket", "tls-port",
    }
)  # fmt: skip


def config_snapshot(host: str, port: int) -> dict[str, str]:
    """``CONFIG GET *`` of the server at ``host:port``, without :data:`HARNESS_SET`."""
    with RespConnection(host, port, protocol=2) as conn:
        reply = conn.call("CONFIG", "GET", "*")
    if not isinstance(reply, list) or len(reply) % 2:
        raise RuntimeError(f"{host}:{port} did not answer CONFIG GET * with name/value pairs")
    values = {str(name): str(value) for name, value in zip(reply[::2], reply[1::2], strict=True)}
    return {name: values[name] for name in sorted(values) if name not in HARNESS_SET}


@dataclass(frozen=True)
class ConfigDifference:
    """One parameter whose starting value is not the same on every engine that has it."""

    name: str
    values: dict[str, str | None]  # engine id -> value; None where the engine lacks it


def differing_defaults(configs: Mapping[str, Mapping[str, str]]) -> list[ConfigDifference]:
    """Parameters that at least two engines have, with more than one value among them."""
    names = sorted({name for config in configs.values() for name in config})
    found = []
    for name in names:
        values = {engine: config.get(name) for engine, config in configs.items()}
        present = [v for v in values.values() if v is not None]
        if len(present) >= 2 and len(set(present)) > 1:
            found.append(ConfigDifference(name, values))
    return found


def partial_parameters(configs: Mapping[str, Mapping[str, str]]) -> dict[str, list[str]]:
    """Parameter -> the engines that have it, for parameters some engines lack."""
    engines = list(configs)
    names = sorted({name for config in configs.values() for name in config})
    having = {name: [e for e in engines if name in configs[e]] for name in names}
    return {name: ids for name, ids in having.items() if len(ids) < len(engines)}


def engine_configs(doc: Mapping[str, Any]) -> dict[str, Mapping[str, str]]:
    """Engine id -> recorded config, for the engines of a results document that have one."""
    engines = doc.get("engines", {})
    return {e: facts["config"] for e, facts in engines.items() if facts.get("config")}
