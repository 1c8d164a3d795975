"""Every ordered pair of engines x every method, as migration outcomes and as results.

One producer is one unit of work: it writes the dataset once, dumps every key, saves one RDB
file, then each consumer gets its own fresh servers (a RESTORE target, a server started on the
file, a replica). Producers run in parallel threads; the servers do the work.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from respmatrix import results
from respmatrix.catalog import EngineSpec
from respmatrix.migration import FAMILY, METHODS, RETRY_FACTOR
from respmatrix.migration.dataset import module_keys, write_dataset
from respmatrix.migration.dump_restore import dump_payloads, restore_payloads
from respmatrix.migration.engines import StepTimeout, connect, engine_process
from respmatrix.migration.outcome import ERROR, REFUSED, MigrationOutcome
from respmatrix.migration.rdb import migrate_rdb, save_rdb_files
from respmatrix.migration.replication import replicate
from respmatrix.migration.snapshot import Snapshot, SnapshotReader

Progress = Callable[[MigrationOutcome], None]
T = TypeVar("T")


def run_matrix(
    producers: Sequence[EngineSpec],
    consumers: Sequence[EngineSpec],
    store: object,
    methods: Sequence[str] = METHODS,
    jobs: int = 2,
    timeout: float = 10.0,
    log_dir: Path | None = None,
    progress: Progress | None = None,
) -> tuple[list[MigrationOutcome], dict[str, dict[str, Any]]]:
    """Outcomes of every (producer, consumer, method), and the facts of the engines started."""
    with tempfile.TemporaryDirectory(prefix="respmatrix-migration-") as tmp:
        logs = log_dir or Path(tmp) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        row = _ProducerRow(consumers, store, methods, timeout, logs, Path(tmp), progress)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            try:
                rows = list(pool.map(row.run, producers))
            except BaseException:
                # Ctrl-C: the rows stop after their current pair and stop their servers, so
                # the pool's exit (which waits for them) comes soon and leaves nothing behind.
                row.cancelled.set()
                raise
    outcomes = [o for found, _ in rows for o in found]
    facts = {spec.id: fact for (_, fact), spec in zip(rows, producers, strict=True) if fact}
    return outcomes, facts


class _ProducerRow:
    def __init__(self, consumers, store, methods, timeout, logs, tmp, progress) -> None:  # type: ignore[no-untyped-def]
        self.consumers, self.store, self.methods = consumers, store, methods
        self.timeout, self.logs, self.tmp, self.progress = timeout, logs, tmp, progress
        self.cancelled = threading.Event()

    def run(self, producer: EngineSpec) -> tuple[list[MigrationOutcome], dict[str, Any]]:
        found: list[MigrationOutcome] = []

        def record(outcome: MigrationOutcome) -> None:
            found.append(outcome)
            if self.progress:
                self.progress(outcome)

        try:
            payloads, expected, rdb, facts = self._retried(lambda t: self._produce(producer, t))
        except Exception as exc:
            for consumer in self.consumers:
                for method in self.methods:
                    record(
                        MigrationOutcome(
                            method,
                            producer.id,
                            consumer.id,
                            "dataset",
                            ERROR,
                            f"producer failed: {str(exc).splitlines()[0]}",
                        )
                    )
            return found, {}
        for consumer in self.consumers:
            for method in self.methods:
                if self.cancelled.is_set():
                    return found, facts
                try:
                    for outcome in self._retried(
                        lambda t, m=method, c=consumer: self._measure(
                            m, producer, c, payloads, expected, rdb, t
                        )
                    ):
                        record(outcome)
                except Exception as exc:
                    record(
                        MigrationOutcome(
                            method,
                            producer.id,
                            consumer.id,
                            "dataset",
                            ERROR,
                            f"{type(exc).__name__}: {exc}",
                        )
                    )
        return found, facts

    def _retried(self, measure: Callable[[float], T]) -> T:
        """``measure(timeout)``; where a step timed out, once more with a longer timeout (see
        :data:`RETRY_FACTOR`). A second timeout is raised, naming both."""
        try:
            found = measure(self.timeout)
        except StepTimeout as first:
            try:
                found = measure(self.timeout * RETRY_FACTOR)
            except StepTimeout as second:
                raise StepTimeout(f"{second}; the first attempt: {first}") from None
            for outcome in found if isinstance(found, list) else []:
                outcome.extra["retried"] = f"the first attempt timed out: {first}"
        return found

    def _measure(  # type: ignore[no-untyped-def]
        self, method, producer, consumer, payloads, expected, rdb, timeout
    ) -> list[MigrationOutcome]:
        """One cell: the outcomes of moving the producer's data to ``consumer`` by ``method``."""
        if method == "dump-restore":
            return self._restore(producer, consumer, payloads, expected, timeout)
        if method == "rdb":
            return [
                _relaxed_too(
                    lambda relaxed: migrate_rdb(
                        consumer, self.store, rdb, producer.id, self.logs, timeout, relaxed
                    ),
                    consumer,
                )
            ]
        return [
            _relaxed_too(
                lambda relaxed: replicate(
                    producer, consumer, self.store, self.logs, timeout, relaxed
                ),
                consumer,
            )
        ]

    def _produce(self, producer: EngineSpec, timeout: float):  # type: ignore[no-untyped-def]
        process = engine_process(producer, self.store, self.logs).start()
        try:
            with connect(process, timeout) as conn:
                keys = write_dataset(conn)
                reader = SnapshotReader(conn)
                expected = reader.snapshot()
                payloads = dump_payloads(conn, keys)
                # The RDB file carries the core types only (see write_dataset).
                modules = module_keys(keys)
                if modules:
                    conn.call("DEL", *modules)
                rdb_expected = Snapshot(
                    {k: v for k, v in expected.keys.items() if k not in modules}
                )
                rdb = save_rdb_files(conn, process, rdb_expected, self.tmp / f"{producer.id}.rdb")
            return payloads, expected, rdb, process.describe()
        finally:
            process.stop()

    def _restore(self, producer, consumer, payloads, expected, timeout):  # type: ignore[no-untyped-def]
        process = engine_process(consumer, self.store, self.logs).start()
        try:
            with connect(process, timeout) as conn:
                return restore_payloads(conn, payloads, expected, producer.id, consumer.id)
        finally:
            process.stop()


