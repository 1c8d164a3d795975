"""The compiled results schema answers as jsonschema does: same verdict, jsonschema's message."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from respmatrix import results
from respmatrix.datafiles import schema_path
from respmatrix.schema_check import SchemaCheck

SCHEMA = json.loads(schema_path("results.schema.json").read_text())
ROW_SCHEMA = {"$schema": SCHEMA["$schema"], **SCHEMA["properties"]["results"]["items"]}
ROW_CHECK, DOCUMENT_CHECK = SchemaCheck(ROW_SCHEMA), SchemaCheck(SCHEMA)

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
# For each field: values the schema accepts, and values of every other kind.
fields: dict[str, Any] = {
    "case": st.sampled_from(["strings/SET/x", ""]),
    "family": st.sampled_from(["strings", ""]),
    "features": st.lists(st.sampled_from(["hexpire", 1]), max_size=2),
    "engine": st.sampled_from(["valkey-9.1"]),
    "producer": st.sampled_from(["redis-7.2"]),
    "method": st.sampled_from(["dump-restore", "rdb", "replication", "copy"]),
    "client": st.sampled_from(["raw", "redis-py"]),
    "protocol": st.sampled_from(["resp2", "resp3", "resp4"]),
    "outcome": st.sampled_from(["pass", "fail", "divergent", "great"]),
    "divergence": st.sampled_from([None, "set-ifeq"]),
    "duration_ms": st.sampled_from([0, 1.5, -1]),
    "detail": st.sampled_from([{}, {"message": "m"}]),
}
rows = st.fixed_dictionaries(
    {},
    optional={name: values | anything for name, values in fields.items()} | {"extra": anything},
)


def reference_errors(schema: dict[str, Any], instance: Any) -> bool:
    cls = jsonschema.validators.validator_for(schema)
    return any(cls(schema).iter_errors(instance))


@settings(max_examples=400, deadline=None)
@given(rows)
def test_compiled_row_check_agrees_with_jsonschema(row: dict[str, Any]) -> None:
    assert (ROW_CHECK.error(row) is not None) == reference_errors(ROW_SCHEMA, row)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*SCHEMA["properties"], "x"]), anything))
def test_compiled_document_check_agrees_with_jsonschema(doc: dict[str, Any]) -> None:
    assert (DOCUMENT_CHECK.error(doc) is not None) == reference_errors(SCHEMA, doc)


def test_a_refused_row_is_worded_by_jsonschema() -> None:
    row = {
        "case": "strings/SET/x",
        "family": "strings",
        "features": [],
        "engine": "valkey-9.1",
        "client": "raw",
        "protocol": "resp2",
        "outcome": "pass",
        "divergence": None,
        "detail": {},
    }
    results.validate_row(row)  # a valid row passes
    with pytest.raises(results.ResultsFileError, match=r"at outcome: 'great' is not one of"):
        results.validate_row({**row, "outcome": "great"})
    with pytest.raises(results.ResultsFileError, match=r"at /: 'detail' is a required property"):
        results.validate_row({k: v for k, v in row.items() if k != "detail"})


def test_formats_are_annotations_as_in_jsonschema() -> None:
    # jsonschema without a format checker does not enforce "format"; neither does the compiled
    # check, or a results file could be refused by one path and accepted by the other.
    doc = results.empty_document()
    doc["generated_at"] = "not a date"
    assert not reference_errors(SCHEMA, doc)
    assert DOCUMENT_CHECK.error(doc) is None
