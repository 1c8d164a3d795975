"""``respmatrix audit`` against a live Redis 7.2 that ran a known workload, target valkey-9.1.

The results file comes from a real (small) matrix run made here: the families the workload
touches, on redis-7.2 and valkey-9.1, raw client, RESP2, plus the migration matrix of the pair
(about 20 s together). The expected differing commands are computed from the registry and the
case files, not typed in: a used command must differ exactly when a case filed under it carries
a feature whose registry entry covers one engine and not the other.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from respmatrix.audit import AuditError, parse_commandstats, read_command_list
from respmatrix.cases import discover_cases
from respmatrix.catalog import EngineCatalog
from respmatrix.cli import main
from respmatrix.clients.resp import RespConnection
from respmatrix.datafiles import data_dir
from respmatrix.launcher import EngineProcess
from respmatrix.registry import DivergenceRegistry

SOURCE, TARGET = "redis-7.2", "valkey-9.1"
FAMILIES = "strings,keyspace,lists,hyperloglog,server"
# The workload: each command once or more; CONFIG SET changes one setting away from its default,
# CONFIG GET is one of the commands the audit sends too (and differs on valkey-9.1).
WORKLOAD = [
    ("SET", "user:1", "alice"),
    ("GET", "user:1"),
    ("INCR", "visits"),
    ("APPEND", "user:1", "!"),
    ("EXPIRE", "user:1", "3600"),
    ("OBJECT", "ENCODING", "visits"),
    ("RPUSH", "queue", "a", "b"),
    ("LRANGE", "queue", "0", "-1"),
    ("PFADD", "seen", "a", "b"),
    ("PFCOUNT", "seen"),
    ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru"),
    ("CONFIG", "GET", "maxmemory-policy"),
]
USED = {"SET", "GET", "INCR", "APPEND", "EXPIRE", "OBJECT ENCODING", "RPUSH", "LRANGE",
        "PFADD", "PFCOUNT", "CONFIG SET", "CONFIG GET"}  # fmt: skip
AUDITOR = ("auditor", "s3cret")
READS = {"hello", "info", "config|get", "module|list", "command|docs", "acl|log"}


def _changed_stats(before: str, after: str) -> set[str]:
    """The ``cmdstat_*`` names whose line changed between two INFO commandstats."""
    old = set(before.splitlines())
    return {line.split(":")[0] for line in after.splitlines() if line.startswith("cmdstat_")
            and line not in old}  # fmt: skip


@pytest.fixture(scope="module")
def results_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit-results")
    engines = f"{SOURCE},{TARGET}"
    run = ["run", "--engines", engines, "--clients", "raw", "--protocols", "2",
           "--families", FAMILIES, "-n", "0", "--out", str(out)]  # fmt: skip
    assert main(run) == 0
    assert main(["migrate", "--engines", engines, "--out", str(out)]) == 0
    return out / "results.json"


@pytest.fixture(scope="module")
def source(catalog: EngineCatalog, store: object) -> Iterator[EngineProcess]:
    spec = catalog.get(SOURCE)
    process = EngineProcess(spec, store.server_path(spec), store.server_env(spec)).start()  # type: ignore[attr-defined]
    try:
        with RespConnection(process.host, process.port) as conn:
            # Limited to exactly the audit's reads; the workload runs as the default user.
            user, password = AUDITOR
            allowed = ["+hello", "+info", "+config|get", "+module|list", "+command|docs"]
            reply = conn.call("ACL", "SETUSER", user, "on", f">{password}", "-@all", *allowed)
            assert reply == "OK"
            for command in WORKLOAD:
                conn.call(*command)
        yield process
    finally:
        process.stop()


def _audit(process: EngineProcess, results_file: Path, *more: str, user=AUDITOR) -> list[str]:
    auth = f"{user[0]}:{user[1]}@" if user else ""
    return ["audit", "--source", f"redis://{auth}{process.host}:{process.port}",
            "--target", TARGET, "--results", str(results_file), *more]  # fmt: skip


def expected_differing(used: set[str]) -> set[str]:
    """The used commands the registry says differ between the two engines.

    An entry that covers one engine and not the other speaks for the command its cases are
    filed under, except a refusal as an unknown command, which speaks for the command named
    (an HSET case that also sends HPEXPIRE differs because of HPEXPIRE), or a refusal naming
    another command (a RESTORE case refused at ``CONFIG SET rdb-version-check``).
    """
    catalog = EngineCatalog.load()
    source, target = catalog.get(SOURCE), catalog.get(TARGET)
    splitting = {}
    for entry in DivergenceRegistry.load().entries.values():
        if entry.scope == "engine" and entry.in_range(source) != entry.in_range(target):
            for feature in entry.features:
                splitting[feature] = entry
    differing = set()
    for case in discover_cases(data_dir("suites"), set(FAMILIES.split(","))):
        folder = case.id.split("/")[1].replace("-", " ", 1)
        for feature in case.features:
            entry = splitting.get(feature)
            if entry is None:
                continue
            refusal = str((entry.reply or {}).values())
            named = re.search(
                r"unknown command '([A-Za-z]+)|arguments for ([A-Z]+ [A-Z]+)", refusal
            )
            command = folder
            if named and entry.kind == "unsupported":
                command = (named.group(1) or named.group(2)).upper()
            if command in used:
                differing.add(command)
    return differing


@pytest.mark.engines
def test_audit_lists_exactly_the_used_commands_that_differ(
    source: EngineProcess, results_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with RespConnection(source.host, source.port) as conn:
        before = conn.call("INFO", "commandstats")
    code = main(_audit(source, results_file, "--json"))
    report = json.loads(capsys.readouterr().out)
    statuses = {c["command"]: c for c in report["commands"]}
    # Used = what the server counted before (the workload, the launcher's HELLO, INFO and
    # MODULE LIST, the ACL SETUSER, earlier audits' reads) plus this test's INFO: the audit
    # reads the statistics right after its HELLO, and takes exactly that HELLO off.
    calls = parse_commandstats(before)
    calls["INFO"] = calls.get("INFO", 0) + 1
    assert set(calls) >= USED
    assert {c: s["calls"] for c, s in statuses.items()} == calls
    used = set(calls)
    # The workload's CONFIG GET is reported like any other command: it differs on valkey-9.1.
    assert statuses["CONFIG GET"]["status"] == "divergent"
    assert report["notes"][0].startswith(f"CONFIG GET: {calls['CONFIG GET']} call")
    differing = {c for c, s in statuses.items() if s["status"] in ("divergent", "unsupported")}
    assert differing == expected_differing(used)
    for command in differing:  # every difference carries its registry note and source
        assert statuses[command]["notes"] and all(n["source"] for n in statuses[command]["notes"])
    assert report["source"]["engine"] == SOURCE
    # lazyfree defaults (registry: lazyfree-defaults) change on the way to Valkey.
    changed = {row["name"] for row in report["config"]["default_changes"]}
    assert {"lazyfree-lazy-user-del", "lazyfree-lazy-server-del"} <= changed
    assert {r["name"] for r in report["config"]["non_default"]} == {"maxmemory-policy"}
    assert {m["method"]: m["works"] for m in report["migration"]} == {
        "dump-restore": True, "rdb": True, "replication": True,
    }  # fmt: skip
    assert code == (1 if report["blockers"] else 0)
    assert main(_audit(source, results_file)) == code
    out = capsys.readouterr().out
    (note,) = [line for line in out.splitlines() if "earlier audits count here too" in line]
    assert "CONFIG GET: " in note and "HELLO: " in note
    # Read-only, under an ACL user limited to the five commands: nothing denied, nothing written.
    with RespConnection(source.host, source.port) as conn:
        after = conn.call("INFO", "commandstats")
        assert conn.call("ACL", "LOG") == []
    assert _changed_stats(before, after) <= {f"cmdstat_{name}" for name in READS}


@pytest.mark.engines
def test_human_output_and_commands_from_a_monitor_capture(
    source: EngineProcess, results_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "monitor.txt"
    capture.write_text(
        "OK\n"
        '1764160000.000001 [0 127.0.0.1:50000] "SET" "k" "v"\n'
        '1764160000.000002 [0 127.0.0.1:50000] "object" "encoding" "k"\n'
        '1764160000.000003 [0 127.0.0.1:50000] "HGETEX" "h" "FIELDS" "1" "f"\n'
    )
    code = main(_audit(source, results_file, "--commands-from", str(capture)))
    out = capsys.readouterr().out
    assert "OBJECT ENCODING" in out and "[embstr-128-valkey]" in out
    assert ("Blockers (0)" in out) == (code == 0)
    assert main(_audit(source, results_file, "--commands-from", str(capture), "--json")) == code
    report = json.loads(capsys.readouterr().out)
    assert {c["command"] for c in report["commands"]} == {"SET", "OBJECT ENCODING", "HGETEX"}
    assert report["source"]["commands_read_from"] == str(capture)
    assert report["notes"] == []  # the caveat on INFO commandstats is not about a given list
    listed = tmp_path / "commands.txt"
    listed.write_text("set\nconfig|get\n")
    assert main(_audit(source, results_file, "--commands-from", str(listed), "--json")) in (0, 1)
    report = json.loads(capsys.readouterr().out)
    assert {c["command"] for c in report["commands"]} == {"SET", "CONFIG GET"}


def test_commands_from_a_monitor_capture_read_off_a_plain_socket(tmp_path: Path) -> None:
    # Captured by sending MONITOR on a plain socket to redis-7.2 while redis-py ran a workload:
    # each line is a RESP simple string, the first one MONITOR's own +OK.
    capture = tmp_path / "monitor-raw.txt"
    capture.write_text(
        "+OK\n"
        '+1795746905.167703 [0 127.0.0.1:47302] "HELLO" "3"\n'
        '+1795746905.170137 [0 127.0.0.1:47302] "CLIENT" "SETINFO" "LIB-NAME" "redis-py"\n'
        '+1795746905.170309 [0 127.0.0.1:47302] "CLIENT" "SETINFO" "LIB-VER" "8.1.0"\n'
        '+1795746905.170431 [0 127.0.0.1:47302] "SET" "k \\"q\\"" "v\\nx"\n'
        '+1795746905.170664 [0 127.0.0.1:47302] "OBJECT" "ENCODING" "k"\n'
        '+1795746905.170961 [0 127.0.0.1:47302] "LPOS" "q" "b"\n'
        '+1795746905.171122 [0 127.0.0.1:47302] "EVAL" '
        '"return redis.call(\'GET\', KEYS[1])" "1" "k"\n'
        '+1795746905.171144 [0 lua] "GET" "k"\n'
        '+1795746905.171376 [0 127.0.0.1:47302] "MULTI"\n'
        '+1795746905.171398 [0 127.0.0.1:47302] "INCRBY" "c" "1"\n'
        '+1795746905.171403 [0 127.0.0.1:47302] "HSET" "h" "f" "v"\n'
        '+1795746905.171404 [0 127.0.0.1:47302] "EXEC"\n'
        '+1795746905.171547 [0 127.0.0.1:47302] "SCAN" "0"\n'
        '+1795746905.171673 [0 127.0.0.1:47302] "XADD" "s" "*" "a" "1"\n'
    )
    known = {"OBJECT ENCODING", "CLIENT SETINFO"}
    assert read_command_list(capture, known) == {
        "HELLO": 1, "CLIENT SETINFO": 2, "SET": 1, "OBJECT ENCODING": 1, "LPOS": 1, "EVAL": 1,
        "GET": 1, "MULTI": 1, "INCRBY": 1, "HSET": 1, "EXEC": 1, "SCAN": 1, "XADD": 1,
    }  # fmt: skip
    # The prefix is taken off MONITOR lines only: a listed "+SET" is still not a command name.
    listed = tmp_path / "commands.txt"
    listed.write_text("GET\n+SET\n")
    with pytest.raises(AuditError, match="not a command name: '\\+SET'"):
        read_command_list(listed, known)


@pytest.fixture
def not_resp() -> Iterator[int]:
    """A TCP server that answers like a web server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.mark.engines
