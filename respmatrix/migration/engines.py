"""Starting the servers of a migration: the producer, and consumers with extra settings.

Each migration needs its own short-lived servers (a consumer started on the producer's RDB file,
a fresh replica), so they come straight from the engine store rather than from the per-worker
:class:`respmatrix.pool.EnginePool`. Logs go to a folder the caller keeps, because a server that
refuses to start has said why only in its log.
"""

from __future__ import annotations

import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from respmatrix.catalog import EngineSpec
from respmatrix.clients.resp import RespConnection
from respmatrix.launcher import EngineProcess

# "pid:role dd Mon yyyy hh:mm:ss.mmm <level> message"; '#' is the warning level.
_LOG_LINE = re.compile(r"^\d+:[A-Z] (?P<when>\d+ \w+ \d+ [\d:.]+) (?P<level>[#*.\-]) (?P<text>.*)$")


def engine_process(
    spec: EngineSpec,
    store: object,
    log_dir: Path,
    extra_args: tuple[str, ...] = (),
    start_timeout: float = 15.0,
) -> EngineProcess:
    """``spec`` from the store (its catalog modules loaded), ``extra_args`` last; not started.

    Later arguments win, so ``--dir`` here overrides the launcher's own temp dir.
    """
    module_args = getattr(store, "module_args", None)
    modules = tuple(module_args(spec)) if module_args else ()
    # A folder per server: a log is named after engine and port, and a port comes back.
    own_logs = Path(tempfile.mkdtemp(prefix=f"{spec.id}-", dir=log_dir))
    process = EngineProcess(
        spec,
        store.server_path(spec),  # type: ignore[attr-defined]
        store.server_env(spec),  # type: ignore[attr-defined]
        own_logs,
        extra_args=(*modules, *extra_args),
        start_timeout=start_timeout,
    )
    return process


class StepTimeout(TimeoutError):
    """A server gave no reply within the socket timeout; the message names the step."""


class StepConnection(RespConnection):
    """A :class:`RespConnection` whose timeouts say which command, on which server, got no
    reply (a bare ``TimeoutError: timed out`` cannot be acted on)."""

    def call(self, *args: Any) -> Any:
        try:
            return super().call(*args)
        except TimeoutError:
            raise self._timed_out(args) from None

    def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        try:
            return super().pipeline(commands)
        except TimeoutError:
            raise self._timed_out(commands[0] if commands else ()) from None

    def _timed_out(self, args: tuple[Any, ...] | list[Any]) -> StepTimeout:
        timeout = self._sock.gettimeout()
        # The late reply would answer the next command: this connection is done.
        self.close()
        return StepTimeout(
            f"{step_name(args)} on {self.host}:{self.port}: no reply within {timeout:g}s"
        )


def step_name(args: tuple[Any, ...] | list[Any]) -> str:
    """``("RESTORE", "vectorset", b"...")`` -> ``RESTORE vectorset``: the command and its
    subcommand or key, where that is short text."""
    words = [str(args[0]).upper()] if args else ["(nothing)"]
    if len(args) > 1 and isinstance(args[1], str) and len(args[1]) <= 40:
        words.append(args[1])
    return " ".join(words)


def connect(process: EngineProcess, timeout: float = 10.0) -> StepConnection:
    """A connection to ``process`` whose replies may each take ``timeout`` seconds."""
    try:
        return StepConnection(process.host, process.port, timeout=timeout)
    except TimeoutError:
        raise StepTimeout(
            f"connecting to {process.spec.id} at {process.address}: no answer within {timeout:g}s"
        ) from None


def log_offset(process: EngineProcess) -> int:
    """Where the server's log ends now, to read only what it writes after this point."""
    path = process.log_path
    return path.stat().st_size if path and path.exists() else 0


def log_lines(process: EngineProcess, offset: int = 0) -> list[tuple[str, str]]:
    """(level, message) of each log line written after ``offset``; level '#' is a warning."""
    return [(level, text) for _, level, text in timed_log_lines(process, offset)]


def timed_log_lines(process: EngineProcess, offset: int = 0) -> list[tuple[str, str, str]]:
    """(time, level, message) of each log line written after ``offset``."""
    path = process.log_path
    if not path or not path.exists():
        return []
    with path.open("rb") as log:
        log.seek(offset)
        text = log.read().decode(errors="replace")
    found = []
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            found.append((_sortable(match["when"]), match["level"], match["text"].strip()))
        elif line.strip():
            found.append(("", "?", line.strip()))
    return found


def _sortable(when: str) -> str:
    """``26 Nov 2026 13:57:46.855`` -> a string that sorts in time order."""
    try:
        return datetime.strptime(when, "%d %b %Y %H:%M:%S.%f").isoformat()
    except ValueError:
        return when


def warnings(lines: list[tuple[str, str]]) -> list[str]:
    """The warning-level messages, minus the start-up advice every server prints."""
    return [
        text
        for level, text in lines
        if level == "#"
        and not text.startswith(("WARNING", "Warning:"))
        and "oO0OoO0OoO0Oo" not in text
        and "Server initialized" not in text
    ]
