"""Registry entries about module features: support expressed by "the engine has module X loaded".

The unit part uses the real catalog (which ids load which modules, at which versions); the last
test runs a JSON case on the clean redis-7.2, which must refuse it as the registry says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from respmatrix.cases import load_case
from respmatrix.catalog import EngineCatalog
from respmatrix.clients import adapter_class
from respmatrix.clients.base import Endpoint
from respmatrix.datafiles import DataFileError
from respmatrix.registry import DivergenceRegistry
from respmatrix.runner import run_case

ENTRIES = [
    {
        "id": "json-module",
        "kind": "unsupported",
        "features": ["json"],
        "support": {"module": "ReJSON"},
        "reply": {"error_match": "^ERR unknown command"},
        "note": "JSON.* commands come with the ReJSON module.",
        "source": "https://redis.io/docs/latest/develop/data-types/json/",
    },
    {
        "id": "json-old",
        "kind": "divergent",
        "features": ["json"],
        "applies": {"module": "ReJSON", "versions": {"added": "2.6", "removed": "2.8"}},
        "note": "A reply that changed in ReJSON 2.8.",
        "source": "https://github.com/RedisJSON/RedisJSON/releases",
    },
    {
        "id": "vectorset-module",
        "kind": "unsupported",
        "features": ["vectorset"],
        "support": {"module": "vectorset"},
        "reply": {"error_match": "^ERR unknown command"},
        "note": "Vector sets are built into Redis 8.",
        "source": "https://redis.io/docs/latest/develop/data-types/vector-sets/",
    },
]


def registry(tmp_path: Path, entries: list[dict]) -> DivergenceRegistry:
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump({"divergences": entries}))
    return DivergenceRegistry.load(path)


def where(reg: DivergenceRegistry, entry_id: str) -> list[str]:
    return [e.id for e in EngineCatalog.load() if reg.get(entry_id).applies_to(e)]


def test_module_support_follows_the_modules_loaded(tmp_path: Path) -> None:
    reg = registry(tmp_path, ENTRIES)
    every = [e.id for e in EngineCatalog.load()]
    stack = ["redis-7.2+stack", "redis-7.4+stack"]
    # unsupported everywhere the module is not loaded: base ids, Redis 8, every Valkey
    assert where(reg, "json-module") == [e for e in every if e not in stack]
    # a module-version range picks the variant whose module is in it
    assert where(reg, "json-old") == ["redis-7.2+stack"]
    assert where(reg, "vectorset-module") == [
        e for e in every if e not in ("redis-8.0", "redis-8.2")
    ]
    assert reg.get("json-old").as_dict()["versions"] == {"module:ReJSON": "2.6 to <2.8"}


def test_module_and_lines_do_not_mix(tmp_path: Path) -> None:
    bad = dict(ENTRIES[0], support={"module": "ReJSON", "redis": True})
    with pytest.raises(DataFileError, match="support"):
        registry(tmp_path, [bad])


def test_an_engine_without_the_module_reports_unsupported(tmp_path: Path, running) -> None:
    reg = registry(tmp_path, ENTRIES)
    case_path = tmp_path / "json" / "JSON.SET" / "root.yaml"
    case_path.parent.mkdir(parents=True)
    case_path.write_text(
        yaml.safe_dump(
            {
                "claim": "JSON.SET stores a document at the root",
                "features": ["json"],
                "steps": [{"send": ["JSON.SET", "doc", "$", '{"a":1}'], "expect": "OK"}],
            }
        )
    )
    case = load_case(case_path, tmp_path)
    redis = running["redis-7.2"]  # the base id: no module loaded
    adapter = adapter_class("raw")(Endpoint.single(redis.host, redis.port), 3)
    try:
        result = run_case(case, adapter, redis.spec, reg)
    finally:
        adapter.close()
    assert (result.outcome, result.divergence) == ("unsupported", "json-module")
    assert result.detail["observed"].startswith("ERR unknown command 'JSON.SET'")
