"""The ``respmatrix`` command line: engines, run, coverage, report, diff.

Every expected failure (unknown id, missing binary, corrupt download, malformed results file...)
ends in one ``respmatrix: error: ...`` line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from respmatrix import __version__

EXIT_FAILED = 1  # the run found failures, or an operation failed
EXIT_USAGE = 2  # bad input: unknown id, malformed file, bad option


class CommandError(Exception):
    """An expected failure, reported as one line."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra and getattr(args, "func", None) is not cmd_run:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra
    if not hasattr(args, "func"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args) or 0
    except CommandError as exc:
        print(f"respmatrix: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("respmatrix: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into head and the like
        sys.stderr.close()
        return 0
    except Exception as exc:
        known = _expected_error(exc)
        if known is None:
            raise
        print(f"respmatrix: error: {exc}", file=sys.stderr)
        return known


def _expected_error(exc: Exception) -> int | None:
    """Exit code for the error types a user can cause, None for a bug (show the traceback)."""
    from respmatrix.catalog import UnknownEngineError
    from respmatrix.clients import UnknownClientError
    from respmatrix.datafiles import DataFileError
    from respmatrix.launcher import EngineIdentityError, EngineStartError
    from respmatrix.results import MergeConflictError, ResultsFileError
    from respmatrix.sources import EngineStoreError

    if isinstance(exc, UnknownEngineError | UnknownClientError | ResultsFileError | DataFileError):
        return EXIT_USAGE
    if isinstance(
        exc, EngineStoreError | EngineStartError | EngineIdentityError | MergeConflictError
    ):
        return EXIT_FAILED
    return None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="respmatrix",
        description="Run compatibility suites against real Redis and Valkey engines.",
    )
    parser.add_argument("--version", action="version", version=f"respmatrix {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    engines = commands.add_parser("engines", help="the local engine store")
    engine_cmds = engines.add_subparsers(title="engine commands", metavar="COMMAND")
    listing = engine_cmds.add_parser("list", help="list catalog engines and whether installed")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(func=cmd_engines_list)
    install = engine_cmds.add_parser("install", help="download, verify and install engines")
    install.add_argument(
        "ids", nargs="*", default=["all"], help="engine ids, lines or 'all' (default: all)"
    )
    install.set_defaults(func=cmd_engines_install)
    uninstall = engine_cmds.add_parser("uninstall", help="remove installed engines")
    uninstall.add_argument("ids", nargs="+")
    uninstall.set_defaults(func=cmd_engines_uninstall)
    start = engine_cmds.add_parser("start", help="start an engine and keep it running")
    start.add_argument("id")
    start.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    start.add_argument(
        "--provider", default="binary", choices=["binary", "docker"], help="(default: binary)"
    )
    start.add_argument("--image", default=None, help="with --provider docker: the image to run")
    start.set_defaults(func=cmd_engines_start)
    build_image = engine_cmds.add_parser(
        "build-image",
        help="build local Docker images (respmatrix/ID:VERSION) from the engine store",
    )
    build_image.add_argument("ids", nargs="+", help="engine ids, lines or 'all'")
    build_image.add_argument(
        "--no-install", action="store_true", help="fail instead of installing missing engines"
    )
    build_image.set_defaults(func=cmd_engines_build_image)

    run = commands.add_parser(
        "run",
        help="run the suites and write results.json and matrix.md",
        description="Run the suites; arguments after -- go to pytest unchanged.",
    )
    run.add_argument("--engines", default="all", help="ids, lines or 'all' (default: all)")
    run.add_argument("--clients", default="all", help="client modes or 'all' (default: all)")
    run.add_argument("--protocols", default="2,3", help="2, 3 or 2,3 (default: 2,3)")
    run.add_argument("--families", default=None, help="families, comma separated (default: all)")
    run.add_argument(
        "--provider",
        default="binary",
        choices=["binary", "docker", "external"],
        help="how engines are started (default: binary, the local engine store)",
    )
    run.add_argument(
        "--engine-url",
        action="append",
        default=[],
        metavar="ID=URL",
        help="use a running server for an engine id",
    )
    run.add_argument(
        "--engine-image",
        action="append",
        default=[],
        metavar="ID=IMAGE",
        help="with --provider docker: the image to run for an engine id",
    )
    run.add_argument(
        "-n",
        "--workers",
        default="auto",
        help="pytest-xdist workers, or 0 for one process (default: auto, one more than the "
        "cores this process may use)",
    )
    run.add_argument(
        "--out",
        default="reports",
        type=Path,
        help="folder for results.json, matrix.md and logs (default: reports)",
    )
    run.add_argument("--suites", default=None, type=Path, help="another folder of cases")
    run.add_argument(
        "--no-install", action="store_true", help="fail instead of installing missing engines"
    )
    run.add_argument(
        "--versioned-clients",
        action="store_true",
        help="name clients with their package version (redis-py@5.3.0) in the results, so runs "
        "with several versions of one client merge side by side (the tox client envs do)",
    )
    run.set_defaults(func=cmd_run)

    coverage = commands.add_parser(
        "coverage", help="which engine commands the suites exercise, per family and engine"
    )
    coverage.add_argument("--engines", default="all", help="engines to ask (default: all)")
    coverage.add_argument(
        "--results",
        type=Path,
        default=None,
        help="read the engines' command inventories from a results file",
    )
    coverage.add_argument("--families", default=None, help="only these families")
    coverage.add_argument("--json", action="store_true", help="machine-readable output")
    coverage.add_argument(
        "--fail-under",
        type=float,
        default=None,
        metavar="PERCENT",
        help="exit 1 if a counted family is below this coverage",
    )
    coverage.set_defaults(func=cmd_coverage)

    report = commands.add_parser("report", help="results files: merge, render, compare")
    report_cmds = report.add_subparsers(title="report commands", metavar="COMMAND")
    merge = report_cmds.add_parser("merge", help="merge results files (e.g. CI shards)")
    merge.add_argument("inputs", nargs="+", type=Path)
    merge.add_argument("-o", "--output", type=Path, required=True)
    merge.set_defaults(func=cmd_report_merge)
    render = report_cmds.add_parser(
        "render", help="render matrix.md and the HTML page (index.html) from a results file"
    )
    render.add_argument("results", type=Path)
    render.add_argument(
        "--out", type=Path, default=None, help="output folder (default: beside the results file)"
    )
    render.set_defaults(func=cmd_report_render)
    compare = report_cmds.add_parser(
        "compare",
        help="cells that got worse from one results file to another (exit 1 if any)",
        description="List the (case, engine, client, protocol) cells of OLD that got worse in "
        "NEW: pass -> anything else, divergent/unsupported -> fail/error, or gone. "
        "Exit status: 0 nothing worse, 1 something worse, 2 bad input.",
    )
    compare.add_argument("old", type=Path, metavar="OLD.json")
    compare.add_argument("new", type=Path, metavar="NEW.json")
    compare.add_argument("--json", action="store_true", help="machine-readable output")
    compare.set_defaults(func=cmd_report_compare)

    diff = commands.add_parser(
        "diff",
        help="the cutover view: features whose results differ between two engines",
        description="Every feature whose results differ between engines A and B (e.g. "
        "redis-7.2 valkey-9.1), grouped by family, with the registry notes. "
        "Exit status: 0 no difference, 1 some difference, 2 bad input.",
    )
    diff.add_argument("a", metavar="A", help="engine id, e.g. redis-7.2")
    diff.add_argument("b", metavar="B", help="engine id, e.g. valkey-9.1")
    diff.add_argument(
        "--results",
        type=Path,
        default=Path("reports/results.json"),
        help="results file (default: reports/results.json)",
    )
    diff.add_argument("--json", action="store_true", help="machine-readable output")
    diff.set_defaults(func=cmd_diff)

    from respmatrix.fuzz.command import add_parser as add_fuzz_parser

    add_fuzz_parser(commands, cmd_fuzz)
    from respmatrix import audit
    from respmatrix.migration import command as migrate

    migrate.add_parser(commands)
    audit.add_parser(commands)
    return parser


# -- engines ------------------------------------------------------------------------------------


def _catalog() -> Any:
    from respmatrix.catalog import EngineCatalog

    return EngineCatalog.load()


def _store() -> Any:
    from respmatrix.store import EngineStore

    return EngineStore()


def cmd_engines_list(args: argparse.Namespace) -> int:
    catalog, store = _catalog(), _store()
    statuses = [store.status(spec) for spec in catalog]
    if args.json:
        rows = [
            {
                "id": s.id,
                "line": s.line,
                "version": s.version,
                "installed": s.installed,
                "path": str(s.path),
                "image": catalog.get(s.id).image,
            }
            for s in statuses
        ]
        print(json.dumps(rows, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"engines (store: {store.root})")
    for column in ("id", "line", "version", "installed", "path"):
        table.add_column(column)
    for status in statuses:
        table.add_row(
            status.id,
            status.line,
            status.version,
            "yes" if status.installed else "no",
            str(status.path) if status.installed else "",
        )
    Console().print(table)
    return 0


class LineProgress:
    """Progress as plain lines, for logs and CI where a live display would print nothing."""

    def __init__(self) -> None:
        self._tasks: dict[int, tuple[str, float]] = {}

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        task = len(self._tasks) + 1
        self._tasks[task] = (description, time.monotonic())
        print(f"  {description} ...", file=sys.stderr, flush=True)
        return task

    def update(self, task: int, **_: Any) -> None:
        pass

    def remove_task(self, task: int) -> None:
        description, began = self._tasks.pop(task)
        print(
            f"  {description}: done in {time.monotonic() - began:.1f}s", file=sys.stderr, flush=True
        )


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    if not sys.stderr.isatty():
        yield LineProgress()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False, console=Console(stderr=True)) as progress:
        yield progress


def install_engines(specs: Sequence[Any]) -> None:
    """Install what is missing, with a progress display; installed engines cost nothing."""
    store = _store()
    missing = [spec for spec in specs if not store.is_installed(spec)]
    if not missing:
        return
    with _progress() as progress:
        for spec in missing:
            store.install(spec, progress=progress)


def cmd_engines_install(args: argparse.Namespace) -> int:
    specs = _catalog().select(args.ids)
    install_engines(specs)
    store = _store()
    for spec in specs:
        print(f"{spec.id:<11} {spec.line} {spec.version:<7} {store.engine_dir(spec)}")
    return 0


def cmd_engines_uninstall(args: argparse.Namespace) -> int:
    store = _store()
    for spec in _catalog().select(args.ids):
        if spec.base:  # removing the shared folder would take the base engine with it
            print(f"{spec.id}: runs from {spec.base}'s install; uninstall {spec.base} to remove it")
            continue
        removed = store.uninstall(spec)
        print(f"{spec.id}: {'removed' if removed else 'not installed'}")
    return 0


def cmd_engines_build_image(args: argparse.Namespace) -> int:
    from respmatrix.providers.docker import docker_client
    from respmatrix.providers.images import build_image

    specs = _catalog().select(args.ids)
    store = _store()
    missing = [spec.id for spec in specs if not store.is_installed(spec)]
    if missing and args.no_install:
        raise CommandError(f"engines not installed: {', '.join(missing)}")
    install_engines(specs)
    client = docker_client()
    done: set[str] = set()
    try:
        for spec in specs:
            if spec.install_id not in done:  # a variant runs its base's image
                done.add(spec.install_id)
                built = build_image(spec, store, client)
                state = "up to date" if built.reused else "built"
                print(
                    f"{built.tag:<30} {built.image_id[7:19]} {built.size / 1e6:5.1f} MB "
                    f"{built.files:>3} files  {state} in {built.seconds:.2f}s"
                )
    finally:
        client.close()
    return 0


def cmd_engines_start(args: argparse.Namespace) -> int:
    from respmatrix.launcher import EngineProcess

    spec = _catalog().get(args.id)
    if args.provider == "docker":
        return _start_container(spec, args.image, args.port)
    if args.image:
        raise CommandError("--image needs --provider docker", EXIT_USAGE)
    store = _store()
    install_engines([spec])
    process = EngineProcess(
        spec,
        store.server_path(spec),
        store.server_env(spec),
        extra_args=store.module_args(spec),
        port=args.port,
    )
    with process:
        ident = process.identity
        print(f"{spec.id} ({ident.line} {ident.version}) listening on redis://{process.address}")
        print(f"log: {process.log_path}; press Ctrl-C to stop", flush=True)
        _wait_for_stop_signal()
    print(f"{spec.id} stopped")
    return 0


def _wait_for_stop_signal() -> None:
    # Block the signals so sigwait receives them instead of the default action killing
    # us before the server is stopped and its folder (or container) removed.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    with contextlib.suppress(KeyboardInterrupt):
        signal.sigwait({signal.SIGINT, signal.SIGTERM})


def _start_container(spec: Any, image: str | None, port: int | None) -> int:
    from respmatrix.providers.docker import DockerEngine
    from respmatrix.providers.preflight import ensure_images

    ensure_images([spec], {spec.id: image} if image else {}, _store(), install_engines)
    with DockerEngine(spec, image, port=port) as engine:
        ident = engine.identity
        print(f"{spec.id} ({ident.line} {ident.version}) listening on redis://{engine.address}")
        print(
            f"container {engine.container_name} from {engine.image_ref}; press Ctrl-C to stop",
            flush=True,
        )
        _wait_for_stop_signal()
    print(f"{spec.id} stopped, container removed")
    return 0


# -- run ----------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace) -> int:
    import pytest

    from respmatrix.datafiles import data_dir
    from respmatrix.selection import Selection

    catalog = _catalog()
    urls = dict(_split_url(item) for item in args.engine_url)
    engine_images = dict(_split_url(item, "--engine-image", "IMAGE") for item in args.engine_image)
    if engine_images and args.provider != "docker":
        raise CommandError("--engine-image needs --provider docker", EXIT_USAGE)
    for engine_id in engine_images:
        catalog.get(engine_id)
    try:
        selection = Selection.parse(catalog, args.engines, args.clients, args.protocols)
    except ValueError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    for engine_id, url in urls.items():
        _check_external(catalog.get(engine_id), url)
    if args.provider == "external":
        missing = [e for e in selection.engines if e not in urls]
        if missing:
            raise CommandError(
                f"--provider external needs --engine-url for {', '.join(missing)}", EXIT_USAGE
            )
    suites = (args.suites or data_dir("suites")).resolve()
    if not suites.is_dir():
        raise CommandError(f"no such suites folder: {suites}", EXIT_USAGE)
    if args.families:
        known = {p.name for p in suites.iterdir() if p.is_dir()}
        unknown = {f.strip() for f in args.families.split(",")} - known
        if unknown:
            listed = ", ".join(sorted(known))
            raise CommandError(
                f"unknown families: {', '.join(sorted(unknown))}; known: {listed}", EXIT_USAGE
            )
    local = [catalog.get(e) for e in selection.engines if e not in urls]
    if local and args.provider == "docker":
        from respmatrix.providers.preflight import ensure_images, trial_start

        ensure_images(local, engine_images, _store(), None if args.no_install else install_engines)
        trial_start(local, engine_images)
    elif local:
        store = _store()
        missing = [spec.id for spec in local if not store.is_installed(spec)]
        if missing and args.no_install:
            raise CommandError(
                f"engines not installed: {', '.join(missing)}; "
                f"run `respmatrix engines install {' '.join(missing)}`"
            )
        install_engines(local)

    out: Path = args.out.resolve()
    pytest_args = [
        str(suites),
        "-p", "no:cacheprovider",
        "-c", os.devnull,  # the caller's own pytest configuration does not apply to our suites
        "--rootdir", str(suites),
        "--engines", ",".join(selection.engines),
        "--clients", ",".join(selection.clients),
        "--protocols", ",".join(map(str, selection.protocols)),
        "--suites", str(suites),
        "--respmatrix-out", str(out),
        "-q",
        # The CLI imported respmatrix before pytest could rewrite it; that is expected here.
        "-W", "ignore::pytest.PytestAssertRewriteWarning",
    ]  # fmt: skip
    if args.families:
        pytest_args += ["--families", args.families]
    if args.versioned_clients:
        pytest_args += ["--respmatrix-versioned-clients"]
    for engine_id, url in urls.items():
        pytest_args += ["--engine-url", f"{engine_id}={url}"]
    if args.provider == "docker":
        pytest_args += ["--provider", "docker"]
        for engine_id, image in engine_images.items():
            pytest_args += ["--engine-image", f"{engine_id}={image}"]
    workers = default_workers() if args.workers == "auto" else args.workers
    if str(workers) not in ("0", "1"):
        pytest_args += ["-n", str(workers)]
    pytest_args += [a for a in args.pytest_args if a != "--"]
    results_path = out / "results.json"
    results_path.unlink(missing_ok=True)  # never report an earlier run's file as this one's
    interrupted: list[int] = []

    def on_sigint(signum: int, frame: Any) -> None:
        # pytest turns Ctrl-C into its INTERRUPTED exit code, unless it trips over the
        # interrupted frame while reporting it (then it exits 1); remember the Ctrl-C itself
        interrupted.append(signum)
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        code = pytest.main(pytest_args)
    except KeyboardInterrupt:
        # A Ctrl-C while xdist tears its workers down escapes pytest before the plugin has
        # merged the workers' parts: merge them here, so what ran is kept.
        interrupted.append(signal.SIGINT)
        code = pytest.ExitCode.INTERRUPTED
    finally:
        signal.signal(signal.SIGINT, previous)
    if not results_path.exists() and (out / ".parts").is_dir():
        from respmatrix import results

        results.merge_parts(out)
    if results_path.exists():
        matrix, page = _render(results_path, out)
        print(f"results: {results_path}\nmatrix:  {matrix}\npage:    {page}")
    return 130 if interrupted else _exit_status(int(code))


def default_workers() -> int:
    """One xdist worker more than the usable cores: every worker spends part of its time
    waiting (on a blocking command's timeout, a pushed message, a client library's I/O
    thread), and the extra one fills those gaps. Measured on two cores, three engines, all
    families: all clients 107 s with 2 workers, 92 s with 3; the raw client 31 s and 32 s."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores + 1


def _exit_status(pytest_code: int) -> int:
    """pytest's exit codes in the CLI's words: 0 ok, 1 failures, 2 bad input, 130 interrupted."""
    from pytest import ExitCode as pytest_exit

    if pytest_code in (pytest_exit.OK, pytest_exit.TESTS_FAILED):
        return pytest_code
    if pytest_code == pytest_exit.INTERRUPTED:
        return 130
    if pytest_code in (pytest_exit.USAGE_ERROR, pytest_exit.NO_TESTS_COLLECTED):
        return EXIT_USAGE
    return EXIT_FAILED


def _check_external(spec: Any, url: str) -> None:
    """Identify a server given with --engine-url before the run: one error, not one per case."""
    from urllib.parse import urlparse

    from respmatrix.launcher import EngineIdentityError, check_identity, identify

    try:
        parsed = urlparse(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 6379
    except ValueError as exc:
        raise CommandError(f"--engine-url {spec.id}={url}: {exc}", EXIT_USAGE) from None
    if parsed.scheme not in ("redis", ""):
        raise CommandError(
            f"--engine-url {spec.id}={url}: only redis:// URLs are supported", EXIT_USAGE
        )
    try:
        check_identity(spec, identify(host, port), f"the server at {host}:{port}")
    except OSError as exc:
        raise CommandError(f"cannot reach {spec.id} at {host}:{port}: {exc}") from None
    except EngineIdentityError as exc:
        raise CommandError(str(exc)) from None


def _split_url(item: str, option: str = "--engine-url", what: str = "URL") -> tuple[str, str]:
    engine_id, sep, url = item.partition("=")
    if not sep or not url:
        raise CommandError(f"{option} expects ID={what}, got {item!r}", EXIT_USAGE)
    return engine_id, url


# -- coverage -----------------------------------------------------------------------------------


def cmd_coverage(args: argparse.Namespace) -> int:
    from respmatrix import results
    from respmatrix.cases import discover_cases
    from respmatrix.coverage import measure
    from respmatrix.datafiles import data_dir

    suites = data_dir("suites")
    if args.results is not None:
        doc = results.load(args.results)
        inventories = {e: f["commands"] for e, f in doc["engines"].items() if "commands" in f}
        if not inventories:
            raise CommandError(f"{args.results} records no command inventories", EXIT_USAGE)
    else:
        inventories = _live_inventories(_catalog().select(args.engines))
    report, unmapped = measure(inventories, discover_cases(suites), suites)
    if args.families:
        wanted = {f.strip() for f in args.families.split(",")}
        unknown = wanted - report.keys()
        if unknown:
            raise CommandError(f"unknown families: {', '.join(sorted(unknown))}", EXIT_USAGE)
        report = {f: c for f, c in report.items() if f in wanted}
    if args.json:
        print(
            json.dumps(
                {
                    "engines": sorted(inventories),
                    "families": {f: c.as_dict() for f, c in report.items()},
                    "unmapped": {g: sorted(c) for g, c in sorted(unmapped.items())},
                },
                indent=1,
            )
        )
    else:
        _print_coverage(report, unmapped, sorted(inventories))
    if args.fail_under is not None:
        low = [
            f for f, c in report.items() if c.percent is not None and c.percent < args.fail_under
        ]
        if low:
            print(f"coverage below {args.fail_under}% in: {', '.join(low)}", file=sys.stderr)
            return EXIT_FAILED
    return 0


def _live_inventories(specs: Sequence[Any]) -> dict[str, dict[str, str]]:
    from respmatrix.pool import EnginePool

    install_engines(specs)
    pool = EnginePool(_catalog())
    try:
        return {spec.id: pool.engine(spec.id).facts["commands"] for spec in specs}
    finally:
        pool.close()


def _print_coverage(
    report: dict[str, Any], unmapped: dict[str, set[str]], engines: list[str]
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    counted = {f: c for f, c in report.items() if c.counted}
    table = Table(title="coverage of the engines' commands (COMMAND DOCS + COMMAND LIST)")
    for column in ("family", "commands", "covered", "%", "excluded"):
        table.add_column(column, justify="left" if column == "family" else "right")
    for family, cov in report.items():
        percent = "-" if cov.percent is None else f"{cov.percent:.0f}"
        table.add_row(
            family, str(len(cov.commands)), str(len(cov.covered)), percent, str(len(cov.excluded))
        )
    console.print(table)
    if counted:
        short = [e.replace("redis-", "r").replace("valkey-", "v") for e in engines]
        per_engine = Table(title="covered / commands the engine has, per family")
        per_engine.add_column("family")
        for name in short:
            per_engine.add_column(name, justify="right")
        for family, cov in counted.items():
            cells = (cov.per_engine.get(e, (0, 0)) for e in engines)
            per_engine.add_row(family, *(f"{c}/{n}" if n else "-" for c, n in cells))
        console.print(per_engine)
    for family, cov in report.items():
        if cov.not_covered:
            console.print(
                f"[bold]{family}[/bold] not covered: {', '.join(sorted(cov.not_covered))}"
            )
    for family, cov in report.items():
        if cov.family_excluded:
            seen = (
                f"{len(cov.commands)} commands" if cov.commands else "no engine lists its commands"
            )
            console.print(f"excluded family {family} ({seen}): {cov.family_excluded}")
        elif cov.excluded:
            for command, reason in sorted(cov.excluded.items()):
                console.print(f"excluded {command} ({family}): {reason}")
    for group, names in sorted(unmapped.items()):
        console.print(f"unmapped group {group!r}: {', '.join(sorted(names))}")


# -- report -------------------------------------------------------------------------------------


def _render(results_path: Path, out: Path) -> list[Path]:
    """Write matrix.md and index.html for a results file; return their paths."""
    from respmatrix import results
    from respmatrix.reporting.html import write_html
    from respmatrix.reporting.markdown import render_matrix

    doc = results.load(results_path, freeze=True)  # held until the command ends
    out.mkdir(parents=True, exist_ok=True)
    matrix = out / "matrix.md"
    matrix.write_text(render_matrix(doc), encoding="utf-8")
    return [matrix, write_html(doc, out)]


def cmd_report_render(args: argparse.Namespace) -> int:
    for path in _render(args.results, args.out or args.results.parent):
        print(path)
    return 0


def cmd_report_merge(args: argparse.Namespace) -> int:
    from respmatrix import results

    docs = [results.load(path) for path in args.inputs]
    try:
        merged = results.merge(docs)
    except results.MergeConflictError as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    results.write(merged, args.output)
    print(args.output)
    return 0


def cmd_report_compare(args: argparse.Namespace) -> int:
    from respmatrix import results
    from respmatrix.reporting.diff import compare_runs, render_comparison

    old, new = results.load(args.old), results.load(args.new)
    comparison = compare_runs(old, new)
    if args.json:
        print(json.dumps(comparison.as_dict(), indent=1, ensure_ascii=False))
    else:
        print(render_comparison(comparison, str(args.old), str(args.new)), end="")
    return EXIT_FAILED if comparison.regressed else 0


def cmd_diff(args: argparse.Namespace) -> int:
    from respmatrix import results
    from respmatrix.reporting.diff import UnknownEngineInResults, engine_diff, render_engine_diff

    if args.a == args.b:
        raise CommandError(f"diff needs two different engines, got {args.a} twice", EXIT_USAGE)
    from respmatrix.reporting.migration import split_migration

    # The cutover diff compares commands; migration paths have their own table (and audit).
    doc, _ = split_migration(results.load(args.results))
    tested = {r["engine"] for r in doc["results"]}
    for engine_id in (args.a, args.b):
        if engine_id not in tested:
            _catalog().get(engine_id)  # an unknown id: one line naming the known ids, exit 2
    try:
        diff = engine_diff(doc, args.a, args.b)
    except UnknownEngineInResults as exc:
        raise CommandError(f"{args.results}: {exc}", EXIT_USAGE) from None
    if args.json:
        print(json.dumps(diff.as_dict(), indent=1, ensure_ascii=False))
    else:
        print(render_engine_diff(diff), end="")
    return EXIT_FAILED if diff.differs else 0


# -- fuzz ---------------------------------------------------------------------------------------


def cmd_fuzz(args: argparse.Namespace) -> int:
    from respmatrix.fuzz.command import run

    return run(args, CommandError, install_engines)


if __name__ == "__main__":
    raise SystemExit(main())
