"""The pytest plugin as a client-library maintainer uses it: fixtures, ids, version markers."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.engines


@pytest.fixture(autouse=True)
def keep_engine_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytester moves HOME to a temp dir; point the subprocess at the real engine store."""
    from respmatrix.store import EngineStore

    monkeypatch.setenv("RESPMATRIX_HOME", str(EngineStore().root.parent))


def test_fixtures_give_running_engines_and_clients(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_set_get(resp_client):
            assert resp_client.call("SET", "k", "v") == "OK"
            assert resp_client.call("GET", "k") == "v"

        def test_flushed_between_tests(resp_client):
            assert resp_client.call("DBSIZE") == 0
            resp_client.call("SET", "left", "behind")

        @pytest.mark.engine_versions(redis=False, valkey=">=9.0")
        def test_delifeq(resp_client):
            assert resp_client.call("SET", "k", "v") == "OK"
            assert resp_client.call("DELIFEQ", "k", "v") == 1

        def test_engine_only(resp_engine):
            assert resp_engine.facts["line"] in ("redis", "valkey")
        """
    )
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--engines",
        "redis-7.2,valkey-9.1",
        "--clients",
        "raw,redis-py",
        "-v",
    )
    result.assert_outcomes(passed=2 * 8 + 4 + 2, skipped=4)
    result.stdout.fnmatch_lines(
        [
            "*test_set_get?valkey-9.1-redis-py-resp3? PASSED*",
            "*test_delifeq?redis-7.2-raw-resp2? SKIPPED*",
            "*test_engine_only?valkey-9.1? PASSED*",
        ]
    )


def test_unknown_engine_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(resp_client):\n    pass\n")
    result = pytester.runpytest_subprocess("--engines", "redis-5.0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown engine id 'redis-5.0'*"])


def test_plugin_import_is_cheap() -> None:
    import subprocess
    import sys

    code = (
        "import sys, respmatrix.plugin; "
        "print(sorted(m for m in ('redis', 'valkey', 'jsonschema') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_parametrized_python_tests_record_distinct_cases(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("value", ["a", "b"])
        def test_echo(resp_client, value):
            assert resp_client.call("ECHO", value) == value
        """
    )
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--engines",
        "valkey-9.1",
        "--clients",
        "raw",
        "--protocols",
        "2",
        "--respmatrix-out",
        str(out),
    )
    result.assert_outcomes(passed=2)
    import json

    doc = json.loads((out / "results.json").read_text())
    assert sorted(r["case"] for r in doc["results"]) == [
        "test_parametrized_python_tests_record_distinct_cases.py::test_echo[a]",
        "test_parametrized_python_tests_record_distinct_cases.py::test_echo[b]",
    ]


def test_a_case_item_runs_every_client_and_names_the_ones_that_fail(
    pytester: pytest.Pytester,
) -> None:
    """One item per (case, engine, protocol); each client's outcome is its own results row,
    and a failure report says which clients failed."""
    import json

    suites = pytester.path / "suites"
    (suites / "t").mkdir(parents=True)
    (suites / "registry.yaml").write_text("divergences: []\n")
    (suites / "t" / "good.yaml").write_text(
        "claim: ECHO echoes\nfeatures: [echo]\nsteps:\n  - send: [ECHO, hi]\n    expect: hi\n"
    )
    (suites / "t" / "bad.yaml").write_text(
        "claim: a deliberately wrong expectation\nfeatures: [echo]\n"
        "steps:\n  - send: [ECHO, hi]\n    expect: ho\n"
    )
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        str(suites),
        "-p",
        "no:cacheprovider",
        "--suites",
        str(suites),
        "--engines",
        "valkey-9.1",
        "--clients",
        "raw,redis-py",
        "--protocols",
        "3",
        "--respmatrix-out",
        str(out),
        "-v",
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*good.yaml::good?valkey-9.1-resp3? PASSED*",
            '*raw: fail: expected "ho", got "hi"*',
            '*redis-py: fail: expected "ho", got "hi"*',
        ]
    )
    doc = json.loads((out / "results.json").read_text())
    rows = sorted((r["case"], r["client"], r["outcome"]) for r in doc["results"])
    assert rows == [
        ("t/bad", "raw", "fail"),
        ("t/bad", "redis-py", "fail"),
        ("t/good", "raw", "pass"),
        ("t/good", "redis-py", "pass"),
    ]