def _relaxed_too(
    attempt: Callable[[bool], MigrationOutcome], consumer: EngineSpec
) -> MigrationOutcome:
    """A refusal by a Valkey consumer is tried again with ``rdb-version-check relaxed``
    (Valkey 8.1+); what that gives is kept beside the default answer, which stays the cell's."""
    first = attempt(False)
    if first.outcome == REFUSED and consumer.line == "valkey":
        try:
            second = attempt(True)
        except Exception as exc:  # the default answer stands; say why the retry broke
            first.extra["relaxed"] = f"not measured: {type(exc).__name__}: {exc}"
            return first
        if second.outcome != ERROR:  # ERROR: this engine has no such setting
            first.extra["relaxed"] = second.reason
    return first


def results_document(
    outcomes: Sequence[MigrationOutcome], engines: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The outcomes as a results document (family ``migration``)."""
    doc = results.empty_document()
    doc["engines"] = dict(engines)
    for outcome in outcomes:
        doc["cases"][outcome.case] = {"claim": outcome.claim()}
        doc["results"].append(outcome.as_result())
    return results.merge([doc])


def merge_into(existing: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``existing`` with ``new``'s migration results replacing those of the same cells.

    Engine facts already in ``existing`` stay as they are: a suite run records the command
    inventory, and a migration run may have loaded other modules, yet it is the same engine.
    """
    fresh = {(r["case"], r["engine"]) for r in new["results"]}
    rerun = {(r["producer"], r["engine"], r["method"]) for r in new["results"]}
    kept = [
        r
        for r in existing["results"]
        if (r["case"], r["engine"]) not in fresh
        and not (
            r["family"] == FAMILY and (r.get("producer"), r["engine"], r.get("method")) in rerun
        )
    ]
    doc = dict(existing)
    doc["engines"] = {**new["engines"], **existing.get("engines", {})}
    doc["cases"] = {**existing.get("cases", {}), **new["cases"]}
    doc["results"] = kept + new["results"]
    return results.merge([doc])
