"""The main job, end to end: every shipped case on every catalog engine x client x protocol.

This is the check the published table rests on: no `fail`, no `error`, every difference
explained by the registry, and the well-known differences landing on the right versions.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from respmatrix import results
from respmatrix.cases import discover_cases
from respmatrix.clients import ADAPTERS, adapter_class
from respmatrix.datafiles import data_dir
from tests.conftest import ENGINE_IDS as ENGINES

pytestmark = pytest.mark.engines


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("matrix")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "respmatrix",
            "run",
            "--engines",
            "all",
            "--out",
            str(out),
            "-n",
            "2",
            "--no-install",
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert (out / "results.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = results.load(out / "results.json")
    doc["_exit"], doc["_stdout"] = proc.returncode, proc.stdout
    doc["_matrix"] = Path(out / "matrix.md").read_text()
    return doc


def test_no_fail_and_no_error(matrix: dict) -> None:
    bad = [
        f"{r['case']} {r['engine']} {r['client']} {r['protocol']}: {r['outcome']} "
        f"{r['detail'].get('message', '')}"
        for r in matrix["results"]
        if r["outcome"] in ("fail", "error")
    ]
    assert bad == [], "\n".join(bad[:40])
    assert matrix["_exit"] == 0, matrix["_stdout"][-3000:]


def test_every_case_ran_on_every_cell(matrix: dict) -> None:
    assert sorted(matrix["engines"]) == ENGINES
    assert set(matrix["clients"]) == set(ADAPTERS)
    cells = defaultdict(set)
    for r in matrix["results"]:
        cells[r["case"]].add((r["engine"], r["client"], r["protocol"]))
    cases = {c.id: c for c in discover_cases(data_dir("suites"))}
    assert set(cells) == set(cases), "every shipped case has results"
    for case_id, seen in cells.items():
        case = cases[case_id]
        # raw cases run through every client mode; typed-API cases through those offering it
        clients = [c for c in ADAPTERS if case.runs_on(adapter_class(c).api)]
        expected = len(ENGINES) * len(clients) * len(case.protocols)
        assert len(seen) == expected, f"{case_id} ran in {len(seen)} cells"


def test_every_divergence_is_explained(matrix: dict) -> None:
    for r in matrix["results"]:
        if r["outcome"] in ("unsupported", "divergent"):
            entry = matrix["divergences"][r["divergence"]]
            assert entry["note"] and entry["source"].startswith("https://")


def outcomes_by_engine(matrix: dict, feature: str) -> dict[str, set[str]]:
    """Engine outcomes only: what a client library does (scope client) is another question."""
    found: dict[str, set[str]] = defaultdict(set)
    for r in matrix["results"]:
        if feature in r["features"] and r["detail"].get("scope") != "client":
            found[r["engine"]].add(r["outcome"])
    assert found, f"no case exercises {feature}"
    return found


@pytest.mark.parametrize(
    ("feature", "present_on"),
    [
        ("set-ifeq", {"valkey-8.1", "valkey-9.0", "valkey-9.1"}),
        ("delifeq", {"valkey-9.0", "valkey-9.1"}),
        ("msetex", {"valkey-9.1"}),
    ],
)
def test_valkey_only_commands_land_on_the_right_versions(
    matrix: dict, feature: str, present_on: set[str]
) -> None:
    found = outcomes_by_engine(matrix, feature)
    for engine in ENGINES:
        expected = {"pass"} if engine in present_on else {"unsupported"}
        assert found[engine] == expected, f"{feature} on {engine}: {found[engine]}"


def test_lazyfree_defaults_differ_on_every_valkey(matrix: dict) -> None:
    found = outcomes_by_engine(matrix, "config-lazyfree-defaults")
    for engine in ENGINES:
        expected = {"divergent"} if engine.startswith("valkey") else {"pass"}
        assert found[engine] == expected, engine


def test_matrix_md_lists_engines_and_divergences(matrix: dict) -> None:
    text = matrix["_matrix"]
    for engine in ENGINES:
        assert f"| {engine} |" in text
    assert "`lazyfree-defaults`" in text
