"""How fast is the harness? Numbers for the three costs that decide a run's wall time.

    python benchmarks/bench.py [--engines all] [--repeat N] [--rounds N] [--cases N]
                               [--per-case] [--tries N] [--full] [--full-only]
                               [--full-families all|FAMILIES] [--keep DIR]

(a) cold start: per engine, EngineProcess start until the server answers PING (``started_in``),
    and until ``start()`` returns (the identity check included); median and max over N starts.
(b) harness overhead: for every case of the shipped suites, on one engine through the raw client,
    ``pool.reset`` + ``run_case`` against the same commands (the flush included) sent with bare
    RespConnections; then the cost of a pytest item, from a real pytest run in a subprocess.
(c) with ``--full``: wall time of ``respmatrix run --engines all --families strings,keyspace``
    (``--full-families all``: the whole matrix) through the raw client only, then through every
    client mode, and the ratio of the two; ``--full-only`` times just these two runs, ``--keep``
    keeps the all-clients run's results and pages (how ``reports/`` is published).
(d) per client mode: the mean cost of one case (flush + run_case) on one engine, and its
    ratio to the raw client, from an even sample of about 200 cases.

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
            process = EngineProcess(spec, server, env, extra_args=store.module_args(spec))
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
    """Learns the exact commands a case sends (cleanup included) by wrapping the adapter's
    ``call`` on the instance, so the runner still sees the adapter itself (its id, version,
    converters)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[tuple[Any, ...]] = []

    def __enter__(self) -> Any:
        original = self.inner.call

        def recording_call(*args: Any) -> Any:
            self.sent.append(args)
            return original(*args)

        self.inner.call = recording_call
        return self.inner

    def __exit__(self, *exc: object) -> None:
        del self.inner.call  # back to the class's method


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
    engine_id: str, cases: Sequence[Case], catalog: EngineCatalog, registry: DivergenceRegistry,
    rounds: int,
) -> tuple[list[Overhead], list[str]]:  # fmt: skip
    """Time every case both ways; cases the harness cannot run (an exception) are left out."""
    pool = EnginePool(catalog)
    bare: dict[int, tuple[RespConnection, RespConnection]] = {}
    left_out: list[str] = []

    def connections(protocol: int) -> tuple[RespConnection, RespConnection]:
        if protocol not in bare:
            endpoint = pool.engine(engine_id).endpoint
            bare[protocol] = (
                RespConnection(endpoint.host, endpoint.port),  # the flush, like pool.admin
                RespConnection(endpoint.host, endpoint.port, protocol),  # the case's commands
            )
        return bare[protocol]

    try:
        spec = pool.engine(engine_id).spec
        results = []
        for case in cases:
            for protocol in case.protocols:
                try:
                    results.append(
                        _time_case(pool, engine_id, spec, case, protocol, registry, rounds,
                                   connections(protocol))
                    )  # fmt: skip
                except Exception as exc:  # the harness would record "error"; reconnect both
                    left_out.append(f"{case.id} resp{protocol}: {type(exc).__name__}: {exc}")
                    pool.drop_client(engine_id, "raw", protocol)
                    for conn in bare.pop(protocol, ()):
                        conn.close()
        return results, left_out
    finally:
        for pair in bare.values():
            for conn in pair:
                conn.close()
        pool.close()


def _time_case(
    pool: EnginePool, engine_id: str, spec: EngineSpec, case: Case, protocol: int,
    registry: DivergenceRegistry, rounds: int, bare: tuple[RespConnection, RespConnection],
) -> Overhead:  # fmt: skip
    client = pool.client(engine_id, "raw", protocol)
    # Learn the exact commands once, through the harness itself.
    recorder = RecordingClient(client)
    pool.reset(engine_id)
    with recorder as recording:
        outcome = run_case(case, recording, spec, registry)
    sleeps = [s.sleep_ms / 1000 for s in case.steps if s.sleep_ms]
    script: list[Any] = list(recorder.sent)
    script[1:1] = sleeps  # where the sleeps sit among the commands does not change the timing
    row = Overhead(case.id, protocol, outcome.outcome, 1 + len(recorder.sent), ms(sum(sleeps)))

    def harness_once() -> None:
        pool.reset(engine_id)
        run_case(case, client, spec, registry)

    def raw_once() -> None:
        _replay(bare[0], bare[1], script)

    _measure(harness_once, raw_once, rounds, row)
    return row


