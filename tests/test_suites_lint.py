"""Lint of the shipped data: cases, registry and catalog follow their schemas and each other."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml

from respmatrix.cases import discover_cases
from respmatrix.catalog import EngineCatalog
from respmatrix.clients import ADAPTERS
from respmatrix.datafiles import data_dir
from respmatrix.registry import DivergenceRegistry

SUITES = data_dir("suites")
CASES = discover_cases(SUITES)
REGISTRY = DivergenceRegistry.load()


def test_there_are_cases_for_both_foundation_families() -> None:
    families = Counter(case.family for case in CASES)
    assert families["strings"] >= 20 and families["keyspace"] >= 20, families


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case_is_well_formed(case) -> None:
    parts = case.id.split("/")
    assert len(parts) == 3, "cases live at suites/<family>/<COMMAND>/<claim>.yaml"
    assert re.fullmatch(r"[A-Z][A-Z0-9_.-]*", parts[1]), "the folder names the command"
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", parts[2]), "file names are kebab-case claims"
    for step in case.steps:
        for divergence_id in step.alternatives:
            entry = REGISTRY.entries.get(divergence_id)
            assert entry is not None, f"unknown registry entry {divergence_id!r}"
            assert entry.outcome == "divergent", f"{divergence_id} is not a divergent entry"
            assert set(entry.features) & set(case.features), (
                f"{divergence_id} touches none of the case's features"
            )


def test_claims_are_unique() -> None:
    claims = Counter(case.claim for case in CASES)
    assert [c for c, n in claims.items() if n > 1] == []


def test_every_registry_entry_is_exercised_by_a_case() -> None:
    features = {f for case in CASES for f in case.features}
    unexercised = [e.id for e in REGISTRY.entries.values() if not set(e.features) & features]
    assert unexercised == []


# Every module some catalog id loads (MODULE LIST names), for registry entries naming a module.
MODULES = {name for spec in EngineCatalog.load() for name in spec.loaded_modules}


def test_registry_entries_name_real_lines_and_sources() -> None:
    raw = yaml.safe_load((SUITES / "registry.yaml").read_text())
    for item in raw["divergences"]:
        assert item["source"].startswith("https://")
        if item["kind"] == "client":  # client entries name client modes; engines are optional
            assert set(item["clients"]) <= set(ADAPTERS), item["id"]
            if "engines" not in item:
                continue
        ranges = item.get("support") or item.get("applies") or item.get("engines")
        if "module" in ranges:  # a module feature: the engines that load the module
            assert ranges["module"] in MODULES, item["id"]
        else:
            assert set(ranges) == {"redis", "valkey"}


def test_no_case_changes_the_servers_hz() -> None:
    # The pool runs engines at hz 100 (pool.SUITE_SERVER_ARGS) so blocking timeouts resolve in
    # ~10 ms; a case that set hz, or restored "the default" 10 in its cleanup, would slow every
    # later case of that worker's engine without failing any.
    def sets_hz(command: tuple) -> bool:
        words = [str(w).lower() for w in command]
        return words[:2] == ["config", "set"] and "hz" in words[2::2]

    offenders = [
        case.id
        for case in CASES
        if any(sets_hz(step.send) for step in case.steps if step.send)
        or any(map(sets_hz, case.cleanup))
    ]
    assert offenders == []
