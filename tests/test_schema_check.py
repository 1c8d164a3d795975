"""The compiled results schema answers as jsonschema does: same verdict, jsonschema's message."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from respmatrix import results
from respmatrix.cases import CaseLoader
from respmatrix.datafiles import FastSafeLoader, data_dir, schema_path
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


# -- the YAML data files (cases, registry, catalog, coverage maps) ------------------------------

DATA_FILES = {
    "case.schema.yaml": sorted(data_dir("suites").glob("*/*/*.yaml"))[::150],
    "registry.schema.yaml": [data_dir("suites") / "registry.yaml"],
    "catalog.schema.yaml": [data_dir("engines") / "catalog.yaml"],
    "coverage.schema.yaml": [data_dir("suites") / n for n in ("families.yaml", "exclusions.yaml")],
}
# fastjsonschema implements draft 7. These keywords do not exist there or mean something else
# than in 2020-12; a schema using one would be checked differently by the two validators.
NOT_IN_DRAFT_7 = {
    "prefixItems", "additionalItems", "unevaluatedItems", "unevaluatedProperties",
    "dependentRequired", "dependentSchemas", "dependencies", "$recursiveRef", "$dynamicRef",
    "$anchor", "$dynamicAnchor", "minContains", "maxContains", "$vocabulary",
}  # fmt: skip
ANNOTATIONS = {"description", "title", "$comment", "examples"}


def subschemas(node: Any) -> Any:
    """Every schema object in a schema (property and definition names are not keywords)."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key in ("properties", "$defs", "patternProperties"):
                for sub in value.values():
                    yield from subschemas(sub)
            elif key not in ("enum", "const", "required", "examples", "default"):
                yield from subschemas(value)
    elif isinstance(node, list):
        for item in node:
            yield from subschemas(item)


@pytest.mark.parametrize("name", sorted(DATA_FILES))
def test_data_schemas_use_only_keywords_draft_7_reads_the_same_way(name: str) -> None:
    schema = yaml.safe_load(schema_path(name).read_text())
    for sub in subschemas(schema):
        assert not NOT_IN_DRAFT_7 & set(sub), f"{name}: {sorted(NOT_IN_DRAFT_7 & set(sub))}"
        assert not isinstance(sub.get("items"), list), f"{name}: tuple-form items"
        if "$ref" in sub:  # draft 7 ignores a $ref's siblings; 2020-12 applies them
            assert set(sub) - {"$ref"} <= ANNOTATIONS, f"{name}: $ref beside {sorted(sub)}"


def mutations(node: Any) -> Any:
    """The instance with one change each: a key dropped, an unknown key added, a value of
    another kind put in, anywhere in the tree."""
    if isinstance(node, dict):
        yield {**node, "zz_unknown": 1}
        for key, value in node.items():
            yield {k: v for k, v in node.items() if k != key}
            for other in (None, 7, "x", [], {}):
                if type(other) is not type(value):
                    yield {**node, key: other}
                    break
            for changed in mutations(value):
                yield {**node, key: changed}
    elif isinstance(node, list):
        yield [*node, {}]
        for index, value in enumerate(node):
            for changed in mutations(value):
                yield [*node[:index], changed, *node[index + 1 :]]


@pytest.mark.parametrize("name", sorted(DATA_FILES))
def test_compiled_data_file_checks_agree_with_jsonschema(name: str) -> None:
    """The shipped data files, and hundreds of one-change variants of them, get the same
    verdict from the compiled check as from jsonschema."""
    schema = yaml.safe_load(schema_path(name).read_text())
    check = SchemaCheck(schema)
    reference = jsonschema.validators.validator_for(schema)(schema)
    tried = refused = 0
    for path in DATA_FILES[name]:
        loader = CaseLoader if name == "case.schema.yaml" else FastSafeLoader()
        instance = yaml.load(path.read_text(), Loader=loader)
        assert check.error(instance) is None, path
        if name == "registry.schema.yaml":  # entries spread over the file, not all 300
            instance["divergences"] = instance["divergences"][::20]
        for variant in islice(mutations(instance), 150):
            expected = any(reference.iter_errors(variant))
            assert (check.error(variant) is not None) == expected, (path, variant)
            tried, refused = tried + 1, refused + expected
    assert refused > tried / 4, "the variants exercise refusals"


def test_where_the_two_checks_disagree_the_compiled_one_refuses_and_says_where() -> None:
    # jsonschema runs patterns with Python's re, whose `$` also matches before a final newline
    check = SchemaCheck(
        {"type": "object", "properties": {"a": {"type": "array", "items": {"pattern": "^x$"}}}}
    )
    assert check.error({"a": ["x"]}) is None
    assert check.error({"a": ["x\n"]}) == "a/0: data.a[0] must match pattern ^x$"
