"""``respmatrix fuzz``: start the engines, run the machines, write results, report, emit cases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from respmatrix.fuzz.machines import MACHINES

DEFAULT_BUDGET = 300.0


def add_parser(commands: Any, handler: Any) -> None:
    """Register ``fuzz`` on the CLI's subparsers, with ``handler`` as its function."""
    fuzz = commands.add_parser(
        "fuzz",
        help="differential fuzzing: the same generated commands on every engine, compared",
        description="Send hypothesis-generated command sequences to every engine in lockstep, "
        "explain differences through the divergence registry and shrink the others to minimal "
        "scripts. Exit status: 0 nothing unexplained, 1 unexplained differences, 2 bad input, "
        "130 interrupted.",
    )
    fuzz.add_argument("--engines", default="all", help="ids, lines or 'all' (default: all)")
    fuzz.add_argument(
        "--families",
        default=None,
        help=f"machines, comma separated (default: all: {', '.join(MACHINES)})",
    )
    fuzz.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help=f"wall-clock seconds for replaying and generating (default: "
        f"{DEFAULT_BUDGET:.0f}); where a run stops depends on the machine's speed, use "
        "--examples for a bound that does not",
    )
    fuzz.add_argument(
        "--seed",
        type=int,
        default=0,
        help="the run's seed (default: 0): the same seed generates the same examples; the "
        "example database's examples are replayed first, in a phase that depends on the "
        "database only (its scripts are listed in results.json, fuzz.replayed)",
    )
    fuzz.add_argument(
        "--examples",
        type=int,
        default=100,
        help="examples per family and protocol, if the budget allows (default: 100); with a "
        "budget the run cannot reach, the same seed does the same work on any machine",
    )
    fuzz.add_argument("--protocols", default="2,3", help="2, 3 or 2,3 (default: 2,3)")
    fuzz.add_argument(
        "--out",
        type=Path,
        default=Path("reports/fuzz"),
        help="results folder (default: reports/fuzz)",
    )
    fuzz.add_argument(
        "--emit-case",
        type=Path,
        default=None,
        metavar="DIR",
        help="write each unexplained difference as a case file under DIR/<family>/<COMMAND>/",
    )
    fuzz.add_argument(
        "--no-database",
        action="store_true",
        help="do not read or write hypothesis's example database (in the respmatrix cache): "
        "no replay phase, and nothing found is replayed first next time",
    )
    fuzz.add_argument(
        "--no-install", action="store_true", help="fail instead of installing missing engines"
    )
    fuzz.set_defaults(func=handler)


def parse_protocols(text: str) -> list[int]:
    try:
        protocols = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        protocols = []
    if not protocols or not set(protocols) <= {2, 3}:
        raise ValueError(f"--protocols takes 2, 3 or 2,3, got {text!r}")
    return protocols


def parse_families(text: str | None) -> list[str]:
    if not text:
        return list(MACHINES)
    families = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in families if f not in MACHINES]
    if unknown or not families:
        raise ValueError(
            f"unknown fuzz families: {', '.join(unknown) or text!r}; known: {', '.join(MACHINES)}"
        )
    return list(dict.fromkeys(families))


def run(args: argparse.Namespace, error: type[Exception], install: Any) -> int:
    """The command; ``error`` is the CLI's CommandError, ``install`` its engine installer."""
    from respmatrix import results
    from respmatrix.catalog import EngineCatalog
    from respmatrix.fuzz.emit import emit_case
    from respmatrix.fuzz.lockstep import Engine
    from respmatrix.fuzz.results import finding_case, results_document
    from respmatrix.fuzz.runner import FuzzConfig, default_database_dir, run_fuzz
    from respmatrix.pool import EnginePool
    from respmatrix.registry import DivergenceRegistry
    from respmatrix.reporting.fuzz import fuzz_section
    from respmatrix.store import EngineStore

    try:
        protocols = parse_protocols(args.protocols)
        families = parse_families(args.families)
    except ValueError as exc:
        raise error(str(exc), 2) from None
    if args.budget <= 0 or args.examples <= 0:
        raise error("--budget and --examples must be positive", 2)
    catalog = EngineCatalog.load()
    specs = catalog.select(args.engines)
    if len(specs) < 2:
        raise error("differential fuzzing needs at least two engines (--engines)", 2)
    store = EngineStore()
    missing = [s.id for s in specs if not store.is_installed(s)]
    if missing and args.no_install:
        raise error(f"not installed: {', '.join(missing)} (run: respmatrix engines install)")
    install(specs)
    registry = DivergenceRegistry.load()
    config = FuzzConfig(
        families=families,
        protocols=protocols,
        seed=args.seed,
        examples=args.examples,
        budget=args.budget,
        database_dir=None if args.no_database else default_database_dir(),
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    pool = EnginePool(catalog, log_dir=out / "logs")
    try:
        engines, facts = [], {}
        for spec in specs:
            running = pool.engine(spec.id)
            endpoint = running.endpoint
            engines.append(Engine(spec.id, spec, endpoint.host, endpoint.port))
            facts[spec.id] = {k: v for k, v in running.facts.items() if k != "commands"}
        print(
            f"fuzzing {', '.join(families)} on {', '.join(s.id for s in specs)} "
            f"(seed {config.seed}, budget {config.budget:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
        outcome = run_fuzz(engines, registry, config, progress=_progress)
        doc = results_document(outcome, facts, registry)
        path = out / "results.json"
        results.write(doc, path)
        report = out / "fuzz.md"
        report.write_text("# respmatrix fuzz\n" + "\n".join(fuzz_section(doc)) + "\n", "utf-8")
        emitted = []
        if args.emit_case is not None:
            for finding in outcome.lockstep.findings.values():
                if finding.reproduced:
                    emitted.append(emit_case(outcome.lockstep, finding, args.emit_case))
            outcome.lockstep.close()
    finally:
        pool.close()
    _summary(outcome, finding_case)
    for case_path in emitted:
        print(f"case:    {case_path}")
    print(f"results: {path}\nreport:  {report}")
    # A harness error (an engine that stopped answering...) fails the run like a finding.
    return 1 if outcome.lockstep.findings or outcome.errors else 0


def _progress(line: str) -> None:
    print(f"  {line}", file=sys.stderr, flush=True)


def _summary(outcome: Any, case_of: Any) -> None:
    lockstep = outcome.lockstep
    print(
        f"{sum(lockstep.examples.values())} examples, {sum(lockstep.steps.values())} steps in "
        f"{outcome.elapsed:.0f}s"
        + (" (budget reached)" if outcome.stopped_by_budget else "")
        + f": {len(lockstep.findings)} unexplained, {len(lockstep.explained)} explained "
        "by the registry"
    )
    for error in outcome.errors:
        print(f"harness error: {error}")
    for finding in lockstep.findings.values():
        print(f"\n== {case_of(finding)} (resp{finding.protocol}, seen {finding.seen}x)")
        for labels, reply in finding.groups:
            print(f"   {', '.join(labels)}: {reply}")
        print(finding.script, end="")