def test_bad_input_is_one_line_and_exit_2(
    source: EngineProcess,
    results_file: Path,
    not_resp: int,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with RespConnection(source.host, source.port) as conn:
        writes_before = conn.call("INFO", "commandstats")
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    base = ["--target", TARGET, "--results", str(results_file)]
    partial = tmp_path / "partial.json"
    doc = json.loads(results_file.read_text())
    doc["results"] = [r for r in doc["results"] if r["engine"] != TARGET]
    partial.write_text(json.dumps(doc))
    cases = {
        "unreachable": (["audit", "--source", f"redis://127.0.0.1:{port}", *base],
                        "cannot reach the source"),
        "auth": (_audit(source, results_file, user=("auditor", "wrong")), "authentication"),
        "not RESP": (["audit", "--source", f"redis://127.0.0.1:{not_resp}", *base],
                     "does not answer as a RESP server"),
        "unknown target": (["audit", "--source", f"redis://{source.host}:{source.port}",
                            "--target", "valkey-99", "--results", str(results_file)], "valkey-99"),
        "no results file": (
            ["audit", "--source", f"redis://{source.host}:{source.port}", "--target", TARGET,
             "--results", str(tmp_path / "missing.json")],
            "make one with `respmatrix run --out reports` and `respmatrix migrate --out reports`, "
            "or pass --results FILE"),
        "target not in results": (
            ["audit", "--source", f"redis://{source.host}:{source.port}", "--target", TARGET,
             "--results", str(partial)], f"no results for the target {TARGET}"),
    }  # fmt: skip
    for name, (argv, words) in cases.items():
        assert main(argv) == 2, name
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("respmatrix: error:"), (name, lines)
        assert words in lines[0], (name, lines[0])
        assert captured.out == ""
    with RespConnection(source.host, source.port) as conn:
        after = conn.call("INFO", "commandstats")
    # Only the reads of the audits (and of this test) ran in between: no write command.
    assert _changed_stats(writes_before, after) <= {f"cmdstat_{name}" for name in READS}
