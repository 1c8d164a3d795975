"""The command line as a user meets it: clear errors, real runs, Ctrl-C keeping results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from respmatrix import results
from respmatrix.clients import ADAPTERS
from tests.conftest import ENGINE_IDS


def respmatrix(*args: str, cwd: Path | None = None, timeout: int = 300):
    return subprocess.run(
        [sys.executable, "-m", "respmatrix", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
    )


def finish(proc: subprocess.Popen, timeout: float, group: bool = False) -> tuple[str, str]:
    """Wait for a process we signalled; if it ignores us, kill it so no server outlives the test
    (its servers die with it through PDEATHSIG) and fail."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.communicate()
        raise


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("respmatrix: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (("run", "--engines", "redis-6.0"), 2, "unknown engine id 'redis-6.0'"),
        (("engines", "install", "valkey-7"), 2, "unknown engine id 'valkey-7'"),
        (("run", "--clients", "jedis"), 2, "unknown client 'jedis'"),
        (("run", "--families", "nope"), 2, "unknown families: nope"),
        (("run", "--protocols", "4"), 2, "unknown protocol '4'"),
        (("run", "--engine-url", "valkey-9.1"), 2, "--engine-url expects ID=URL"),
    ],
)
def test_bad_input_gives_one_clear_error(args, code, text) -> None:
    proc = respmatrix(*args)
    assert proc.returncode == code
    assert text in one_error_line(proc)


def test_unreachable_engine_url_is_an_error_not_a_pass(tmp_path: Path) -> None:
    from respmatrix.launcher import free_port

    proc = respmatrix(
        "run",
        "--engines",
        "valkey-9.1",
        "--clients",
        "raw",
        "--protocols",
        "2",
        "--families",
        "strings",
        "--engine-url",
        f"valkey-9.1=redis://127.0.0.1:{free_port()}",
        "-n",
        "0",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 1
    assert "cannot reach valkey-9.1 at 127.0.0.1:" in one_error_line(proc)
    assert "Connection refused" in proc.stderr
    assert not (tmp_path / "results.json").exists()


def test_engine_url_of_another_engine_is_refused(tmp_path: Path, running) -> None:
    redis = running["redis-7.2"]
    proc = respmatrix(
        "run",
        "--engines",
        "valkey-9.1",
        "--engine-url",
        f"valkey-9.1=redis://{redis.address}",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 1
    assert "identifies as redis 7.2.4" in one_error_line(proc)


def test_run_exit_status_in_the_cli_words(tmp_path: Path) -> None:
    nothing = respmatrix(
        "run",
        "--engines",
        "valkey-9.1",
        "--families",
        "strings",
        "-n",
        "0",
        "--out",
        str(tmp_path),
        "--",
        "-k",
        "no-such-case-anywhere",
    )
    assert nothing.returncode == 2  # nothing collected is bad input, not success
    assert not (tmp_path / "results.json").exists() or results.load(tmp_path / "results.json")


def test_results_path_that_is_a_folder(tmp_path: Path) -> None:
    proc = respmatrix("diff", "redis-7.2", "valkey-9.1", "--results", str(tmp_path))
    assert proc.returncode == 2
    assert "cannot read" in one_error_line(proc)


def test_malformed_results_file(tmp_path: Path) -> None:
    bad = tmp_path / "results.json"
    bad.write_text("[1, 2")
    proc = respmatrix("report", "render", str(bad))
    assert proc.returncode == 2
    assert "not JSON" in one_error_line(proc)


def test_engines_list_json() -> None:
    proc = respmatrix("engines", "list", "--json")
    assert proc.returncode == 0
    rows = json.loads(proc.stdout)
    assert [r["id"] for r in rows] == ENGINE_IDS
    assert all(r["installed"] for r in rows), "run `respmatrix engines install all` first"


def test_run_writes_valid_results_and_matrix(tmp_path: Path) -> None:
    proc = respmatrix(
        "run",
        "--engines",
        "redis-7.2,valkey-9.1",
        "--families",
        "strings",
        "-n",
        "0",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    doc = results.load(tmp_path / "results.json")  # validates against the JSON Schema
    assert set(doc["engines"]) == {"redis-7.2", "valkey-9.1"}
    assert doc["engines"]["valkey-9.1"]["version"] == "9.1.2"
    assert set(doc["clients"]) == set(ADAPTERS)
    outcomes = {r["outcome"] for r in doc["results"]}
    assert outcomes <= {"pass", "unsupported", "divergent"}
    ifeq = {
        (r["engine"], r["outcome"])
        for r in doc["results"]
        if r["case"] == "strings/SET/ifeq-replaces-on-match"
    }
    assert ifeq == {("redis-7.2", "unsupported"), ("valkey-9.1", "pass")}
    assert not (tmp_path / ".parts").exists(), "merged parts are removed"
    assert (tmp_path / "index.html").stat().st_size > 10_000
    matrix = (tmp_path / "matrix.md").read_text()
    assert "| strings |" in matrix and "`set-ifeq`" in matrix


def servers_with(token: str) -> set[int]:
    """Processes whose environment carries ``token`` (servers inherit the run's environment)."""
    pids = set()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if token.encode() in environ.read_bytes():
                pids.add(int(environ.parent.name))
        except OSError:
            continue
    return pids - {os.getpid()}


def test_ctrl_c_keeps_partial_results_and_leaves_no_server(tmp_path: Path) -> None:
    token = f"RESPMATRIX_TEST_TOKEN={uuid.uuid4()}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "respmatrix",
            "run",
            "--engines",
            "all",
            # one family keeps collection short (the whole matrix is 400,000 items)
            "--families",
            "strings",
            "-n",
            "2",
            "--out",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, token.split("=")[0]: token.split("=")[1]},
    )
    parts = tmp_path / ".parts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = (
            sum(p.read_text().count('"type": "result"') for p in parts.glob("*.jsonl"))
            if parts.exists()
            else 0
        )
        if lines >= 20:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    finish(proc, timeout=60, group=True)
    doc = results.load(tmp_path / "results.json")
    assert len(doc["results"]) >= 20
    assert servers_with(token) == set()


