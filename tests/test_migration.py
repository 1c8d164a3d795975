"""The migration matrix: snapshot comparison (pure), then one real run of every pair x method.

The full run (8 engines, 64 ordered pairs, DUMP/RESTORE + RDB + replication) takes about 90 s
on two busy cores; it runs once per session (``matrix_run``) and the pair checks below read it.
The pairs checked by name were verified by hand against the engines' logs and replies.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from respmatrix import results
from respmatrix.cli import main
from respmatrix.migration import METHODS
from respmatrix.migration.snapshot import KeyState, Snapshot, compare, compare_key

BASE_ENGINES = [
    "redis-7.2", "redis-7.4", "redis-8.0", "redis-8.2",
    "valkey-8.0", "valkey-8.1", "valkey-9.0", "valkey-9.1",
]  # fmt: skip
NOW = 1_800_000_000_000


# -- snapshot comparison (pure) --------------------------------------------------------------


def _key(kind: str, value: object, ttl: int = -1, fields: dict | None = None, at: int = NOW):
    return KeyState(kind, ttl, value, fields, at)


def test_identical_keys_compare_equal_even_when_read_at_other_times() -> None:
    # Same expiry time, read 30 s apart: the remaining TTLs differ, the expiry does not.
    a = _key("hash", {"f": "v"}, ttl=60_000, fields={"f": 50_000}, at=NOW)
    b = _key("hash", {"f": "v"}, ttl=30_000, fields={"f": 20_000}, at=NOW + 30_000)
    assert compare_key(a, b) == []


def test_a_moved_expiry_is_reported_with_its_shift() -> None:
    a = _key("string", "v", ttl=3_600_000)
    b = _key("string", "v", ttl=3_588_000)
    assert compare_key(a, b) == ["TTL expiry moved by -12s"]
    assert compare_key(a, _key("string", "v")) == ["TTL 3600s -> none"]


def test_field_ttls_lost_or_unreadable_are_differences() -> None:
    a = _key("hash", {"f": "v", "g": "w"}, fields={"f": 1000})
    assert compare_key(a, _key("hash", {"f": "v", "g": "w"}, fields={})) == ["field TTLs lost on f"]
    assert compare_key(a, _key("hash", {"f": "v", "g": "w"}, fields=None)) == [
        "field TTLs cannot be read (no HPTTL) for f"
    ]


def test_type_and_value_changes_are_said_in_words() -> None:
    assert compare_key(_key("string", "1"), _key("list", ["1"])) == ["type string -> list"]
    assert compare_key(_key("list", ["a", "b"]), _key("list", ["a"])) == [
        "list value differs: 2 -> 1 elements"
    ]
    group = {"name": "g1", "pending": [["1-1", "alice", 1]], "lag": 0}
    stream_a = {"entries": [], "groups": [group]}
    stream_b = {"entries": [], "groups": [{**group, "pending": []}]}
    (what,) = compare_key(_key("stream", stream_a), _key("stream", stream_b))
    assert what == "stream value differs: group g1 pending: [['1-1', 'alice', 1]] -> []"


def test_snapshot_diff_lists_missing_extra_and_changed_keys() -> None:
    expected = Snapshot({"a": _key("string", "1"), "b": _key("string", "2")})
    actual = Snapshot({"b": _key("string", "3"), "c": _key("string", "4")})
    diff = compare(expected, actual)
    assert (diff.missing, diff.extra, list(diff.changed)) == (["a"], ["c"], ["b"])
    assert not diff.identical
    assert compare(expected, expected).identical


# -- the real matrix -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("migration")
    code = main(["migrate", "--out", str(out), "--timeout", "10"])
    assert code == 0, "some migration cell could not be measured"
    doc = results.load(out / "results.json")
    doc["_out"] = str(out)
    return doc


def _cell(doc: dict, method: str, producer: str, consumer: str) -> list[dict]:
    found = [
        r for r in doc["results"]
        if r["family"] == "migration" and r["method"] == method
        and r["producer"] == producer and r["engine"] == consumer
    ]  # fmt: skip
    assert found, f"no {method} result for {producer} -> {consumer}"
    return found


@pytest.mark.engines
def test_every_pair_and_method_is_measured_and_same_engine_pairs_are_identical(
    matrix_run: dict,
) -> None:
    for method in METHODS:
        for producer in BASE_ENGINES:
            for consumer in BASE_ENGINES:
                cell = _cell(matrix_run, method, producer, consumer)
                assert all(r["outcome"] != "error" for r in cell), cell
                if producer == consumer:  # the control: an engine reads its own data back
                    assert {r["outcome"] for r in cell} == {"pass"}, (method, producer, cell)
    refused = [r for r in matrix_run["results"] if r["outcome"] == "unsupported"]
    assert refused and all(r["detail"].get("error") for r in refused)


@pytest.mark.engines
def test_valkey_9_dump_payloads_are_refused_by_every_redis(matrix_run: dict) -> None:
    for producer in ("valkey-9.0", "valkey-9.1"):
        for consumer in ("redis-7.2", "redis-7.4", "redis-8.0", "redis-8.2"):
            for result in _cell(matrix_run, "dump-restore", producer, consumer):
                assert result["outcome"] == "unsupported"
                assert result["detail"]["error"] == "ERR DUMP payload version or checksum are wrong"
                assert result["detail"]["rdb_version"] == 80


@pytest.mark.engines
def test_redis_7_4_payloads_restore_on_no_valkey(matrix_run: dict) -> None:
    for consumer in ("valkey-8.0", "valkey-8.1", "valkey-9.0", "valkey-9.1"):
        cell = _cell(matrix_run, "dump-restore", "redis-7.4", consumer)
        assert {r["outcome"] for r in cell} == {"unsupported"}
        assert {r["detail"]["rdb_version"] for r in cell} == {12}
    # With rdb-version-check relaxed, Valkey 9 restores them (plain types); Valkey 8.1 does not.
    (string,) = [r for r in _cell(matrix_run, "dump-restore", "redis-7.4", "valkey-9.1")
                 if r["case"].endswith("/string")]  # fmt: skip
    assert string["detail"]["relaxed"] == "restored and identical"
    (string,) = [r for r in _cell(matrix_run, "dump-restore", "redis-7.4", "valkey-8.1")
                 if r["case"].endswith("/string")]  # fmt: skip
    assert string["detail"]["relaxed"].startswith("RESTORE refused: ERR DUMP payload version")
    # ...while Redis 7.2 and Valkey 8 payloads (RDB 11) restore everywhere, identical.
    for producer in ("redis-7.2", "valkey-8.0", "valkey-8.1"):
        for consumer in BASE_ENGINES:
            cell = _cell(matrix_run, "dump-restore", producer, consumer)
            assert {r["outcome"] for r in cell} == {"pass"}, (producer, consumer)


@pytest.mark.engines
def test_rdb_files_cross_as_measured(matrix_run: dict) -> None:
    (r72_to_v91,) = _cell(matrix_run, "rdb", "redis-7.2", "valkey-9.1")
    assert r72_to_v91["outcome"] == "pass"
    (r74_to_v90,) = _cell(matrix_run, "rdb", "redis-7.4", "valkey-9.0")
    assert r74_to_v90["outcome"] == "unsupported"
    assert r74_to_v90["detail"]["error"] == "Can't handle RDB format version 12"
    (v91_to_v81,) = _cell(matrix_run, "rdb", "valkey-9.1", "valkey-8.1")
    assert v91_to_v81["detail"]["error"] == "Can't handle RDB format version 80"
    (v91_to_r80,) = _cell(matrix_run, "rdb", "valkey-9.1", "redis-8.0")
    assert v91_to_r80["detail"]["error"] == "Wrong signature trying to load DB from file"
    # A refused file is tried again without the hashes with field TTLs, as replication is: with
    # rdb-version-check relaxed, Valkey 9 then loads Redis 7.4 files; by default the version
    # refuses it either way.
    for consumer in ("valkey-9.0", "valkey-9.1"):
        (cell,) = _cell(matrix_run, "rdb", "redis-7.4", consumer)
        assert cell["outcome"] == "unsupported"
        assert cell["detail"]["without_field_ttls"] == "refused at load: " + (
            "Can't handle RDB format version 12"
        )
        assert cell["detail"]["relaxed"] == (
            "refused at load with hashes with field TTLs (Can't handle foreign type or opcode 25 "
            "in RDB with version 12); without them it loads and is identical"
        )
    (r74_to_v81,) = _cell(matrix_run, "rdb", "redis-7.4", "valkey-8.1")
    assert r74_to_v81["detail"]["relaxed"] == "refused at load: Can't handle RDB format version 12"


@pytest.mark.engines
def test_replication_failures_say_where(matrix_run: dict) -> None:
    (r74,) = _cell(matrix_run, "replication", "redis-7.4", "valkey-9.1")
    assert (r74["outcome"], r74["detail"]["stage"]) == ("unsupported", "full sync")
    assert r74["detail"]["error"] == "replica: Can't handle RDB format version 12"
    # Valkey 9.1 writes RDB 11 for a replica that does not announce a newer version, and then
    # cannot store hashes with field TTLs in it; without them the sync works.
    (v91,) = _cell(matrix_run, "replication", "valkey-9.1", "redis-7.4")
    assert v91["outcome"] == "divergent"
    assert v91["detail"]["error"] == "primary: Can't store key (db 0) in RDB version 11"
    assert v91["detail"]["without_field_ttls"].startswith("replicated and identical")
    # Redis 7.2 then refuses the field-TTL commands in the stream of writes.
    (v91_r72,) = _cell(matrix_run, "replication", "valkey-9.1", "redis-7.2")
    assert v91_r72["detail"]["stage"] == "stream of writes"
    assert "unknown command 'HPEXPIREAT'" in v91_r72["detail"]["message"]


@pytest.mark.engines
def test_reports_get_the_migration_paths_table(matrix_run: dict) -> None:
    out = Path(matrix_run["_out"])
    text = (out / "matrix.md").read_text()
    assert "## Migration paths" in text
    assert "| valkey-9.1 | — 0/19 [1] |" in text  # valkey-9.1 DUMP -> redis-7.2, all refused
    assert "1. ERR DUMP payload version or checksum are wrong" in text
    page = (out / "index.html").read_text()
    assert 'id="migration"' in page and "Can&#39;t handle RDB format version 12" in page


def test_a_timeout_names_the_step_and_is_measured_once_more(tmp_path: Path) -> None:
    from respmatrix.migration.engines import StepConnection, StepTimeout
    from respmatrix.migration.matrix import RETRY_FACTOR, _ProducerRow
    from respmatrix.migration.outcome import MigrationOutcome

    silent = socket.socket()  # accepts (the kernel does) and never answers
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    try:
        conn = StepConnection("127.0.0.1", port, timeout=0.2)
        with pytest.raises(StepTimeout, match=rf"^RESTORE vectorset on 127.0.0.1:{port}: no reply"):
            conn.call("RESTORE", "vectorset", "0", b"\x07payload")
    finally:
        silent.close()

    row = _ProducerRow([], None, [], 10.0, tmp_path, tmp_path, None)
    timeouts: list[float] = []

    def slow_once(timeout: float) -> list[MigrationOutcome]:
        timeouts.append(timeout)
        if len(timeouts) == 1:
            raise StepTimeout("RESTORE vectorset on 127.0.0.1:1: no reply within 10s")
        return [MigrationOutcome("dump-restore", "a", "b", "string", "pass", "restored")]

    (outcome,) = row._retried(slow_once)
    assert timeouts == [10.0, 10.0 * RETRY_FACTOR]
    assert outcome.extra["retried"].endswith(
        "RESTORE vectorset on 127.0.0.1:1: no reply within 10s"
    )

    def always_slow(timeout: float) -> list[MigrationOutcome]:
        raise StepTimeout(f"FLUSHALL on 127.0.0.1:1: no reply within {timeout:g}s")

    with pytest.raises(StepTimeout, match=r"within 30s; the first attempt: .* within 10s"):
        row._retried(always_slow)


def test_migrate_refuses_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["migrate", "--methods", "rdb,telepathy", "--out", str(tmp_path)]) == 2
    assert "unknown methods: telepathy" in capsys.readouterr().err
    assert main(["migrate", "--engines", "redis-6.0", "--out", str(tmp_path)]) == 2
    assert "redis-6.0" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


def test_migration_results_follow_the_schema(tmp_path: Path) -> None:
    from respmatrix.migration.matrix import merge_into, results_document
    from respmatrix.migration.outcome import MigrationOutcome

    error = "Can't handle RDB format version 12"
    one = MigrationOutcome(
        "rdb", "redis-7.4", "valkey-9.0", "dataset", "unsupported", "refused", error=error
    )
    doc = results_document([one], {})
    results.write(doc, tmp_path / "r.json")  # validates
    again = MigrationOutcome("rdb", "redis-7.4", "valkey-9.0", "dataset", "pass", "loaded")
    merged = merge_into(doc, results_document([again], {}))
    assert [r["outcome"] for r in merged["results"]] == ["pass"]  # a re-run replaces the cell
    assert json.loads(json.dumps(merged))["results"][0]["producer"] == "redis-7.4"
