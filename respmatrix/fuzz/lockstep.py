"""Sending each fuzzed command to every engine in lockstep, and keeping what was seen.

One :class:`Lockstep` holds a raw RESP connection per engine. Every step is written to all of
them before any reply is read, the replies are normalised and classified, and the step joins the
current example's script. An unexplained difference raises :class:`UnexplainedDifference` (one
subclass per family and command, so hypothesis shrinks each kind of failure on its own); an
explained one is counted and the keys it touched are deleted on every engine (a recorded step of
the script), so that later steps compare equal states again.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from respmatrix.catalog import EngineSpec
from respmatrix.clients.resp import RespConnection
from respmatrix.fuzz.classify import Verdict, classify
from respmatrix.fuzz.features import error_features, features_of
from respmatrix.fuzz.normalise import SCANS, command_name, normalise
from respmatrix.fuzz.script import as_bytes, format_script
from respmatrix.registry import DivergenceRegistry
from respmatrix.replies import RespError


class UnexplainedDifference(AssertionError):
    """The engines disagree and no registry entry explains it."""


class BudgetExhausted(KeyboardInterrupt):
    """The wall-clock budget is spent. Hypothesis stops at once on a KeyboardInterrupt, without
    shrinking or saving the example; the runner catches this one before a real Ctrl-C would."""


_CLASSES: dict[str, type[UnexplainedDifference]] = {}


def difference_class(signature: str) -> type[UnexplainedDifference]:
    """One exception class per kind of failure: hypothesis tells bugs apart by type."""
    cls = _CLASSES.get(signature)
    if cls is None:
        name = "Unexplained_" + "".join(c if c.isalnum() else "_" for c in signature)
        cls = _CLASSES[signature] = type(name, (UnexplainedDifference,), {})
    return cls


@dataclass
class Engine:
    """One engine of the run, under a label (its id, or ``id#2`` for a second copy)."""

    label: str
    spec: EngineSpec
    host: str
    port: int


@dataclass
class Finding:
    """An unexplained difference, with the shortest script seen that shows it."""

    family: str
    command: str
    protocol: int
    commands: list[list[Any]]
    features: list[str]
    replies: dict[str, Any]
    groups: list[tuple[list[str], Any]]
    seen: int = 1
    reproduced: bool | None = None  # replayed after the run (see minimise)

    @property
    def script(self) -> str:
        return format_script(self.commands)

    def size(self) -> tuple[int, int]:
        return len(self.commands), sum(len(as_bytes(a)) for c in self.commands for a in c)


@dataclass
class Explained:
    """A registry entry seen explaining a difference, with its shortest example."""

    family: str
    outcome: str
    entry: str
    engines: set[str]
    protocol: int
    commands: list[list[Any]]
    replies: dict[str, Any]
    count: int = 0


@dataclass
class Example:
    family: str
    protocol: int
    commands: list[list[Any]] = field(default_factory=list)
    replay: bool = False  # a replay records nothing and resynchronises nothing itself


PREAMBLE = {"scripting": [["FUNCTION", "FLUSH"], ["SCRIPT", "FLUSH"]]}


def preamble_of(family: str, protocol: int) -> list[list[Any]]:
    """The lines a script starts with: the protocol, then empty engines."""
    head = [["HELLO", "3"]] if protocol == 3 else []
    return [*head, ["FLUSHALL"], *PREAMBLE.get(family, [])]


_TYPE_AWARE = {"OBJECT ENCODING", "OBJECT REFCOUNT", "BITCOUNT", "BITPOS", "HPERSIST"}


class Lockstep:
    """Connections to every engine of a run, and the record of what the run saw."""

    def __init__(
        self,
        engines: Sequence[Engine],
        registry: DivergenceRegistry,
        deadline: float | None = None,
    ) -> None:
        if len(engines) < 2:
            raise ValueError("differential fuzzing needs at least two engines")
        self.engines = list(engines)
        self.specs = {e.label: e.spec for e in engines}
        self.registry = registry
        self.deadline = deadline
        self._conns: dict[tuple[str, int], RespConnection] = {}
        self.example: Example | None = None
        self.example_digests: list[str] = []  # one per example run, for determinism checks
        self.findings: dict[str, Finding] = {}
        self.explained: dict[tuple[str, str, str], Explained] = {}
        self.steps = Counter[str]()  # family -> steps sent
        self.examples = Counter[str]()  # family -> examples run
        self._in_multi = False
        self._queued: list[tuple[list[Any], set[str], list[Any]]] = []
        self._pending_keys: list[Any] = []
        # Differences found in earlier chunks: counted again, not raised (no second shrink).
        self.known_failures: set[str] = set()

    # -- connections ---------------------------------------------------------------------------
    def connection(self, engine: Engine, protocol: int) -> RespConnection:
        key = (engine.label, protocol)
        conn = self._conns.get(key)
        if conn is None:
            conn = self._conns[key] = RespConnection(engine.host, engine.port, protocol)
        return conn

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    # -- examples ------------------------------------------------------------------------------
    def begin(self, family: str, protocol: int, replay: bool = False) -> None:
        """Start an example: every engine empty, every connection in its initial state."""
        if not replay:
            self._check_budget()
        self._finish_example()
        self._in_multi, self._queued, self._pending_keys = False, [], []
        for engine in self.engines:
            conn = self.connection(engine, protocol)
            # RESET ends MULTI/WATCH/SELECT/tracking and returns to RESP2.
            setup = [("RESET",), *([("HELLO", "3")] if protocol == 3 else [])]
            setup += [("FLUSHALL", "SYNC"), *(tuple(c) for c in PREAMBLE.get(family, []))]
            for command, reply in zip(setup, conn.pipeline(setup), strict=True):
                if isinstance(reply, RespError):
                    raise RuntimeError(f"{engine.label}: {' '.join(command)} failed: {reply}")
        self.example = Example(family, protocol, preamble_of(family, protocol), replay=replay)
        if not replay:
            self.examples[family] += 1

    def _finish_example(self) -> None:
        if self.example is not None and not self.example.replay:
            digest = hashlib.sha256(format_script(self.example.commands).encode()).hexdigest()
            self.example_digests.append(f"{self.example.family}:{digest[:16]}")
        self.example = None

    def end(self) -> None:
        self._finish_example()

    def replay(self, family: str, protocol: int, commands: list[list[Any]]) -> list[Verdict]:
        """Run a recorded script again (its preamble included) and return each step's verdict."""
        preamble = preamble_of(family, protocol)
        assert commands[: len(preamble)] == preamble, "not a script of this family and protocol"
        self.begin(family, protocol, replay=True)
        try:
            return [self.send(c) for c in commands[len(preamble) :]]
        finally:
            self.end()

    def _check_budget(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExhausted()

    # -- steps ---------------------------------------------------------------------------------
    def send(self, args: Sequence[Any], keys: Sequence[Any] = ()) -> Verdict:
        """Send one command to every engine, compare, record; raise if unexplained."""
        assert self.example is not None, "begin() first"
        if not self.example.replay:
            self._check_budget()
        args = list(args)
        name = command_name(args)
        key_type = None
        if name in _TYPE_AWARE and len(args) > (2 if name.startswith("OBJECT") else 1):
            key_type = self._key_type(args[2] if name.startswith("OBJECT") else args[1])
        features = features_of(args, key_type)
        queued_for_exec = list(self._queued) if name == "EXEC" else []
        if name == "EXEC":
            for _, queued_features, queued_keys in queued_for_exec:
                features |= queued_features
                keys = [*keys, *queued_keys]
        replay = self.example.replay
        self.example.commands.append(args)
        if not replay:
            self.steps[self.example.family] += 1
        raw = self._round_trip(args)
        replies = {
            label: self._normalise(args, reply, queued_for_exec) for label, reply in raw.items()
        }
        if all(isinstance(r, RespError) for r in raw.values()):
            features |= error_features(name, self._in_multi)
        verdict = classify(features, self.specs, replies, self.registry)
        self._track_transaction(name, args, features, keys, raw)
        if replay:
            return verdict
        if verdict.kind == "fail":
            self._record_failure(name, sorted(features), verdict)
            if f"{self.example.family} {name}" in self.known_failures:
                self._pending_keys.extend(keys)
                if not self._in_multi:
                    self._resync()
                return verdict
            raise difference_class(f"{self.example.family} {name}")(
                f"{name}: the engines disagree: "
                + "; ".join(f"{','.join(g)} -> {r!r}" for g, r in verdict.groups())
            )
        if verdict.kind == "explained":
            self._record_explained(verdict)
            self._pending_keys.extend(keys)
            if not self._in_multi:
                self._resync()
        return verdict

    def _round_trip(self, args: list[Any]) -> dict[str, Any]:
        protocol = self.example.protocol if self.example else 2
        conns = [(e.label, self.connection(e, protocol)) for e in self.engines]
        name = command_name(args)
        if name in SCANS and not self._in_multi:
            return {label: _full_scan(conn, args, SCANS[name]) for label, conn in conns}
        for _, conn in conns:
            conn.send(*args)
        return {label: conn.read_reply() for label, conn in conns}

    def _normalise(self, args: list[Any], reply: Any, queued: list[Any]) -> Any:
        if queued and isinstance(reply, list) and len(reply) == len(queued):
            return [normalise(q[0], r) for q, r in zip(queued, reply, strict=True)]
        return normalise(args, reply)

    def _key_type(self, key: Any) -> str | None:
        if self._in_multi:
            return None
        protocol = self.example.protocol if self.example else 2
        reply = self.connection(self.engines[0], protocol).call("TYPE", key)
        return reply if isinstance(reply, str) else None

    def _track_transaction(
        self, name: str, args: list[Any], features: set[str], keys: Sequence[Any], raw: dict
    ) -> None:
        ok = [not isinstance(r, RespError) for r in raw.values()]
        if name == "MULTI" and all(ok) and not self._in_multi:
            self._in_multi, self._queued = True, []
        elif name in ("EXEC", "DISCARD") and self._in_multi:
            self._in_multi, self._queued = False, []
        elif self._in_multi:
            self._queued.append((args, features, list(keys)))

    def _resync(self) -> None:
        """After an explained difference, delete what it touched so the states agree again."""
        keys = list(dict.fromkeys(self._pending_keys))
        self._pending_keys = []
        if not keys:
            return
        command = ["DEL", *keys]
        assert self.example is not None
        self.example.commands.append(command)
        # The counts may differ (a key one engine refused to create); the states agree after.
        self._round_trip(command)

    # -- records -------------------------------------------------------------------------------
    def _record_failure(self, name: str, features: list[str], verdict: Verdict) -> None:
        assert self.example is not None
        signature = f"{self.example.family} {name}"
        finding = Finding(
            self.example.family, name, self.example.protocol,
            [list(c) for c in self.example.commands], features, verdict.replies,
            verdict.groups(),
        )  # fmt: skip
        known = self.findings.get(signature)
        if known is None or finding.size() < known.size():
            finding.seen = (known.seen + 1) if known else 1
            self.findings[signature] = finding
        else:
            known.seen += 1

    def _record_explained(self, verdict: Verdict) -> None:
        assert self.example is not None
        by_entry: dict[tuple[str, str], set[str]] = {}
        for label, (outcome, entry) in verdict.explained.items():
            by_entry.setdefault((outcome, entry), set()).add(label)
        for (outcome, entry), labels in by_entry.items():
            key = (self.example.family, outcome, entry)
            known = self.explained.get(key)
            commands = [list(c) for c in self.example.commands]
            if known is None or len(commands) < len(known.commands):
                seen = known.engines if known else set()
                count = known.count if known else 0
                known = self.explained[key] = Explained(
                    self.example.family, outcome, entry, seen, self.example.protocol,
                    commands, verdict.replies, count,
                )  # fmt: skip
            known.engines |= labels
            known.count += 1


def _full_scan(conn: RespConnection, args: list[Any], cursor_at: int) -> Any:
    """A SCAN-family command iterated to the end; pages differ with the hash seed."""
    first = conn.call(*args)
    if not (isinstance(first, list) and len(first) == 2 and isinstance(first[1], list)):
        return first
    items = list(first[1])
    cursor = first[0]
    for _ in range(1000):
        if cursor == "0":
            break
        again = list(args)
        again[cursor_at] = cursor
        page = conn.call(*again)
        if not (isinstance(page, list) and len(page) == 2):
            return page
        cursor, more = page
        items += more
    return [first[0] if first[0] == "0" else cursor, items]
