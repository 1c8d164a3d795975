"""Reports keep an engine variant (redis-7.4+stack: modules loaded) apart from its clean server.

Pure data: a small results document, no engine. Takes well under a second.
"""

from __future__ import annotations

from respmatrix import results
from respmatrix.reporting.availability import AvailabilityTable, engine_facts


def _doc() -> dict:
    doc = results.empty_document()
    doc["generated_at"] = "2026-01-02T03:04:05+00:00"
    doc["engines"] = {
        "redis-7.2": {"line": "redis", "version": "7.2.4", "build": "b", "provider": "binary"},
        "redis-7.2+stack": {
            "line": "redis",
            "version": "7.2.4",
            "build": "b",
            "provider": "binary",
            "modules": ["ReJSON"],
            "module_versions": {"ReJSON": "2.6.9"},
            "variant": "stack",
        },
    }
    doc["clients"] = {"raw": {"package": "respmatrix", "version": "0.1.0"}}
    doc["cases"] = {"json/JSON.SET/x": {"claim": "JSON.SET stores a document"}}
    doc["divergences"] = {
        "json-module": {
            "kind": "unsupported",
            "features": ["json"],
            "versions": {"module:ReJSON": "all versions"},
            "note": "JSON.* comes with the ReJSON module.",
            "source": "https://redis.io/docs/latest/develop/data-types/json/",
        }
    }
    doc["results"] = [
        {
            "case": "json/JSON.SET/x",
            "family": "json",
            "features": ["json"],
            "engine": engine,
            "client": "raw",
            "protocol": "resp3",
            "outcome": outcome,
            "divergence": "json-module" if outcome == "unsupported" else None,
            "detail": {"message": "JSON.* comes with the ReJSON module."}
            if outcome == "unsupported"
            else {},
        }
        for engine, outcome in (("redis-7.2", "unsupported"), ("redis-7.2+stack", "pass"))
    ]
    results.validate(doc)  # variant and module_versions are part of the results contract
    return doc


def test_a_variant_is_its_own_line_in_reports() -> None:
    doc = _doc()
    facts = engine_facts(doc)
    assert (facts["redis-7.2"]["line"], facts["redis-7.2+stack"]["line"]) == (
        "redis",
        "redis+stack",
    )
    json = AvailabilityTable.from_results(doc)["json"]
    # not "mixed on Redis 7.2": absent from the clean server, present with the modules loaded
    assert json.lines["redis"].first is None
    assert json.lines["redis+stack"].first == "7.2"
    assert json.lines["redis+stack"].headline == "≤7.2"
