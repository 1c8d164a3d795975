"""How fast is the harness? Numbers for the three costs that decide a run's wall time.

    python benchmarks/bench.py [--engines all] [--repeat N] [--rounds N] [--full]

(a) cold start: per engine, EngineProcess start until the server answers PING (``started_in``),
    and until ``start()`` returns (the identity check included); median and max over N starts.
(b) harness overhead: for every case of the shipped suites, on one engine through the raw client,
    ``pool.reset`` + ``run_case`` against the same commands (the flush included) sent with bare
    RespConnections; then the cost of a pytest item, from a real pytest run in a subprocess.
(c) with ``--full``: wall time of ``respmatrix run --engines all --families strings,keyspace``.

Every number comes from this run. A script, not a test: it prints a table and exits 0 unless the
harness itself fails. No server outlives it: each start is stopped in a ``finally``, and the end
checks that no server started from our temp folders is still alive.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from respmatrix.cases import Case, discover_cases
from respmatrix.catalog import EngineCatalog, EngineSpec
from respmatrix.clients.resp import RespConnection
from respmatrix.datafiles import data_dir
from respmatrix.launcher import EngineProcess
from respmatrix.pool import EnginePool
from respmatrix.registry import DivergenceRegistry
from respmatrix.runner import run_case
from respmatrix.store import EngineStore

START_TARGET_MS = 100.0  # median cold start to first reply
OVERHEAD_TARGET_MS = 1.5  # per case, beyond its own round trips
_SUMMARY_WORD = re.compile(
    r"(\d+) (passed|failed|skipped|errors?|divergent|unsupported|xfailed|xpassed)\b"
)


def ms(seconds: float) -> float:
    return seconds * 1000.0


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


# -- (a) cold start -----------------------------------------------------------------------------


@dataclass
class StartTimes:
    engine: str
    to_pong: list[float] = field(default_factory=list)  # EngineProcess.started_in
    to_ready: list[float] = field(default_factory=list)  # start() returned: identity checked


def cold_starts(specs: Sequence[EngineSpec], store: EngineStore, repeat: int) -> list[StartTimes]:
    results = []
    for spec in specs:
        times = StartTimes(spec.id)
        server, env = store.server_path(spec), store.server_env(spec)
        for _ in range(repeat):
            process = EngineProcess(spec, server, env)
            try:
                began = time.perf_counter()
                process.start()
                times.to_ready.append(time.perf_counter() - began)
                times.to_pong.append(process.started_in)
            finally:
                process.stop()
        results.append(times)
    return results


def print_cold_starts(results: Sequence[StartTimes], repeat: int) -> None:
    section(
        f"(a) cold start to first reply, {repeat} starts per engine (target: median <= "
        f"{START_TARGET_MS:.0f} ms to PONG)"
    )
    rows = []
    for r in results:
        median = ms(statistics.median(r.to_pong))
        rows.append([
            r.engine,
            fmt(median, 1), fmt(ms(max(r.to_pong)), 1),
            fmt(ms(statistics.median(r.to_ready)), 1), fmt(ms(max(r.to_ready)), 1),
            "ok" if median <= START_TARGET_MS else "OVER",
        ])  # fmt: skip
    print(
        table(
            ["engine", "pong med ms", "pong max ms", "ready med ms", "ready max ms", "target"], rows
        )
    )
    print(
        "pong: Popen until PING answers PONG; ready: start() returned (HELLO 3, INFO, "
        "MODULE LIST checked)"
    )


# -- (b) harness overhead -----------------------------------------------------------------------


class RecordingClient:
    """Wraps an adapter to learn the exact commands a case sends (cleanup included)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.protocol = inner.protocol
        self.sent: list[tuple[Any, ...]] = []

    def call(self, *args: Any) -> Any:
        self.sent.append(args)
        return self.inner.call(*args)


@dataclass
class Overhead:
    case: str
    protocol: int
    outcome: str
    round_trips: int  # the flush plus every command of the case
    sleep_ms: float
    harness: list[float] = field(default_factory=list)
    raw: list[float] = field(default_factory=list)

    @property
    def harness_mean(self) -> float:
        return ms(statistics.fmean(self.harness))

    @property
    def raw_mean(self) -> float:
        return ms(statistics.fmean(self.raw))

    @property
    def overhead(self) -> float:
        return self.harness_mean - self.raw_mean

    @property
    def ratio(self) -> float:
        return self.harness_mean / self.raw_mean if self.raw_mean else float("nan")


