"""A fuzz run: which machines run, on which protocol, with which seed, until when.

Every (family, protocol) pair runs in chunks of ``CHUNK`` examples, round robin, each chunk with
a seed derived from the run's seed, so a seed always produces the same scripts in the same order
and a budget only cuts the list short. Hypothesis keeps failing examples in its example database
(``<cache>/fuzz/examples``); the first chunk of each pair replays them before generating.
A difference already found in an earlier chunk is counted, not shrunk again.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import run_state_machine_as_test

from respmatrix.fuzz.lockstep import BudgetExhausted, Engine, Lockstep, UnexplainedDifference
from respmatrix.fuzz.machines import MACHINES
from respmatrix.fuzz.minimise import minimise
from respmatrix.registry import DivergenceRegistry

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

CHUNK = 10  # examples per chunk
STEPS = 25  # most steps per example


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
    try:
        for family, protocol, index, size in plan(config):
            machine = MACHINES[family]
            machine.lockstep, machine.protocol = lockstep, protocol
            machine._hypothesis_internal_use_seed = chunk_seed(config.seed, family, protocol, index)
            lockstep.known_failures = set(lockstep.findings)
            phases = [Phase.explicit, Phase.generate, Phase.shrink]
            if index == 0:
                phases.insert(1, Phase.reuse)
            chosen = settings(
                max_examples=size,
                stateful_step_count=STEPS,
                deadline=None,
                database=database,
                phases=phases,
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=True,
                verbosity=Verbosity.quiet,
                print_blob=False,
            )
            try:
                run_state_machine_as_test(machine, settings=chosen)
            except BudgetExhausted:
                stopped = True
                break
            except (UnexplainedDifference, BaseExceptionGroup):
                pass  # recorded by the lockstep as it happened
            except Exception as exc:  # a flaky replay and the like: note it, go on
                errors.append(f"{family} resp{protocol} chunk {index}: {type(exc).__name__}: {exc}")
            finally:
                lockstep.end()
            chunks += 1
            if progress:
                progress(
                    f"{family} resp{protocol} chunk {index}: "
                    f"{len(lockstep.findings)} unexplained, {len(lockstep.explained)} explained"
                )
        # Outside the budget on purpose: a finding is worth its few hundred replays.
        for finding in lockstep.findings.values():
            finding.reproduced = minimise(lockstep, finding)
    finally:
        lockstep.close()
    return FuzzOutcome(lockstep, config, time.monotonic() - started, stopped, chunks, errors)
