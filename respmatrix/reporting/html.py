"""The static HTML page: one self-contained ``index.html`` from a results document.

Families -> features -> engines, each cell summarising its results over clients x protocols;
filters by engine, client, protocol and outcome; a cell's results, transcripts and registry notes
one click away; the availability table below. No external asset: it works from ``file://`` and
from GitHub Pages alike.

The page stays small for ~100k results because nothing is stored per result except what a
reader may open: per case one character per (engine, client, protocol), and for the results that
are not a pass a reference into tables of distinct transcripts and messages.

>>> from respmatrix import results
>>> write_html(results.load(Path("reports/results.json")), Path("reports"))
PosixPath('reports/index.html')
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from respmatrix.config_defaults import differing_defaults, engine_configs, partial_parameters
from respmatrix.reporting import OUTCOME_SYMBOLS
from respmatrix.reporting.availability import (
    LINE_NAMES,
    STATE_SYMBOLS,
    AvailabilityTable,
    Evidence,
    attributed,
    engine_facts,
    ordered_engines,
    version_labels,
)
from respmatrix.reporting.clients import TYPED_STATES, ClientTable, typed_methods
from respmatrix.reporting.migration import html_model as migration_html
from respmatrix.reporting.migration import migration_tables, split_migration

# One letter per outcome in the per-case outcome strings; "." where a combination did not run.
OUTCOME_CODES = {
    "pass": "p",
    "fail": "f",
    "unsupported": "u",
    "divergent": "d",
    "error": "e",
    "skipped": "s",
}
# What a matrix cell says, short enough for a phone.
CELL_WORDS = {
    "fail": "fail",
    "error": "error",
    "mixed": "mixed",
    "no": "no",
    "partial": "partial",
    "yes": "yes",
    "skipped": "skipped",
    "none": "not run",
}
CELL_TITLES = {
    "fail": "an unexpected difference (a bug or an unregistered divergence)",
    "error": "the harness could not run some cases",
    "mixed": "present, but some cases find it absent",
    "no": "absent: the engine refuses it, as the registry says",
    "partial": "present, but behaves differently, as the registry says",
    "yes": "present and behaves as expected",
    "skipped": "skipped",
    "none": "not run on this engine",
}
PROTOCOLS = ("resp2", "resp3")


def _cell_counts(counts: Counter[str]) -> str:
    if set(counts) == {"pass"}:
        return str(counts["pass"])
    return " ".join(f"{OUTCOME_SYMBOLS[o]}{counts[o]}" for o in OUTCOME_CODES if counts.get(o))


def _when(stamp: str) -> str:
    """``2026-11-26T11:35:37+00:00`` -> ``2026-11-26 11:35 UTC``."""
    from datetime import datetime, timezone

    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _path(case: str, path: str) -> str:
    """The case's file name, left out where it only repeats the end of the case id."""
    return "" if path == case.rsplit("/", 1)[-1] + ".yaml" else path