def _replay(admin: RespConnection, conn: RespConnection, script: list[Any]) -> None:
    """The baseline: the flush and the case's commands (and sleeps) on bare connections."""
    admin.call("FLUSHALL", "SYNC")
    for item in script:
        if isinstance(item, float):
            time.sleep(item)
        else:
            conn.call(*item)


def harness_overhead(
    engine_id: str, cases: Sequence[Case], catalog: EngineCatalog, rounds: int
) -> list[Overhead]:
    registry = DivergenceRegistry.load(data_dir("suites") / "registry.yaml")
    pool = EnginePool(catalog)
    bare: list[RespConnection] = []
    try:
        running = pool.engine(engine_id)
        spec, host, port = running.spec, running.endpoint.host, running.endpoint.port
        results = []
        for case in cases:
            for protocol in case.protocols:
                client = pool.client(engine_id, "raw", protocol)
                admin = RespConnection(host, port)
                conn = RespConnection(host, port, protocol)
                bare += [admin, conn]
                # Learn the exact commands once, through the harness itself.
                recorder = RecordingClient(client)
                pool.reset(engine_id)
                outcome = run_case(case, recorder, spec, registry)  # type: ignore[arg-type] - duck-typed
                sleeps = [s.sleep_ms / 1000 for s in case.steps if s.sleep_ms]
                script: list[Any] = list(recorder.sent)
                # Sleeps sit between commands in the case; where exactly does not change timing.
                script[1:1] = sleeps
                row = Overhead(
                    case.id, protocol, outcome.outcome, 1 + len(recorder.sent), ms(sum(sleeps))
                )

                def harness_once(case: Case = case, client: Any = client) -> None:
                    pool.reset(engine_id)
                    run_case(case, client, spec, registry)

                def raw_once(
                    admin: RespConnection = admin, conn: RespConnection = conn,
                    script: list[Any] = script,
                ) -> None:  # fmt: skip
                    _replay(admin, conn, script)

                _measure(harness_once, raw_once, rounds, row)
                results.append(row)
        return results
    finally:
        for conn in bare:
            conn.close()
        pool.close()


