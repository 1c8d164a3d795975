"""Reports from results files: availability, engine diff, run comparison, merge, the CLI.

All but the last two tests are pure: hand-made results documents, no engine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from respmatrix import results
from respmatrix.cli import main
from respmatrix.config_defaults import (
    HARNESS_SET,
    differing_defaults,
    engine_configs,
    partial_parameters,
)
from respmatrix.reporting.availability import AvailabilityTable, Boundary
from respmatrix.reporting.diff import compare_runs, engine_diff, is_worse, render_engine_diff
from respmatrix.reporting.html import render_html
from tests.conftest import ENGINE_IDS

ENGINES = {
    "redis-7.2": ("redis", "7.2.4"),
    "redis-7.4": ("redis", "7.4.1"),
    "redis-8.0": ("redis", "8.0.2"),
    "valkey-8.0": ("valkey", "8.0.1"),
    "valkey-8.1": ("valkey", "8.1.8"),
    "valkey-9.0": ("valkey", "9.0.0"),
}


def result(
    case: str,
    engine: str,
    outcome: str = "pass",
    features: tuple[str, ...] = ("f",),
    divergence: str | None = None,
    client: str = "raw",
    protocol: str = "resp2",
) -> dict:
    detail = {}
    if outcome != "pass":
        detail = {
            "message": f"{outcome} on {engine}",
            "transcript": [{"send": ["SET", "k", "v"], "reply": {"error": "ERR syntax error"}}],
        }
    return {
        "case": case,
        "family": case.split("/")[0],
        "features": list(features),
        "engine": engine,
        "client": client,
        "protocol": protocol,
        "outcome": outcome,
        "divergence": divergence,
        "detail": detail,
    }


def document(items: list[dict], divergences: dict | None = None) -> dict:
    doc = results.empty_document()
    doc["generated_at"] = "2026-01-02T03:04:05+00:00"
    doc["engines"] = {
        e: {"line": line, "version": v, "build": f"b-{e}", "provider": "binary"}
        for e, (line, v) in ENGINES.items()
        if any(r["engine"] == e for r in items)
    }
    doc["clients"] = {"raw": {"package": "respmatrix", "version": "0.1.0"}}
    doc["cases"] = {r["case"]: {"claim": f"claim of {r['case']}"} for r in items}
    doc["divergences"] = divergences or {}
    doc["results"] = items
    results.validate(doc)
    return doc


def entry(kind: str, *features: str, note: str = "a note") -> dict:
    return {
        "kind": kind,
        "features": list(features),
        "versions": {},
        "note": note,
        "source": "https://example.org/src",
    }


def timeline(feature: str, outcomes: dict[str, str], div: str | None = None) -> list[dict]:
    return [
        result(
            f"fam/{feature}",
            engine,
            outcome,
            (feature,),
            div if outcome in ("unsupported", "divergent") else None,
        )
        for engine, outcome in outcomes.items()
    ]


# -- availability -------------------------------------------------------------------------------


def test_first_version_and_range_wording() -> None:
    doc = document(
        timeline(
            "hexpire",
            {
                "redis-7.2": "unsupported",
                "redis-7.4": "pass",
                "redis-8.0": "pass",
                "valkey-8.0": "unsupported",
                "valkey-8.1": "unsupported",
                "valkey-9.0": "pass",
            },
            "hexpire-entry",
        ),
        {"hexpire-entry": entry("unsupported", "hexpire", note="HEXPIRE came in 7.4 / 9.0")},
    )
    fa = AvailabilityTable.from_results(doc)["hexpire"]
    assert fa.lines["redis"].first == "7.4"
    assert fa.lines["redis"].text == "added after 7.2, by 7.4"
    assert fa.lines["valkey"].first == "9.0"
    assert fa.lines["valkey"].text == "added after 8.1, by 9.0"
    assert fa.lines["valkey"].headline == "9.0"
    assert [n.note for n in fa.notes] == ["HEXPIRE came in 7.4 / 9.0"]
    assert fa.notes[0].source == "https://example.org/src"


def test_present_in_the_lowest_version_is_at_most_that_version() -> None:
    doc = document(
        timeline("get", {"redis-7.2": "pass", "redis-8.0": "pass", "valkey-8.0": "pass"})
    )
    fa = AvailabilityTable.from_results(doc)["get"]
    assert (fa.lines["redis"].headline, fa.lines["redis"].text) == ("≤7.2", "≤7.2")
    assert fa.lines["valkey"].headline == "≤8.0"
    assert fa.everywhere


def test_absent_everywhere_removal_and_partial() -> None:
    doc = document(
        timeline("ifeq", {"redis-7.2": "unsupported", "redis-8.0": "unsupported"}, "ifeq")
        + timeline(
            "old", {"redis-7.2": "pass", "redis-7.4": "pass", "redis-8.0": "unsupported"}, "o"
        )
        + timeline("hscan", {"valkey-8.0": "pass", "valkey-9.0": "divergent"}, "hs"),
        {
            "ifeq": entry("unsupported", "ifeq"),
            "o": entry("unsupported", "old"),
            "hs": entry("divergent", "hscan", note="9.0 orders differently"),
        },
    )
    table = AvailabilityTable.from_results(doc)
    ifeq = table["ifeq"].lines["redis"]
    assert (ifeq.first, ifeq.headline, ifeq.text) == (None, "No", "not in 7.2 to 8.0")
    old = table["old"].lines["redis"]
    assert old.boundaries == (Boundary("added", None, "7.2"), Boundary("removed", "7.4", "8.0"))
    assert old.text == "≤7.2; removed after 7.4, by 8.0"
    assert not old.present_now
    hscan = table["hscan"].lines["valkey"]
    assert hscan.first == "8.0" and hscan.partial == ("9.0",)
    assert not table["hscan"].everywhere
    assert table["hscan"].notes[0].engines == ("valkey-9.0",)


def test_a_result_speaks_for_the_features_its_registry_entry_names() -> None:
    # BITCOUNT exists on Redis; only its start-without-end form does not.
    doc = document(
        [
            result("bitmaps/a", "redis-7.2", "pass", ("bitcount",)),
            result(
                "bitmaps/b",
                "redis-7.2",
                "unsupported",
                ("bitcount", "bitcount-start-only"),
                "start-only",
            ),
        ],
        {"start-only": entry("unsupported", "bitcount-start-only")},
    )
    table = AvailabilityTable.from_results(doc)
    assert table["bitcount"].lines["redis"].headline == "≤7.2"
    assert table["bitcount-start-only"].lines["redis"].headline == "No"


def test_a_feature_blocked_by_a_missing_parent_is_absent_and_says_why() -> None:
    doc = document(
        [
            result("h/nx", "valkey-8.1", "unsupported", ("hexpire", "hexpire-nx"), "hx"),
            result("h/nx", "valkey-9.0", "pass", ("hexpire", "hexpire-nx")),
        ],
        {"hx": entry("unsupported", "hexpire")},
    )
    nx = AvailabilityTable.from_results(doc)["hexpire-nx"].lines["valkey"]
    assert nx.text == "added after 8.1, by 9.0 (8.1: its cases need hexpire)"


def test_unknown_versions_are_skipped_when_pinning_a_boundary() -> None:
    doc = document(
        timeline(
            "x",
            {"valkey-8.0": "unsupported", "valkey-8.1": "error", "valkey-9.0": "pass"},
            "x",
        ),
        {"x": entry("unsupported", "x")},
    )
    la = AvailabilityTable.from_results(doc)["x"].lines["valkey"]
    assert la.text == "added after 8.0, by 9.0"
    assert la.unknown == ("8.1",)
    assert [v.problems for v in la.versions] == [0, 1, 0]


# -- engine diff --------------------------------------------------------------------------------


def cutover_doc() -> dict:
    return document(
        timeline("set-ifeq", {"redis-7.2": "unsupported", "valkey-9.0": "pass"}, "ifeq")
        + timeline("get", {"redis-7.2": "pass", "valkey-9.0": "pass"})
        + [
            result("keys/x", "redis-7.2", "pass", ("lazyfree",)),
            result("keys/x", "valkey-9.0", "divergent", ("lazyfree",), "lazy"),
        ],
        {
            "ifeq": entry("unsupported", "set-ifeq", note="SET IFEQ is a Valkey 8.1 addition."),
            "lazy": entry("divergent", "lazyfree", note="lazyfree defaults differ"),
        },
    )


def test_engine_diff_lists_each_differing_feature_with_its_note() -> None:
    diff = engine_diff(cutover_doc(), "redis-7.2", "valkey-9.0")
    assert [(f.family, f.feature) for f in diff.features] == [
        ("fam", "set-ifeq"),
        ("keys", "lazyfree"),
    ]
    ifeq = diff.features[0]
    assert (ifeq.a_state, ifeq.b_state) == ("no", "yes")
    assert ifeq.notes == ["ifeq"]
    text = render_engine_diff(diff)
    assert "2 of 3 features differ, in 2 families" in text
    lines = text.splitlines()
    row = next(line for line in lines if line.strip().startswith("set-ifeq"))
    assert "absent —1" in row and "supported ✓1" in row
    assert any("SET IFEQ is a Valkey 8.1 addition." in line for line in lines)
    # aligned: the engine columns start at the same place on every feature line
    header = next(line for line in lines if line.strip().startswith("feature"))
    lazy = next(line for line in lines if line.strip().startswith("lazyfree"))
    assert row.index("absent") == lazy.index("supported") == header.index("redis-7.2")
    as_json = diff.as_dict()
    assert as_json["differs"] is True
    assert as_json["families"]["fam"][0]["redis-7.2"]["state"] == "no"
    assert as_json["divergences"]["lazy"]["note"] == "lazyfree defaults differ"


def test_engine_diff_of_alike_engines_is_empty() -> None:
    doc = document(timeline("get", {"redis-7.2": "pass", "redis-7.4": "pass"}))
    diff = engine_diff(doc, "redis-7.2", "redis-7.4")
    assert not diff.differs
    assert "No difference" in render_engine_diff(diff)


def test_diff_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "results.json"
    results.write(cutover_doc(), path)
    assert main(["diff", "redis-7.2", "valkey-9.0", "--results", str(path)]) == 1
    assert "set-ifeq" in capsys.readouterr().out
    assert main(["diff", "redis-7.2", "valkey-9.0", "--results", str(path), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["features_differing"] == 2

    alike = tmp_path / "alike.json"
    results.write(document(timeline("get", {"redis-7.2": "pass", "redis-7.4": "pass"})), alike)
    assert main(["diff", "redis-7.2", "redis-7.4", "--results", str(alike)]) == 0
    capsys.readouterr()

    for args, text in [
        (["redis-7.2", "redis-6.0"], "unknown engine id 'redis-6.0'"),
        (["redis-7.2", "valkey-9.1"], "engine 'valkey-9.1' has no results in this file"),
        (["redis-7.2", "redis-7.2"], "two different engines"),
    ]:
        assert main(["diff", *args, "--results", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("respmatrix: error: ") and text in err[0]
    assert main(["diff", "redis-7.2", "valkey-9.0", "--results", str(tmp_path / "no.json")]) == 2
    assert "no such results file" in capsys.readouterr().err


# -- comparing runs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "worse"),
    [
        ("pass", "fail", True),
        ("pass", "divergent", True),
        ("pass", "skipped", True),
        ("pass", "missing", True),
        ("divergent", "fail", True),
        ("unsupported", "error", True),
        ("unsupported", "missing", True),
        ("divergent", "unsupported", False),
        ("fail", "error", False),
        ("fail", "pass", False),
        ("unsupported", "pass", False),
        ("skipped", "fail", False),
    ],
)
def test_what_counts_as_worse(old: str, new: str, worse: bool) -> None:
    assert is_worse(old, new) is worse


def two_runs() -> tuple[dict, dict]:
    old = document(
        [
            result("s/a", "redis-7.2"),
            result("s/b", "redis-7.2"),
            result("s/c", "redis-7.2", "unsupported", divergence="x"),
            result("s/d", "redis-7.2", "fail"),
            result("s/e", "redis-7.2"),
        ],
        {"x": entry("unsupported", "f")},
    )
    new = document(
        [
            result("s/a", "redis-7.2"),
            result("s/b", "redis-7.2", "fail"),
            result("s/c", "redis-7.2", "error"),
            result("s/d", "redis-7.2"),
            result("s/f", "redis-7.2"),
        ],
        {"x": entry("unsupported", "f")},
    )
    return old, new


def test_compare_lists_cells_that_got_worse() -> None:
    old, new = two_runs()
    comparison = compare_runs(old, new)
    assert [(c.case, c.old, c.new) for c in comparison.worse] == [
        ("s/b", "pass", "fail"),
        ("s/c", "unsupported", "error"),
        ("s/e", "pass", "missing"),
    ]
    assert [c.case for c in comparison.better] == ["s/d"]
    assert comparison.added == 1
    assert compare_runs(old, old).worse == []


def test_compare_cli_output_and_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = two_runs()
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    results.write(old, old_path)
    results.write(new, new_path)
    assert main(["report", "compare", str(old_path), str(new_path)]) == 1
    out = capsys.readouterr().out
    assert "WORSE (3 cells):" in out
    lines = out.splitlines()
    fail = next(line for line in lines if "pass -> fail" in line)
    gone = next(line for line in lines if "pass -> gone" in line)
    assert fail.index("redis-7.2") == gone.index("redis-7.2")  # aligned columns
    assert "fail on redis-7.2" in fail  # the new detail message
    assert main(["report", "compare", str(old_path), str(new_path), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["regressed"] and len(data["worse"]) == 3
    assert main(["report", "compare", str(old_path), str(old_path)]) == 0
    assert "Nothing got worse." in capsys.readouterr().out
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["report", "compare", str(old_path), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not JSON" in err[0]


# -- render and merge through the CLI -----------------------------------------------------------


def test_render_writes_the_markdown_and_the_page(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    results.write(cutover_doc(), path)
    out = tmp_path / "site"
    assert main(["report", "render", str(path), "--out", str(out)]) == 0
    assert (out / "matrix.md").exists()
    page = (out / "index.html").read_text()
    assert "SET IFEQ is a Valkey 8.1 addition." in page
    assert "b-valkey-9.0" in page  # build ids shown
    assert "2026-01-02 03:04 UTC" in page
    assert "<link" not in page and "src=" not in page  # no external asset


def test_page_escapes_what_it_embeds() -> None:
    doc = cutover_doc()
    doc["cases"]["fam/get"]["claim"] = "</script><script>alert(1)</script>"
    page = render_html(doc)
    assert "</script><script>alert(1)" not in page
    assert page.count("</script>") == 2  # the data block and the page script


def test_merge_conflict_or_malformed_shard_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = document([result("s/a", "redis-7.2")])
    b = document([result("s/a", "redis-7.2", "fail")])
    paths = []
    for name, doc in (("a", a), ("b", b)):
        paths.append(tmp_path / f"{name}.json")
        results.write(doc, paths[-1])
    out = tmp_path / "merged.json"
    assert main(["report", "merge", "-o", str(out), *map(str, paths)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("respmatrix: error: conflicting outcomes for s/a / redis-7.2")
    assert not out.exists()

    malformed = tmp_path / "malformed.json"
    malformed.write_text(json.dumps({"schema": "respmatrix/results/v1", "results": []}))
    assert main(["report", "merge", "-o", str(out), str(paths[0]), str(malformed)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a valid respmatrix/results/v1 file" in err[0]
    assert not out.exists()


# The families holding the well-known differences, on every engine, one client, one protocol.
REAL_RUN = [
    "--engines", "all",
    "--families", "hashes,strings,bitmaps,keyspace",
    "--clients", "raw",
    "--protocols", "3",
    "-n", "0",
]  # fmt: skip


@pytest.fixture(scope="module")
def real_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run (about 10 s): eight engines, four families, the raw client over RESP3."""
    out = tmp_path_factory.mktemp("real")
    proc = subprocess.run(
        [sys.executable, "-m", "respmatrix", "run", *REAL_RUN, "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert (out / "results.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "results.json"


@pytest.mark.engines
def test_merging_shards_split_by_engine_gives_back_the_single_run(
    real_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = results.load(real_results)
    shards = []
    for engine in sorted(whole["engines"]):
        part = {k: v for k, v in whole.items() if k != "results"}
        part["engines"] = {engine: whole["engines"][engine]}
        part["results"] = [r for r in whole["results"] if r["engine"] == engine]
        cited = {r["divergence"] for r in part["results"]}
        part["divergences"] = {k: v for k, v in whole["divergences"].items() if k in cited}
        shards.append(tmp_path / f"{engine}.json")
        results.write(part, shards[-1])
    assert len(shards) == len(ENGINE_IDS)  # the eight engines and the two stack variants
    merged_path = tmp_path / "merged.json"
    assert main(["report", "merge", "-o", str(merged_path), *map(str, reversed(shards))]) == 0
    merged = results.load(merged_path)
    for section in ("engines", "clients", "cases", "divergences", "results"):
        assert merged[section] == whole[section], section
    capsys.readouterr()
    assert main(["report", "compare", str(real_results), str(merged_path)]) == 0


@pytest.mark.engines
@pytest.mark.parametrize(
    ("feature", "redis", "valkey"),
    [
        ("hexpire", "7.4", "9.0"),
        ("set-ifeq", None, "8.1"),
        ("delifeq", None, "9.0"),
        ("msetex", None, "9.1"),
        ("bitop-diff", "8.2", None),
        ("bitop-diff1", "8.2", None),
        ("bitop-andor", "8.2", None),
        ("bitop-one", "8.2", None),
        ("vectorset", "8.0", None),  # registry entry vectorset-type
        ("get", "7.2", "8.0"),
    ],
)
def test_availability_on_a_real_run(
    real_results: Path, feature: str, redis: str | None, valkey: str | None
) -> None:
    table = _real_table(real_results)
    fa = table[feature]
    assert fa.lines["redis"].first == redis, fa.lines["redis"].text
    assert fa.lines["valkey"].first == valkey, fa.lines["valkey"].text
    if redis is None and valkey is None:
        return
    assert fa.notes or (redis, valkey) == ("7.2", "8.0"), "a registry note explains it"


_TABLES: dict[Path, AvailabilityTable] = {}


def _real_table(path: Path) -> AvailabilityTable:
    if path not in _TABLES:
        _TABLES[path] = AvailabilityTable.from_results(results.load(path))
    return _TABLES[path]


@pytest.mark.engines
def test_real_run_wording(real_results: Path) -> None:
    table = _real_table(real_results)
    assert table["hexpire"].lines["valkey"].text == "added after 8.1, by 9.0"
    assert table["hexpire"].lines["redis"].text == "added after 7.2, by 7.4"
    assert table["set-ifeq"].lines["redis"].text == "not in 7.2 to 8.2"
    assert table["get"].lines["redis"].headline == "≤7.2"


def test_config_differences_keep_absent_parameters_apart_from_values() -> None:
    configs = {
        "redis-7.2": {"lazyfree-lazy-expire": "no", "maxmemory": "0", "dynamic-hz": "yes"},
        "valkey-9.1": {"lazyfree-lazy-expire": "yes", "maxmemory": "0", "rdb-version-check": "x"},
        "valkey-9.0": {"lazyfree-lazy-expire": "yes", "maxmemory": "0"},
    }
    diffs = differing_defaults(configs)
    assert [d.name for d in diffs] == ["lazyfree-lazy-expire"]
    assert diffs[0].values == {"redis-7.2": "no", "valkey-9.1": "yes", "valkey-9.0": "yes"}
    # one engine having a parameter is not a differing value, it is a partial parameter
    assert partial_parameters(configs) == {
        "dynamic-hz": ["redis-7.2"],
        "rdb-version-check": ["valkey-9.1"],
    }


@pytest.mark.engines
def test_real_run_shows_the_config_defaults_that_differ(real_results: Path) -> None:
    doc = results.load(real_results)
    configs = engine_configs(doc)
    assert set(configs) == set(doc["engines"])
    for config in configs.values():
        assert not HARNESS_SET & set(config), "what the harness sets is not a default"
    lazy = {d.name: d.values for d in differing_defaults(configs)}["lazyfree-lazy-user-del"]
    assert {e: v for e, v in lazy.items() if e.startswith("redis")} == dict.fromkeys(
        [e for e in configs if e.startswith("redis")], "no"
    )
    assert {v for e, v in lazy.items() if e.startswith("valkey")} == {"yes"}
    markdown = (real_results.parent / "matrix.md").read_text()
    section = markdown.split("## Configuration defaults that differ")[1].split("\n## ")[0]
    assert "| lazyfree-lazy-user-del | `no` |" in section
    assert "| maxmemory |" not in section  # the same everywhere
    page = (real_results.parent / "index.html").read_text()
    assert 'id="config"' in page and "lazyfree-lazy-user-del" in page
