"""A fuzz run: which machines run, on which protocol, with which seed, until when.

A run has two phases. First, when there is an example database (``<cache>/fuzz/examples``,
where hypothesis keeps failing examples, keyed per machine and protocol), its examples are
replayed, pair by pair, with a fixed seed: this phase depends on the database's content, never
on the run's seed, and each replayed script's digest is recorded (``Lockstep.replay_digests``).
Then every (family, protocol) pair generates in chunks of ``CHUNK`` examples, round robin, each
chunk with a seed derived from the run's seed and without reading the database, so a seed
always produces the same scripts in the same order whatever the database holds, and a budget
only cuts the list short (``--examples`` bounds the work independently of the machine's speed).
The generation phase starts from a clean record: the replays' findings are merged in at the end,
so they cannot change what it does. A difference already found in an earlier chunk of a phase is
counted, not shrunk again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import unittest
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.stateful import run_state_machine_as_test

from respmatrix.fuzz.lockstep import (
    BudgetExhausted,
    Engine,
    Finding,
    Lockstep,
    UnexplainedDifference,
)
from respmatrix.fuzz.machines import MACHINES
from respmatrix.fuzz.minimise import minimise
from respmatrix.registry import DivergenceRegistry

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

CHUNK = 10  # examples per chunk
STEPS = 25  # most steps per example
REPLAY_SEED = 0  # the replay phase's seed: the same whatever the run's


class ProtocolDatabase(ExampleDatabase):
    """The example database under keys of one protocol: hypothesis keys examples by machine,
    and the RESP2 and RESP3 runs of a machine must not replay each other's examples."""

    def __init__(self, inner: ExampleDatabase, protocol: int) -> None:
        super().__init__()
        self.inner, self.prefix = inner, f"resp{protocol}:".encode()

    def save(self, key: bytes, value: bytes) -> None:
        self.inner.save(self.prefix + key, value)

    def fetch(self, key: bytes) -> Any:
        return self.inner.fetch(self.prefix + key)

    def delete(self, key: bytes, value: bytes) -> None:
        self.inner.delete(self.prefix + key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.inner.move(self.prefix + src, self.prefix + dest, value)


def default_database_dir() -> Path:
    """$RESPMATRIX_HOME/fuzz/examples, else the user cache folder (like the engine store)."""
    home = os.environ.get("RESPMATRIX_HOME")
    root = Path(home).expanduser() if home else platformdirs.user_cache_path("respmatrix")
    return root / "fuzz" / "examples"


@dataclass
class FuzzConfig:
    families: list[str]
    protocols: list[int] = field(default_factory=lambda: [2, 3])
    seed: int = 0
    examples: int = 100  # per family and protocol
    budget: float | None = None  # wall seconds
    database_dir: Path | None = None  # None: no example database


@dataclass
class FuzzOutcome:
    lockstep: Lockstep
    config: FuzzConfig
    elapsed: float
    stopped_by_budget: bool
    chunks: int
    errors: list[str]


def chunk_seed(seed: int, family: str, protocol: int, index: int) -> int:
    digest = hashlib.sha256(f"{seed}:{family}:{protocol}:{index}".encode()).hexdigest()
    return int(digest[:12], 16)


def plan(config: FuzzConfig) -> list[tuple[str, int, int, int]]:
    """(family, protocol, chunk index, examples) in the order they run."""
    pairs = [(f, p) for f in config.families for p in config.protocols]
    chunks_each = -(-config.examples // CHUNK)
    order = []
    for index in range(chunks_each):
        size = min(CHUNK, config.examples - index * CHUNK)
        order += [(f, p, index, size) for f, p in pairs]
    return order


def run_fuzz(
    engines: Sequence[Engine],
    registry: DivergenceRegistry,
    config: FuzzConfig,
    progress: Callable[[str], None] | None = None,
) -> FuzzOutcome:
    unknown = sorted(set(config.families) - MACHINES.keys())
    if unknown:
        raise ValueError(f"unknown fuzz families: {', '.join(unknown)}")
    started = time.monotonic()
    deadline = started + config.budget if config.budget else None
    lockstep = Lockstep(engines, registry, deadline)
    database = DirectoryBasedExampleDatabase(config.database_dir) if config.database_dir else None
    stopped, chunks, errors = False, 0, []

    def run_chunk(family: str, protocol: int, label: str, seed: int, **chosen: Any) -> bool:
        """One hypothesis run of a machine; False when the budget is spent."""
        machine = MACHINES[family]
        machine.lockstep, machine.protocol = lockstep, protocol
        machine._hypothesis_internal_use_seed = seed
        lockstep.known_failures = set(lockstep.findings)
        chosen = settings(
            stateful_step_count=STEPS,
            deadline=None,
            database=ProtocolDatabase(database, protocol) if database else None,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=True,
            verbosity=Verbosity.quiet,
            print_blob=False,
            **chosen,
        )
        try:
            run_state_machine_as_test(machine, settings=chosen)
        except BudgetExhausted:
            return False
        except (UnexplainedDifference, BaseExceptionGroup):
            pass  # recorded by the lockstep as it happened
        except unittest.SkipTest:
            pass  # a replay with nothing saved for this machine and protocol: nothing to run
        except Exception as exc:  # a flaky replay and the like: note it, go on
            errors.append(f"{family} resp{protocol} {label}: {type(exc).__name__}: {exc}")
        finally:
            lockstep.end()
        if progress:
            progress(
                f"{family} resp{protocol} {label}: "
                f"{len(lockstep.findings)} unexplained, {len(lockstep.explained)} explained"
            )
        return True

    try:
        replayed: dict[str, Finding] = {}
        if database is not None:
            lockstep.replaying = True
            for family in config.families:
                for protocol in config.protocols:
                    seed = chunk_seed(REPLAY_SEED, family, protocol, -1)
                    # max_examples bounds how many non-minimal examples hypothesis samples
                    if not run_chunk(family, protocol, "replay", seed, max_examples=CHUNK,
                                     phases=[Phase.reuse, Phase.shrink]):  # fmt: skip
                        stopped = True
                        break
                if stopped:
                    break
            lockstep.replaying = False
            replayed, lockstep.findings = lockstep.findings, {}
        for family, protocol, index, size in [] if stopped else plan(config):
            seed = chunk_seed(config.seed, family, protocol, index)
            if not run_chunk(family, protocol, f"chunk {index}", seed, max_examples=size,
                             phases=[Phase.explicit, Phase.generate, Phase.shrink]):  # fmt: skip
                stopped = True
                break
            chunks += 1
        for signature, finding in replayed.items():
            lockstep.merge_finding(signature, finding)
        # Outside the budget on purpose: a finding is worth its few hundred replays.
        for finding in lockstep.findings.values():
            finding.reproduced = minimise(lockstep, finding)
    finally:
        lockstep.close()
    return FuzzOutcome(lockstep, config, time.monotonic() - started, stopped, chunks, errors)