def _measure(
    harness: Callable[[], None], raw: Callable[[], None], rounds: int, row: Overhead
) -> None:
    """Interleave the two so drift (CPU frequency, other load) hits both alike."""
    for _ in range(max(3, rounds // 10)):  # warm up: connections, caches, lazy imports
        harness()
        raw()
    clock = time.perf_counter
    for index in range(rounds):
        first, second = (harness, raw) if index % 2 == 0 else (raw, harness)
        began = clock()
        first()
        middle = clock()
        second()
        end = clock()
        if first is harness:
            row.harness.append(middle - began)
            row.raw.append(end - middle)
        else:
            row.raw.append(middle - began)
            row.harness.append(end - middle)


def print_overhead(
    rows: Sequence[Overhead], engine_id: str, rounds: int, per_case: bool = False
) -> float:
    """One line per family (every case with ``per_case``), the worst cases, and the means."""
    section(
        f"(b) harness overhead per case on {engine_id}, raw client, {rounds} rounds each "
        f"(target: <= {OVERHEAD_TARGET_MS} ms beyond the case's own round trips)"
    )
    if not rows:
        print("no cases found")
        return float("nan")
    headers = ["", "n", "rtts", "harness ms", "raw ms", "overhead ms", "max ovh ms", "ratio"]
    groups: dict[str, list[Overhead]] = {}
    for r in rows:
        key = f"{r.case} resp{r.protocol} ({r.outcome})" if per_case else r.case.split("/")[0]
        groups.setdefault(key, []).append(r)
    groups["all"] = list(rows)
    out = []
    for key, members in groups.items():
        harness = statistics.fmean(r.harness_mean for r in members)
        raw = statistics.fmean(r.raw_mean for r in members)
        out.append([
            key, len(members), fmt(statistics.fmean(r.round_trips for r in members), 1),
            fmt(harness), fmt(raw), fmt(harness - raw), fmt(max(r.overhead for r in members)),
            f"{harness / raw:.2f}x",
        ])  # fmt: skip
    headers[0] = "case" if per_case else "family (case x protocol pairs)"
    print(table(headers, out))
    if not per_case:
        worst = sorted(rows, key=lambda r: r.overhead, reverse=True)[:3]
        print("largest overhead: " + "; ".join(
            f"{r.case} resp{r.protocol} {r.overhead:.3f} ms" for r in worst
        ))  # fmt: skip
    mean_overhead = statistics.fmean(r.overhead for r in rows)
    per_rtt = statistics.fmean(r.raw_mean / r.round_trips for r in rows)
    verdict = "ok" if mean_overhead <= OVERHEAD_TARGET_MS else "OVER"
    outcomes = Counter(r.outcome for r in rows)
    print(
        f"overhead per case {mean_overhead:.3f} ms ({verdict}); raw round trip "
        f"{per_rtt * 1000:.1f} us; rtts = the flush + the case's commands; outcomes: "
        + ", ".join(f"{n} {word}" for word, n in sorted(outcomes.items()))
    )
    return per_rtt  # ms


# -- (b') pytest per-item cost ------------------------------------------------------------------


@dataclass
class PytestRun:
    label: str
    seconds: float
    items: int
    code: int
    summary: str


def pytest_run(
    engine_id: str, label: str, suites: Path | None = None, collect_only: bool = False,
    tries: int = 3,
) -> PytestRun:  # fmt: skip
    """The fastest of ``tries`` pytest processes over the suites (or a scaled copy of them)."""
    runs = [_pytest_once(engine_id, label, suites, collect_only) for _ in range(max(1, tries))]
    return min(runs, key=lambda run: run.seconds)


def _pytest_once(engine_id: str, label: str, suites: Path | None, collect_only: bool) -> PytestRun:
    where = ["suites"] if suites is None else [str(suites), "--suites", str(suites)]
    if collect_only:
        where.append("--collect-only")
    cmd = [
        sys.executable, "-m", "pytest", *where, "-p", "no:cacheprovider", "-c", os.devnull,
        "--engines", engine_id, "--clients", "raw", "--protocols", "2", "-q",
    ]  # fmt: skip
    began = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=_repo_root(), check=False)
    seconds = time.perf_counter() - began
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else proc.stderr.strip()[-200:]
    items = sum(int(n) for n, _ in _SUMMARY_WORD.findall(summary))
    if collect_only:
        found = re.search(r"(\d+) tests? collected", summary)
        items = int(found.group(1)) if found else 0
    return PytestRun(label, seconds, items, proc.returncode, summary)


def scaled_suites(copies: int, into: Path) -> Path:
    """The shipped suites with every case file ``copies`` times (same registry), for a slope."""
    source = data_dir("suites")
    target = into / "suites"
    target.mkdir()
    shutil.copy2(source / "registry.yaml", target / "registry.yaml")
    for case in discover_cases(source):
        rel = case.path.relative_to(source)
        (target / rel.parent).mkdir(parents=True, exist_ok=True)
        text = case.path.read_text()
        for index in range(copies):
            (target / rel.parent / f"{rel.stem}-x{index}.yaml").write_text(text)
    return target


def print_pytest_cost(
    runs: Sequence[PytestRun], per_rtt_ms: float, harness_ms: float, engine_id: str
) -> None:
    section(
        f"(b') pytest per-item cost, from `pytest suites -p no:cacheprovider -c /dev/null "
        f"--engines {engine_id} --clients raw --protocols 2 -q` in a subprocess "
        "(fastest of --tries)"
    )
    rows = []
    for run in runs:
        per_item = ms(run.seconds) / run.items if run.items else None
        rows.append([run.label, run.items, fmt(ms(run.seconds), 1), fmt(per_item, 2),
                     fmt(per_rtt_ms, 3), run.code, run.summary])  # fmt: skip
    print(table(["run", "items", "wall ms", "ms/item", "raw rtt ms", "exit", "summary"], rows))
    print(
        "wall = interpreter start, plugin load, collection, one engine start and the items; "
        "ms/item spreads all of it over the items"
    )
    base, base_collect, scaled_collect, scaled = runs
    delta = scaled.items - base.items
    if delta > 0 and scaled_collect.items == scaled.items and base_collect.items == base.items:
        total = ms(scaled.seconds - base.seconds) / delta
        collect = ms(scaled_collect.seconds - base_collect.seconds) / delta
        run_part = total - collect
        factor = scaled.items // base.items
        print(
            f"marginal cost of one more item (slope from suites/ to x{factor}): "
            f"{total:.3f} ms = {total / per_rtt_ms:.1f} raw round trips\n"
            f"  collecting it (one case file per item here; slope of the --collect-only runs): "
            f"{collect:.3f} ms\n"
            f"  running it (the rest): {run_part:.3f} ms, vs in-process reset+run_case "
            f"{harness_ms:.3f} ms: pytest's own per-item cost ~{run_part - harness_ms:.3f} ms"
        )


# -- (c) full run -------------------------------------------------------------------------------


def full_run() -> tuple[float, int, dict[str, int]]:
    with tempfile.TemporaryDirectory(prefix="full-run-") as out:
        cmd = [
            sys.executable,
            "-m",
            "respmatrix",
            "run",
            "--engines",
            "all",
            "--families",
            "strings,keyspace",
            "--out",
            out,
            "--no-install",
        ]
        began = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=_repo_root(), check=False)
        seconds = time.perf_counter() - began
        results_path = Path(out) / "results.json"
        outcomes: dict[str, int] = {}
        if results_path.exists():
            doc = json.loads(results_path.read_text())
            outcomes = dict(Counter(r["outcome"] for r in doc.get("results", [])))
        elif proc.returncode:
            print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
        return seconds, proc.returncode, outcomes