def test_ctrl_c_while_the_workers_are_torn_down_still_keeps_the_results(tmp_path: Path) -> None:
    # At "[100%]" every case has run and xdist is stopping its workers: a Ctrl-C there used to
    # escape pytest before the plugin merged the parts, losing the whole run.
    token = f"RESPMATRIX_TEST_TOKEN={uuid.uuid4()}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "respmatrix", "run", "--engines", "valkey-9.1,redis-7.4",
         "--families", "strings", "--clients", "raw", "-n", "2", "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        env={**os.environ, token.split("=")[0]: token.split("=")[1]},
    )  # fmt: skip
    assert proc.stdout is not None
    seen = ""
    while not seen.endswith("[100%]"):
        char = proc.stdout.read(1)
        assert char, f"the run ended before it printed [100%]: {seen[-2000:]}"
        seen += char
    proc.send_signal(signal.SIGINT)
    out, _ = finish(proc, timeout=60)
    assert proc.returncode == 130, out
    doc = results.load(tmp_path / "results.json")
    assert len(doc["results"]) == len(
        {(r["case"], r["engine"], r["protocol"]) for r in doc["results"]}
    )
    assert len(doc["results"]) > 300
    assert not (tmp_path / ".parts").exists()
    assert servers_with(token) == set()


def test_engines_start_serves_until_interrupted() -> None:
    from respmatrix.clients.resp import RespConnection
    from respmatrix.launcher import free_port

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "respmatrix", "engines", "start", "redis-7.4", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert f"listening on redis://127.0.0.1:{port}" in line
        with RespConnection("127.0.0.1", port, protocol=3) as conn:
            assert conn.hello["version"] == "7.4.1"
        busy = respmatrix("engines", "start", "valkey-9.1", "--port", str(port))
        assert busy.returncode == 1
        assert f"port {port} on 127.0.0.1 is already in use" in one_error_line(busy)
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = finish(proc, timeout=20)
    assert proc.returncode == 0 and "redis-7.4 stopped" in out
    with pytest.raises(OSError):
        RespConnection("127.0.0.1", port, timeout=1)


def test_auto_workers_is_one_more_than_the_usable_cores() -> None:
    from respmatrix.cli import default_workers

    assert default_workers() == len(os.sched_getaffinity(0)) + 1
