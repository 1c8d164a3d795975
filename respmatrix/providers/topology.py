"""Several containers wired together: a primary and a replica on their own Docker network.

The replica reaches the primary by container name over a user-defined network (Docker's DNS),
as two hosts would; the harness reaches both through their published ports. The engines may be
of different lines (Redis 7.2 primary -> Valkey 9.1 replica): the replica loads the primary's
RDB, so the replica must read the primary's RDB version (Valkey reads Redis RDB up to version
11, which is Redis 7.2's; Redis 7.4 writes 12).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any

from respmatrix.catalog import EngineSpec
from respmatrix.clients.resp import RespConnection
from respmatrix.launcher import EngineStartError, parse_info
from respmatrix.providers import ownership
from respmatrix.providers.docker import DockerEngine, docker_client

_pairs = [0]  # pairs started by this process, for unique names


class ReplicationError(EngineStartError):
    """The replica did not connect to its primary and finish the first sync in time."""


@dataclass
class ReplicaPair:
    """A primary and a replica container on one network; ``stop()`` removes all three."""

    primary: DockerEngine
    replica: DockerEngine
    network: Any  # testcontainers Network
    synced_in: float = 0.0
    replication: dict[str, str] = field(default_factory=dict)  # the replica's INFO replication

    def stop(self) -> None:
        """Replica, primary, then the network (Docker refuses to remove a network in use)."""
        ownership.untrack(self)
        self.replica.stop()
        self.primary.stop()
        network, self.network = self.network, None
        if network is not None:
            with contextlib.suppress(Exception):  # removed already, or the daemon is gone
                network.remove()

    def __enter__(self) -> ReplicaPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _network(name: str) -> Any:
    from testcontainers.core.network import Network

    network = Network(docker_network_kw={"labels": ownership.owner_labels()})
    network.name = name  # readable in `docker network ls`; the default is a bare uuid
    return network.create()


def replication_info(engine: DockerEngine) -> dict[str, str]:
    with RespConnection(engine.host, engine.port) as conn:
        return parse_info(conn.call("INFO", "replication"))


def start_replica_pair(
    primary: EngineSpec,
    replica: EngineSpec,
    images: dict[str, str] | None = None,
    sync_timeout: float = 20.0,
) -> ReplicaPair:
    """Start ``primary`` and ``replica`` on a new network and make the second replicate the first.

    Returns once the replica reports ``master_link_status:up`` with the first sync done.
    """
    images = images or {}
    docker_client().close()  # a clear error now if there is no daemon
    _pairs[0] += 1
    stem = f"respmatrix-{os.getpid()}-{_pairs[0]}"
    network = _network(f"{stem}-net")
    pair = ReplicaPair(
        primary=DockerEngine(
            primary, images.get(primary.id), name=f"{stem}-primary", network=network
        ),
        replica=DockerEngine(
            replica, images.get(replica.id), name=f"{stem}-replica", network=network
        ),
        network=network,
    )
    ownership.track(pair)
    try:
        pair.primary.start()
        pair.replica.start()
        began = time.perf_counter()
        with RespConnection(pair.primary.host, pair.primary.port) as conn:
            # A diskless primary waits 5 s by default for more replicas before a full sync.
            conn.call("CONFIG", "SET", "repl-diskless-sync-delay", "0")
        with RespConnection(pair.replica.host, pair.replica.port) as conn:
            # By container name, through Docker's DNS on the user-defined network.
            reply = conn.call("REPLICAOF", pair.primary.name, str(pair.primary.container_port))
        if reply != "OK":
            raise ReplicationError(f"REPLICAOF on {replica.id} answered {reply!r}")
        pair.replication = _wait_synced(pair, began + sync_timeout)
        pair.synced_in = time.perf_counter() - began
    except BaseException:
        pair.stop()
        raise
    return pair


def _wait_synced(pair: ReplicaPair, deadline: float) -> dict[str, str]:
    while True:
        info = replication_info(pair.replica)
        if info.get("master_link_status") == "up" and info.get("master_sync_in_progress") == "0":
            return info
        if time.perf_counter() > deadline:
            raise ReplicationError(
                f"{pair.replica.spec.id} did not sync from {pair.primary.spec.id} "
                f"(link {info.get('master_link_status')}); last lines of the replica's log:\n"
                f"{pair.replica.log_tail()}"
            )
        time.sleep(0.02)
