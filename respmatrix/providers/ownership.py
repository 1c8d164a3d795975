"""Who owns a container, and removing it on every exit path when Ryuk is not there.

Every container and network the docker provider makes carries the owning process (pid and start
time, so a reused pid is not mistaken for the owner) and host name as labels. Three things remove
them, from the most to the least orderly:

1. ``close()`` / atexit / SIGTERM (through the pool's handler) / Ctrl-C: the owner removes its own.
2. A watchdog process per owner, started with the first container: it waits on a pipe the owner
   holds; EOF without a "done" line means the owner died (SIGKILL, a crashed xdist worker), and
   the watchdog removes everything labelled with that owner. testcontainers' Ryuk does the same
   job but must be pulled; the watchdog needs nothing but this package.
3. The next start sweeps containers and networks whose owner process is gone (like
   ``launcher.sweep_orphaned_workdirs``).

Run as ``python -m respmatrix.providers.ownership OWNER`` it is the watchdog.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
from typing import Any

LABEL_OWNER = "dev.respmatrix.owner"  # "<pid>:<start time in clock ticks>"
LABEL_HOST = "dev.respmatrix.owner-host"
_DONE = b"done\n"

_watchdog: subprocess.Popen[bytes] | None = None
_watchdog_pid = 0
_live: dict[int, Any] = {}  # id -> an object with stop(): what this process still has running


def _start_ticks(pid: int) -> str | None:
    """The process start time from /proc (field 22 of stat), None if there is no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it are plain.
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else None


def owner_id(pid: int | None = None) -> str:
    """This process (or ``pid``) as an owner label value."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{_start_ticks(pid) or '?'}"


def owner_labels() -> dict[str, str]:
    """The labels every container and network of this process carries."""
    return {LABEL_OWNER: owner_id(), LABEL_HOST: socket.gethostname()}


def owner_alive(owner: str) -> bool:
    """True while the process named by an owner label value still runs."""
    pid, _, ticks = owner.partition(":")
    if not pid.isdigit():
        return False
    current = _start_ticks(int(pid))
    return current is not None and (ticks in ("", "?") or current == ticks)


def remove_owned(client: Any, owner: str) -> list[str]:
    """Remove every container, then every network, labelled with ``owner``; return their names."""
    return _remove(client, [f"{LABEL_OWNER}={owner}"], lambda labels: True)


def sweep_orphans(client: Any) -> list[str]:
    """Remove containers and networks of this host whose owning process is gone."""
    return _remove(
        client,
        [LABEL_OWNER, f"{LABEL_HOST}={socket.gethostname()}"],
        lambda labels: not owner_alive(labels.get(LABEL_OWNER, "")),
    )


def _remove(client: Any, filters: list[str], wanted: Any) -> list[str]:
    import docker.errors

    api = client.api  # the low-level list carries the labels: no inspect per container to race
    removed = []
    for container in api.containers(all=True, filters={"label": filters}):
        if wanted(container.get("Labels") or {}):
            # Gone already (its owner removed it meanwhile) is as good as removed.
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(container["Id"], force=True, v=True)
                removed.append(container["Names"][0].lstrip("/"))
    for network in api.networks(filters={"label": filters}):
        if wanted(network.get("Labels") or {}):
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_network(network["Id"])
                removed.append(network["Name"])
    return removed


def track(resource: Any) -> None:
    """Remember a started container (anything with ``stop()``) until ``untrack``."""
    _live[id(resource)] = resource


def untrack(resource: Any) -> None:
    _live.pop(id(resource), None)


def ensure_watchdog() -> None:
    """Start this process's watchdog once (again after a fork: the pid differs)."""
    global _watchdog, _watchdog_pid
    if _watchdog is not None and _watchdog_pid == os.getpid() and _watchdog.poll() is None:
        return
    _watchdog = subprocess.Popen(
        [sys.executable, "-m", "respmatrix.providers.ownership", owner_id()],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: Ctrl-C in the terminal must not stop it before the owner is gone.
        start_new_session=True,
    )
    if _watchdog_pid != os.getpid():
        atexit.register(_at_exit)  # once per process
    _watchdog_pid = os.getpid()


def _at_exit() -> None:
    """Stop what is still running (nobody closed it), then release the watchdog."""
    for resource in list(_live.values()):
        with contextlib.suppress(Exception):
            resource.stop()
    _live.clear()
    release_watchdog()


def release_watchdog() -> None:
    """Tell the watchdog the owner cleaned up after itself; it exits without touching Docker."""
    global _watchdog
    if _live:
        return  # containers still run: the watchdog stays on guard
    watchdog, _watchdog = _watchdog, None
    if watchdog is None or _watchdog_pid != os.getpid():
        return
    with contextlib.suppress(OSError):
        assert watchdog.stdin is not None
        watchdog.stdin.write(_DONE)
        watchdog.stdin.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        watchdog.wait(timeout=5)


def _watch(owner: str) -> int:
    """The watchdog's body: wait for the owner to finish or die, then clean up after a death."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    received = b""
    while True:
        chunk = os.read(0, 64)
        if not chunk:
            break
        received += chunk
    if received.endswith(_DONE):
        return 0
    import docker

    client = docker.from_env()
    try:
        remove_owned(client, owner)
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(_watch(sys.argv[1]))
