"""``respmatrix migrate``: run the migration matrix and merge it into a results file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from respmatrix.migration import METHODS, RETRY_FACTOR


def add_parser(commands: Any) -> None:
    """Register ``migrate`` on the CLI's sub-command parser."""
    migrate = commands.add_parser(
        "migrate",
        help="can data move between engines? DUMP/RESTORE, RDB file and replication, every pair",
        description="For every ordered pair of engines (producer -> consumer, same-engine pairs "
        "as the control) and each method, write a representative dataset on the producer, move "
        "it, and compare the logical content on the consumer. Results (family 'migration') are "
        "merged into OUT/results.json; matrix.md and index.html get a 'Migration paths' table. "
        "Exit status: 0 every cell measured, 1 some cell could not be measured, 2 bad input.",
    )
    migrate.add_argument(
        "--engines",
        default=None,
        help="ids, lines or 'all' (default: the base engines, without module variants)",
    )
    migrate.add_argument(
        "--producers", default=None, help="only these producers (default: --engines)"
    )
    migrate.add_argument(
        "--consumers", default=None, help="only these consumers (default: --engines)"
    )
    migrate.add_argument(
        "--methods",
        default=",".join(METHODS),
        help=f"comma separated, of {', '.join(METHODS)} (default: all)",
    )
    migrate.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds a replication, an RDB load or a reply may take before it counts as stuck; "
        f"a cell where a reply timed out is measured once more with {RETRY_FACTOR}x that "
        "(default 10)",
    )
    migrate.add_argument(
        "-j", "--jobs", type=int, default=2, help="producers measured at once (default 2)"
    )
    migrate.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="folder of the results file to merge into (default: reports)",
    )
    migrate.add_argument(
        "--no-install", action="store_true", help="fail instead of installing missing engines"
    )
    migrate.set_defaults(func=cmd_migrate)


def _select(catalog: Any, selector: str | None) -> list[Any]:
    if selector is None:
        return [spec for spec in catalog if "+" not in spec.id]
    return catalog.select(selector)


def cmd_migrate(args: argparse.Namespace) -> int:
    from respmatrix import results
    from respmatrix.catalog import EngineCatalog
    from respmatrix.cli import EXIT_FAILED, EXIT_USAGE, CommandError, _render, install_engines
    from respmatrix.migration.matrix import merge_into, results_document, run_matrix
    from respmatrix.store import EngineStore

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise CommandError(
            f"unknown methods: {', '.join(unknown) or '(none given)'}; known: {', '.join(METHODS)}",
            EXIT_USAGE,
        )
    if args.timeout <= 0 or args.jobs < 1:
        raise CommandError("--timeout must be > 0 and --jobs >= 1", EXIT_USAGE)
    catalog = EngineCatalog.load()
    engines = _select(catalog, args.engines)
    producers = _select(catalog, args.producers) if args.producers else engines
    consumers = _select(catalog, args.consumers) if args.consumers else engines
    store = EngineStore()
    needed = list({s.id: s for s in [*producers, *consumers]}.values())
    missing = [s.id for s in needed if not store.is_installed(s)]
    if missing and args.no_install:
        raise CommandError(
            f"engines not installed: {', '.join(missing)}; "
            f"run `respmatrix engines install {' '.join(missing)}`"
        )
    install_engines(needed)

    out: Path = args.out
    results_path = out / "results.json"
    existing = results.load(results_path) if results_path.exists() else None
    pairs = len(producers) * len(consumers)
    print(
        f"migration: {len(producers)} producers x {len(consumers)} consumers = {pairs} pairs, "
        f"methods {', '.join(methods)}",
        file=sys.stderr,
        flush=True,
    )
    done: set[tuple[str, str, str]] = set()

    def progress(outcome: Any) -> None:
        key = (outcome.producer, outcome.consumer, outcome.method)
        if key not in done:
            done.add(key)
            if len(done) % 16 == 0:
                print(f"  {len(done)}/{pairs * len(methods)}", file=sys.stderr, flush=True)

    outcomes, facts = run_matrix(
        producers, consumers, store, methods, jobs=args.jobs, timeout=args.timeout,
        progress=progress,
    )  # fmt: skip
    doc = results_document(outcomes, facts)
    if existing is not None:
        doc = merge_into(existing, doc)
    results.write(doc, results_path)
    from respmatrix.reporting.migration import migration_tables, render_markdown

    print("\n".join(render_markdown(migration_tables(doc))).strip())
    matrix, page = _render(results_path, out)
    print(f"\nresults: {results_path}\nmatrix:  {matrix}\npage:    {page}")
    unmeasured = [o for o in outcomes if o.outcome == "error"]
    if unmeasured:
        print(f"respmatrix: {len(unmeasured)} cells could not be measured", file=sys.stderr)
        return EXIT_FAILED
    return 0
