"""Sending each fuzzed command to every engine in lockstep, and keeping what was seen.

One :class:`Lockstep` holds a raw RESP connection per engine. Every step is written to all of
them before any reply is read, the replies are normalised and classified, and the step joins the
current example's script. An unexplained difference raises :class:`UnexplainedDifference` (one
subclass per family and command, so hypothesis shrinks each kind of failure on its own); an
explained one is counted and every engine is emptied and put back in database 0 (recorded steps
of the script: FLUSHALL, the family's preamble, SELECT 0), so that later steps compare equal
states again. Deleting only the keys the step named is not enough: a transaction one engine
aborted and another ran may have moved data to another database (SWAPDB, MOVE, SELECT).
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
from respmatrix.fuzz.features import (
    KEY_STATE,
    TRANSACTION_REFUSALS,
    error_features,
    features_of,
    numeric_sort,
)
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


# Where a SORT's key holds an empty element, by type: the probe and its "no" reply.
_EMPTY_PROBES = {"list": ("LPOS", None), "set": ("SISMEMBER", 0), "zset": ("ZSCORE", None)}


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
        # The runner's replay phase (the example database's examples): recorded apart, since
        # it depends on the database's content and not on the seed.
        self.replaying = False
        self.replay_digests: list[str] = []
        self.findings: dict[str, Finding] = {}
        self.explained: dict[tuple[str, str, str], Explained] = {}
        self.steps = Counter[str]()  # family -> steps sent
        self.examples = Counter[str]()  # family -> examples run
        self._in_multi = False
        self._queued: list[tuple[list[Any], set[str]]] = []
        # engine label -> entries that explained a step queued in the current transaction
        self._queued_entries: dict[str, set[str]] = {}
        self._resync_pending = False
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
        self._in_multi, self._queued, self._resync_pending = False, [], False
        self._queued_entries = {}
        for engine in self.engines:
            conn = self.connection(engine, protocol)
            # RESET ends MULTI/WATCH/SELECT/tracking and returns to RESP2.
            setup = [("RESET",), *([("HELLO", "3")] if protocol == 3 else [])]
            setup += [("FLUSHALL", "SYNC"), *(tuple(c) for c in PREAMBLE.get(family, []))]
            for command, reply in zip(setup, conn.pipeline(setup), strict=True):
                if isinstance(reply, RespError):
                    raise RuntimeError(f"{engine.label}: {' '.join(command)} failed: {reply}")
        self.example = Example(family, protocol, preamble_of(family, protocol), replay=replay)
        if not replay and not self.replaying:
            self.examples[family] += 1

    def _finish_example(self) -> None:
        if self.example is not None and not self.example.replay:
            digest = hashlib.sha256(format_script(self.example.commands).encode()).hexdigest()
            example = self.example
            digests = self.replay_digests if self.replaying else self.example_digests
            digests.append(f"{example.family}:resp{example.protocol}:{digest[:16]}")
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
    def features(self, args: Sequence[Any]) -> tuple[set[str], str | None]:
        """The features of ``args`` in the engines' current state, and its key's TYPE (None
        inside MULTI or for a command whose features do not depend on it)."""
        name = command_name(args)
        at = KEY_STATE.get(name)
        if at is None or len(args) <= at or self._in_multi:
            # inside MULTI the state at EXEC time is unknown: features_of includes every tag
            return features_of(args), None
        key_type = self._key_type(args[at])
        empty = None
        if name in ("SORT", "SORT_RO") and numeric_sort(args):
            empty = self._holds_empty_element(args[at], key_type)
        return features_of(args, key_type, empty), key_type

    def send(self, args: Sequence[Any]) -> Verdict:
        """Send one command to every engine, compare, record; raise if unexplained."""
        assert self.example is not None, "begin() first"
        if not self.example.replay:
            self._check_budget()
        args = list(args)
        name = command_name(args)
        features, key_type = self.features(args)
        queued_for_exec = list(self._queued) if name == "EXEC" else []
        for _, queued_features in queued_for_exec:
            features |= queued_features
        replay = self.example.replay
        self.example.commands.append(args)
        if not replay and not self.replaying:
            self.steps[self.example.family] += 1
        raw = self._round_trip(args)
        replies = {
            label: self._normalise(args, reply, queued_for_exec, key_type)
            for label, reply in raw.items()
        }
        queue_features = set(features)
        if all(isinstance(r, RespError) for r in raw.values()):
            refusal = error_features(args, self._in_multi)
            features |= refusal
            # what a refusal does to the transaction carries to its EXEC; its text does not
            queue_features |= refusal & TRANSACTION_REFUSALS
        features |= _exec_error_features(queued_for_exec, list(raw.values()))
        earlier = self._queued_entries if name == "EXEC" else None
        verdict = classify(features, self.specs, replies, self.registry, earlier)
        queued = self._in_multi  # this step was queued (or refused) inside a transaction
        self._track_transaction(name, args, queue_features, raw)
        if queued and self._in_multi:
            # every entry that may explain a queued step's difference may explain the EXEC's
            for label in verdict.explained:
                found = self.registry.applicable(features, self.specs[label])
                self._queued_entries.setdefault(label, set()).update(e.id for e in found)
        if replay:
            return verdict
        if verdict.kind == "fail":
            self._record_failure(name, sorted(features), verdict)
            if f"{self.example.family} {name}" not in self.known_failures:
                raise difference_class(f"{self.example.family} {name}")(
                    f"{name}: the engines disagree: "
                    + "; ".join(f"{','.join(g)} -> {r!r}" for g, r in verdict.groups())
                )
        elif verdict.kind == "explained":
            self._record_explained(verdict)
        if verdict.kind != "same":
            self._resync_pending = True
        # once out of a transaction (now, or at the EXEC/DISCARD that ends it)
        if self._resync_pending and not self._in_multi:
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

    def _normalise(
        self, args: list[Any], reply: Any, queued: list[Any], key_type: str | None
    ) -> Any:
        if queued and isinstance(reply, list) and len(reply) == len(queued):
            return [normalise(q[0], r) for q, r in zip(queued, reply, strict=True)]
        return normalise(args, reply, key_type)

    def _key_type(self, key: Any) -> str | None:
        if self._in_multi:
            return None
        protocol = self.example.protocol if self.example else 2
        reply = self.connection(self.engines[0], protocol).call("TYPE", key)
        return reply if isinstance(reply, str) else None

    def _holds_empty_element(self, key: Any, key_type: str | None) -> bool | None:
        probe = _EMPTY_PROBES.get(key_type or "")
        if probe is None:
            return False if key_type in ("none", "string") else None
        protocol = self.example.protocol if self.example else 2
        reply = self.connection(self.engines[0], protocol).call(probe[0], key, "")
        return None if isinstance(reply, RespError) else reply != probe[1]

    def _track_transaction(self, name: str, args: list[Any], features: set[str], raw: dict) -> None:
        ok = [not isinstance(r, RespError) for r in raw.values()]
        if name == "MULTI" and all(ok) and not self._in_multi:
            self._in_multi, self._queued, self._queued_entries = True, [], {}
        elif name in ("EXEC", "DISCARD") and self._in_multi:
            self._in_multi, self._queued = False, []
        elif self._in_multi:
            self._queued.append((args, features))

    def _resync(self) -> None:
        """After a difference, empty every engine and select database 0: the states agree
        again whatever the step did (wrote, moved data between databases, changed the
        selected one, loaded a library on one engine only)."""
        self._resync_pending = False
        assert self.example is not None
        for command in resync_commands(self.example.family):
            self.example.commands.append(command)
            # replies may differ (a library one engine refused to load); the states agree after
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

    def merge_finding(self, signature: str, finding: Finding) -> None:
        """Add a finding of another phase: the shorter script is kept, the counts add up."""
        known = self.findings.get(signature)
        if known is None:
            self.findings[signature] = finding
        elif finding.size() < known.size():
            finding.seen += known.seen
            self.findings[signature] = finding
        else:
            known.seen += finding.seen

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


def resync_commands(family: str) -> list[list[Any]]:
    """The script lines that bring every engine back to the same (empty) state."""
    return [["FLUSHALL"], *PREAMBLE.get(family, []), ["SELECT", "0"]]


def _exec_error_features(queued: list[tuple[list[Any], set[str]]], raw: list[Any]) -> set[str]:
    """EXEC: the error-text features of each queued command every engine answered with an
    error (as :func:`error_features` does for a command sent alone)."""
    if not queued or not all(isinstance(r, list) and len(r) == len(queued) for r in raw):
        return set()
    found: set[str] = set()
    for index, (args, _) in enumerate(queued):
        if all(isinstance(r[index], RespError) for r in raw):
            found |= error_features(args, False)
    return found


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
