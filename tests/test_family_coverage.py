"""Coverage measured from the engines themselves (``respmatrix coverage``).

Every command and subcommand that any of the eight engines lists for a family is sent by at least
one case of that family, unless ``suites/exclusions.yaml`` leaves it out with a reason.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from respmatrix.cases import Case, Step
from respmatrix.coverage import measure
from respmatrix.datafiles import data_dir
from tests.conftest import ENGINE_IDS

pytestmark = pytest.mark.engines
# Every family with a suite; a family excluded whole (cluster, sentinel) counts no commands.
FAMILIES = sorted(
    p.name for p in data_dir("suites").iterdir() if p.is_dir() and any(p.rglob("*.yaml"))
)


@pytest.fixture(scope="module")
def report() -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "respmatrix", "coverage", "--json", "--engines", "all"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_inventory_comes_from_every_engine(report: dict) -> None:
    assert report["engines"] == ENGINE_IDS
    assert report["families"]["strings"]["commands"] >= 22
    assert "OBJECT ENCODING" in (
        report["families"]["keyspace"]["covered"] + report["families"]["keyspace"]["not_covered"]
    )


def test_every_family_with_a_suite_is_measured(report: dict) -> None:
    assert len(FAMILIES) >= 20, FAMILIES
    assert set(FAMILIES) <= set(report["families"]), set(FAMILIES) - set(report["families"])


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_is_fully_covered(report: dict, family: str) -> None:
    cov = report["families"][family]
    assert cov["not_covered"] == [], f"{family}: commands without a case: {cov['not_covered']}"
    assert cov["percent"] == 100.0
    for engine, counts in cov["engines"].items():
        assert counts["covered"] == counts["counted"], engine


def test_valkey_only_commands_are_in_the_union(report: dict) -> None:
    strings = report["families"]["strings"]
    assert {"DELIFEQ", "MSETEX"} <= set(strings["covered"])
    assert strings["engines"]["redis-7.2"]["counted"] < strings["engines"]["valkey-9.1"]["counted"]


def test_exclusions_are_listed_with_reasons(report: dict) -> None:
    listed = {r for cov in report["families"].values() for r in cov["excluded"].values()}
    assert listed and all(len(reason) > 15 for reason in listed)
    # a family left out whole is in the report even when no engine lists one of its commands
    assert report["families"]["sentinel"]["commands"] == 0
    assert "sentinel mode" in report["families"]["sentinel"]["family_excluded"]
    assert report["families"]["cluster"]["family_excluded"]


def test_measure_counts_only_what_cases_send(tmp_path) -> None:
    """A pure check of the arithmetic on a made-up inventory."""
    case = Case(
        id="strings/GET/x",
        family="strings",
        claim="c",
        features=("get",),
        steps=(Step(send=("GET", "k"), raw={}),),
        cleanup=(),
        protocols=(2, 3),
        path=tmp_path,
    )
    inventories = {"a": {"GET": "string", "SET": "string"}, "b": {"GET": "string"}}
    report, unmapped = measure(inventories, [case], data_dir("suites"))
    strings = report["strings"]
    assert strings.covered == {"GET"} and strings.not_covered == {"SET"}
    assert strings.per_engine == {"a": (1, 2), "b": (1, 1)}
    assert unmapped == {}