class _Interner:
    """Distinct values -> small indices, for the compact tables the page embeds."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._index: dict[str, int] = {}

    def __call__(self, value: Any) -> int:
        key = json.dumps(value, sort_keys=True, ensure_ascii=False)
        found = self._index.get(key)
        if found is None:
            found = self._index[key] = len(self.items)
            self.items.append(value)
        return found


def page_model(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Everything the template needs: the rendered matrix rows and the JSON to embed."""
    migration = migration_html(migration_tables(doc))
    doc, _ = split_migration(doc)  # the matrix and availability are about commands
    facts = engine_facts(doc)
    engines = ordered_engines(facts)
    labels = version_labels(facts)
    engine_index = {e: i for i, e in enumerate(engines)}
    clients = sorted({r["client"] for r in doc["results"]} | set(doc.get("clients", {})))
    combos = [(c, p) for c in clients for p in PROTOCOLS]
    combo_index = {combo: i for i, combo in enumerate(combos)}
    divergences = doc.get("divergences", {})

    cases: dict[str, dict[str, Any]] = {}
    outcomes: dict[str, list[str]] = {}
    evidence: dict[tuple[str, str], dict[str, Evidence]] = defaultdict(dict)
    counts: dict[tuple[str, str, str], Counter[str]] = defaultdict(Counter)
    transcripts, strings, div_table = _Interner(), _Interner(), _Interner()
    div_ids: dict[str, int] = {}
    details: dict[tuple[str, int], list[list[Any]]] = defaultdict(list)
    features: dict[str, int] = {}
    totals: Counter[str] = Counter()

    for result in doc["results"]:
        case = result["case"]
        if case not in cases:
            cases[case] = {"family": result["family"], "features": result["features"]}
            outcomes[case] = ["."] * (len(engines) * len(combos))
        e = engine_index[result["engine"]]
        k = combo_index[result["client"], result["protocol"]]
        outcome = result["outcome"]
        outcomes[case][e * len(combos) + k] = OUTCOME_CODES[outcome]
        totals[outcome] += 1
        speaks = attributed(result, divergences)
        for feature in result["features"]:
            features.setdefault(feature, len(features))
            cell = evidence[result["family"], feature].setdefault(result["engine"], Evidence())
            cell.add(outcome, feature in speaks, result["divergence"], speaks - {feature})
            counts[result["family"], feature, result["engine"]][outcome] += 1
        if outcome != "pass":
            detail = result["detail"]
            div = result["divergence"]
            if div is not None and div not in div_ids:
                entry = divergences.get(div, {})
                div_ids[div] = div_table(
                    [
                        div,
                        entry.get("kind", ""),
                        " ".join(entry.get("note", "").split()),
                        entry.get("source", ""),
                        entry.get("versions", {}),
                        entry.get("features", []),
                    ]
                )
            message = detail.get("message")
            note = divergences.get(div or "", {}).get("note")
            details[case, e].append(
                [
                    k,
                    transcripts(detail.get("transcript", [])),
                    div_ids[div] if div is not None else -1,
                    detail.get("step", 0),
                    -1 if message is None or message == note else strings(str(message)),
                    -1 if "observed" not in detail else strings(str(detail["observed"])),
                ]
            )

    case_ids = sorted(cases)
    case_index = {c: i for i, c in enumerate(case_ids)}
    feature_ids = sorted(features)
    feature_index = {f: i for i, f in enumerate(feature_ids)}
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    by_row: dict[tuple[str, str], list[int]] = defaultdict(list)
    for case in case_ids:
        for feature in cases[case]["features"]:
            by_row[cases[case]["family"], feature].append(case_index[case])
    table = AvailabilityTable.from_results(doc)
    for index, (family, feature) in enumerate(sorted(by_row)):
        cells = []
        for engine in engines:
            ev = evidence[family, feature].get(engine, Evidence())
            state = ev.state
            cells.append(
                {
                    "state": state,
                    "symbol": STATE_SYMBOLS[state],
                    "word": CELL_WORDS[state],
                    "counts": _cell_counts(counts[family, feature, engine]),
                }
            )
        rows[family].append(
            {
                "index": index,
                "feature": feature,
                "cases": by_row[family, feature],
                "cells": cells,
            }
        )

    data = {
        "engines": [
            {
                "id": e,
                "line": facts[e]["line"],
                "version": facts[e]["version"],
                "label": labels[e],
                "build": facts[e].get("build", ""),
            }
            for e in engines
        ],
        "combos": combos,
        "features": feature_ids,
        "cases": [
            [
                c,
                doc.get("cases", {}).get(c, {}).get("claim", ""),
                _path(c, doc.get("cases", {}).get(c, {}).get("path", "")),
                [feature_index[f] for f in cases[c]["features"]],
            ]
            for c in case_ids
        ],
        "outcomes": ["".join(outcomes[c]) for c in case_ids],
        "rows": [
            [family, feature_index[row["feature"]], row["cases"]]
            for family in sorted(rows)
            for row in rows[family]
        ],
        "details": {f"{case_index[c]}.{e}": value for (c, e), value in details.items()},
        "transcripts": transcripts.items,
        "strings": strings.items,
        "divergences": div_table.items,
        "availability": {
            feature: {line: [la.headline, la.text] for line, la in fa.lines.items()}
            for feature, fa in table.items()
        },
    }
    return {
        "doc": doc,
        "generated": _when(doc.get("generated_at", "")),
        "engines": [dict(facts[e], id=e, label=labels[e], index=i) for i, e in enumerate(engines)],
        "lines": [
            (line, LINE_NAMES.get(line, line), [e for e in engines if facts[e]["line"] == line])
            for line in dict.fromkeys(facts[e]["line"] for e in engines)
        ],
        "clients": [(c, doc.get("clients", {}).get(c, {})) for c in clients],
        "protocols": PROTOCOLS,
        "families": [(family, rows[family]) for family in sorted(rows)],
        "totals": [(o, OUTCOME_SYMBOLS[o], totals[o]) for o in OUTCOME_CODES if totals[o]],
        "outcome_symbols": OUTCOME_SYMBOLS,
        "cell_words": CELL_WORDS,
        "cell_titles": CELL_TITLES,
        "state_symbols": STATE_SYMBOLS,
        "case_count": len(case_ids),
        "feature_count": len(feature_ids),
        "result_count": len(doc["results"]),
        "availability": table,
        "migration": migration,
        "config": _config_model(doc, engines),
        "client_table": ClientTable.from_results(doc),
        "typed_rows": typed_methods(doc),
        "typed_states": TYPED_STATES,
        "data_json": json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace(
            "</", "<\\/"
        ),
    }


def _config_model(doc: Mapping[str, Any], engines: list[str]) -> dict[str, Any] | None:
    """The configuration-defaults table, engines in the page's order; None with fewer than two."""
    configs = engine_configs(doc)
    if len(configs) < 2:
        return None
    ordered = [e for e in engines if e in configs]
    configs = {e: configs[e] for e in ordered}
    return {
        "engines": ordered,
        "rows": [(d.name, [d.values[e] for e in ordered]) for d in differing_defaults(configs)],
        "partial": list(partial_parameters(configs).items()),
    }


def render_html(doc: Mapping[str, Any]) -> str:
    """The whole page as one string."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("respmatrix.reporting", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("index.html.j2").render(**page_model(doc))


def write_html(doc: Mapping[str, Any], out: Path) -> Path:
    """Write ``out/index.html`` atomically and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "index.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(doc), encoding="utf-8")
    tmp.replace(path)
    return path