def print_full(seconds: float, code: int, outcomes: dict[str, int]) -> None:
    section("(c) respmatrix run --engines all --families strings,keyspace (all clients, RESP2+3)")
    total = sum(outcomes.values())
    tally = ", ".join(f"{n} {word}" for word, n in sorted(outcomes.items())) or "no results"
    per = f", {ms(seconds) / total:.1f} ms per result" if total else ""
    print(f"wall {seconds:.2f} s, exit {code}, {total} results ({tally}){per}")


# -- cleanup check ------------------------------------------------------------------------------


def leftover_servers(private_tmp: Path) -> list[int]:
    """Pids of live processes whose working folder is inside our private temp folder.

    Every server this script starts, itself or through a subprocess, runs in a temp folder there
    (TMPDIR points to it), so servers of other runs on the same machine do not count. The working
    folder, not the command line: the servers rewrite their argv into a process title.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(str(private_tmp)):
            found.append(int(entry.name))
    return found


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", default="all", help="engines for the cold-start numbers")
    parser.add_argument("--repeat", type=int, default=5, help="cold starts per engine")
    parser.add_argument(
        "--case-engine",
        default="valkey-9.1",
        help="engine for the per-case overhead (default: valkey-9.1)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=300,
        help="timed runs of each case, harness and raw each (default: 300)",
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=0,
        help="copies of each case for the pytest per-item slope (default: enough for 400 items)",
    )
    parser.add_argument("--per-case", action="store_true", help="(b) one line per case")
    parser.add_argument(
        "--tries",
        type=int,
        default=3,
        help="pytest subprocess runs of each kind; the fastest counts (default: 3)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="also time the full strings+keyspace run over all engines",
    )
    args = parser.parse_args(argv)

    catalog, store = EngineCatalog.load(), EngineStore()
    specs = catalog.select(args.engines)
    wanted = {*(s.id for s in specs), args.case_engine}
    missing = [s.id for s in catalog if s.id in wanted and not store.is_installed(s)]
    if missing:
        print(
            f"bench: engines not installed: {', '.join(missing)}; run "
            f"`respmatrix engines install {' '.join(missing)}`",
            file=sys.stderr,
        )
        return 2
    cases = discover_cases(data_dir("suites"))
    print(
        f"respmatrix bench: python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
        f"store {store.root}, {len(cases)} cases in {data_dir('suites')}"
    )

    private_tmp = Path(tempfile.mkdtemp(prefix="respmatrix-bench-"))
    os.environ["TMPDIR"] = str(private_tmp)  # for the pytest and respmatrix subprocesses
    tempfile.tempdir = str(private_tmp)  # for the servers started here
    try:
        print_cold_starts(cold_starts(specs, store, args.repeat), args.repeat)
        rows = harness_overhead(args.case_engine, cases, catalog, args.rounds)
        per_rtt = print_overhead(rows, args.case_engine, args.rounds, args.per_case)
        # Enough copies for a few hundred more items than the suites have, so the slope is clear.
        copies = args.scale or max(2, -(-400 // max(1, len(cases))))
        scaled = scaled_suites(copies, private_tmp)
        runs = [
            pytest_run(args.case_engine, "suites/", tries=args.tries),
            pytest_run(args.case_engine, "suites/ --collect-only", None, True, args.tries),
            pytest_run(args.case_engine, f"x{copies} --collect-only", scaled, True, args.tries),
            pytest_run(args.case_engine, f"x{copies}", scaled, tries=args.tries),
        ]
        harness_ms = statistics.fmean(r.harness_mean for r in rows if r.protocol == 2)
        print_pytest_cost(runs, per_rtt, harness_ms, args.case_engine)
        if args.full:
            print_full(*full_run())
    finally:
        left = leftover_servers(private_tmp)
        shutil.rmtree(private_tmp, ignore_errors=True)
    print(f"\nservers left running: {len(left)}" + (f" (pids {left})" if left else ""))
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