def _measure(
    harness: Callable[[], None], raw: Callable[[], None], rounds: int, row: Overhead
) -> None:
    """Interleave the two so drift (CPU frequency, other load) hits both alike."""
    for _ in range(2):  # warm up: caches, lazy imports
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
    per_rtt = statistics.median((r.raw_mean - r.sleep_ms) / r.round_trips for r in rows)
    verdict = "ok" if mean_overhead <= OVERHEAD_TARGET_MS else "OVER"
    outcomes = Counter(r.outcome for r in rows)
    print(
        f"overhead per case {mean_overhead:.3f} ms ({verdict}); raw round trip (median, sleeps "
        f"excluded) {per_rtt * 1000:.1f} us; rtts = the flush + the case's commands; outcomes: "
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
    engine_id: str, label: str, suites: Path, collect_only: bool = False, tries: int = 1
) -> PytestRun:
    """The fastest of ``tries`` pytest processes over a suites folder."""
    runs = [_pytest_once(engine_id, label, suites, collect_only) for _ in range(max(1, tries))]
    return min(runs, key=lambda run: run.seconds)


def _pytest_once(engine_id: str, label: str, suites: Path, collect_only: bool) -> PytestRun:
    cmd = [
        sys.executable, "-m", "pytest", str(suites), "--suites", str(suites),
        "-p", "no:cacheprovider", "-c", os.devnull,
        "--engines", engine_id, "--clients", "raw", "--protocols", "2", "-q",
    ]  # fmt: skip
    if collect_only:
        cmd.append("--collect-only")
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


def snapshot_suites(into: Path) -> tuple[Path, Path]:
    """A copy of the suites (they may change while we measure) and one with no case in it."""
    source = data_dir("suites")
    snapshot = into / "suites"
    shutil.copytree(source, snapshot, ignore=shutil.ignore_patterns("__pycache__"))
    empty = into / "empty-suites"
    empty.mkdir()
    for path in source.iterdir():
        if path.is_file():
            shutil.copy2(path, empty / path.name)
    return snapshot, empty


def print_pytest_cost(
    runs: Sequence[PytestRun], per_rtt_ms: float, harness_ms: float, engine_id: str,
    sampled: bool = False,
) -> None:  # fmt: skip
    section(
        f"(b') pytest per-item cost: `pytest suites -p no:cacheprovider -c /dev/null --engines "
        f"{engine_id} --clients raw --protocols 2 -q` in a subprocess (on a snapshot of suites/)"
    )
    rows = []
    for run in runs:
        per_item = ms(run.seconds) / run.items if run.items else None
        rows.append([run.label, run.items, fmt(ms(run.seconds), 1), fmt(per_item, 3),
                     run.code, run.summary])  # fmt: skip
    print(table(["run", "items", "wall ms", "ms/item", "exit", "summary"], rows))
    empty, collected, full = runs
    if full.items:
        items = full.items
        total = ms(full.seconds - empty.seconds) / items
        collect = ms(collected.seconds - empty.seconds) / items
        run_part = ms(full.seconds - collected.seconds) / items
        print(
            f"per item, start-up ({ms(empty.seconds):.0f} ms: interpreter, pytest, plugin) left "
            f"out: {total:.3f} ms = {total / per_rtt_ms:.1f} raw round trips "
            f"(raw round trip {per_rtt_ms:.3f} ms)\n"
            f"  collecting: {collect:.3f} ms; running: {run_part:.3f} ms (one engine start "
            f"included), of which reset+run_case in process {harness_ms:.3f} ms, so pytest's "
            f"own cost ~{run_part - harness_ms:.3f} ms per item"
            + (" (in-process figure from the --cases sample only)" if sampled else "")
        )


# -- (c) full run -------------------------------------------------------------------------------


def full_run(
    families: str, clients: str, keep: Path | None = None
) -> tuple[float, int, dict[str, int]]:
    """One ``respmatrix run`` over every engine; ``keep`` keeps its output folder (e.g. to
    publish the all-clients run as the reports)."""
    with tempfile.TemporaryDirectory(prefix="full-run-") as tmp:
        out = str(keep) if keep is not None else tmp
        cmd = [
            sys.executable, "-m", "respmatrix", "run", "--engines", "all", "--clients", clients,
            "--out", out, "--no-install",
        ]  # fmt: skip
        if families != "all":
            cmd += ["--families", families]
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


def print_full(families: str, keep: Path | None = None) -> None:
    """The raw-client-only run and the all-clients run of the same families, one after the
    other in this process, and their ratio (the issue's budget: all clients within 3x)."""
    section(f"(c) respmatrix run --engines all --families {families}: raw only vs all clients")
    walls = {}
    rows = []
    for clients in ("raw", "all"):
        seconds, code, outcomes = full_run(families, clients, keep if clients == "all" else None)
        walls[clients] = seconds
        total = sum(outcomes.values())
        tally = ", ".join(f"{n} {word}" for word, n in sorted(outcomes.items())) or "no results"
        per = f"{ms(seconds) / total:.2f}" if total else "-"
        rows.append([clients, f"{seconds:.2f}", code, total, per, tally])
    print(table(["clients", "wall s", "exit", "results", "ms/result", "outcomes"], rows))
    print(f"all clients / raw only: {walls['all'] / walls['raw']:.2f}x wall time")


def client_costs(
    engine_id: str, cases: Sequence[Case], catalog: EngineCatalog, registry: DivergenceRegistry,
    rounds: int,
) -> list[list[Any]]:  # fmt: skip
    """Per client mode: the mean time of flush + run_case over the same cases, interleaved
    round-robin so that load drift hits every mode alike."""
    from respmatrix.clients import ADAPTERS

    pool = EnginePool(catalog)
    spent: dict[str, float] = dict.fromkeys(ADAPTERS, 0.0)
    runs: dict[str, int] = dict.fromkeys(ADAPTERS, 0)
    try:
        spec = pool.engine(engine_id).spec
        for _ in range(rounds):
            for case in cases:
                for client_id in ADAPTERS:
                    client = pool.client(engine_id, client_id, 3)
                    began = time.perf_counter()
                    pool.reset(engine_id)
                    try:
                        run_case(case, client, spec, registry)
                    except Exception:  # as the collector does: a fresh connection
                        pool.drop_client(engine_id, client_id, 3)
                        continue
                    spent[client_id] += time.perf_counter() - began
                    runs[client_id] += 1
    finally:
        pool.close()
    raw = spent["raw"] / max(runs["raw"], 1)
    rows = []
    for client_id in ADAPTERS:
        mean = spent[client_id] / max(runs[client_id], 1)
        rows.append([client_id, runs[client_id], f"{ms(mean):.3f}", f"{mean / raw:.2f}x"])
    return rows


def print_client_costs(rows: list[list[Any]], engine_id: str) -> None:
    section(f"(d) cost of one case per client mode on {engine_id} (RESP3, flush included)")
    print(table(["client", "runs", "ms per case", "vs raw"], rows))


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
        default=10,
        help="timed runs of each case, harness and raw each (default: 10)",
    )
    parser.add_argument(
        "--cases", type=int, default=0, help="time an even sample of N cases (default: all)"
    )
    parser.add_argument("--per-case", action="store_true", help="(b) one line per case")
    parser.add_argument(
        "--tries",
        type=int,
        default=1,
        help="pytest subprocess runs of each kind; the fastest counts (default: 1)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="also time a run over all engines, raw client only and all clients (ratio)",
    )
    parser.add_argument(
        "--full-families",
        default="strings,keyspace",
        help="families of the --full runs, or all (default: strings,keyspace)",
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="with --full: keep the all-clients run's results, matrix and page in this folder",
    )
    parser.add_argument(
        "--full-only",
        action="store_true",
        help="time only (c), the raw-only and all-clients runs (implies --full)",
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
    private_tmp = Path(tempfile.mkdtemp(prefix="respmatrix-bench-"))
    os.environ["TMPDIR"] = str(private_tmp)  # for the pytest and respmatrix subprocesses
    tempfile.tempdir = str(private_tmp)  # for the servers started here
    try:
        snapshot, empty = snapshot_suites(private_tmp)
        cases = discover_cases(snapshot)
        if args.cases and len(cases) > args.cases:
            cases = cases[:: -(-len(cases) // args.cases)]  # an even sample over all families
        registry = DivergenceRegistry.load(snapshot / "registry.yaml")
        print(
            f"respmatrix bench: python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
            f"load {os.getloadavg()[0]:.1f}, store {store.root}, {len(cases)} cases from "
            f"{data_dir('suites')}"
        )
        if args.full_only:
            print_full(args.full_families, args.keep)
            return 0
        print_cold_starts(cold_starts(specs, store, args.repeat), args.repeat)
        rows, left_out = harness_overhead(args.case_engine, cases, catalog, registry, args.rounds)
        per_rtt = print_overhead(rows, args.case_engine, args.rounds, args.per_case)
        for line in left_out:
            print(f"left out (the harness raised): {line}")
        runs = [
            pytest_run(args.case_engine, "no cases, --collect-only", empty, True, args.tries),
            pytest_run(args.case_engine, "suites --collect-only", snapshot, True, args.tries),
            pytest_run(args.case_engine, "suites", snapshot, tries=args.tries),
        ]
        harness_ms = statistics.fmean(r.harness_mean for r in rows if r.protocol == 2)
        print_pytest_cost(runs, per_rtt, harness_ms, args.case_engine, bool(args.cases))
        print_client_costs(
            client_costs(args.case_engine, cases[:: max(1, len(cases) // 200)], catalog,
                         registry, 2),
            args.case_engine,
        )  # fmt: skip
        if args.full:
            print_full(args.full_families, args.keep)
    finally:
        left = leftover_servers(private_tmp)
        shutil.rmtree(private_tmp, ignore_errors=True)
    print(f"\nservers left running: {len(left)}" + (f" (pids {left})" if left else ""))
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
