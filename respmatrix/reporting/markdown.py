"""The Markdown matrix: families x engines with outcome counts, and the divergences seen."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from respmatrix.config_defaults import differing_defaults, engine_configs, partial_parameters
from respmatrix.reporting import OUTCOME_SYMBOLS
from respmatrix.reporting.clients import markdown_section
from respmatrix.reporting.fuzz import fuzz_section
from respmatrix.reporting.migration import migration_tables, split_migration
from respmatrix.reporting.migration import render_markdown as render_migration
from respmatrix.runner import OUTCOMES

_SYMBOL = OUTCOME_SYMBOLS


def _cell(counts: Counter[str]) -> str:
    if not counts:
        return ""
    return " ".join(f"{_SYMBOL[o]}{counts[o]}" for o in OUTCOMES if counts[o])


def render_matrix(doc: dict[str, Any]) -> str:
    """Render ``reports/matrix.md`` from a results document."""
    engines = list(doc["engines"]) or sorted({r["engine"] for r in doc["results"]})
    # the command matrix counts suite results; migration results get their own tables (as on
    # the HTML page, so both say the same totals)
    suites, moved = split_migration(doc)
    by_cell: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    families: set[str] = set()
    for result in suites["results"]:
        by_cell[result["family"], result["engine"]][result["outcome"]] += 1
        totals[result["outcome"]] += 1
        families.add(result["family"])

    lines = [
        "# respmatrix compatibility matrix",
        "",
        f"Generated {doc['generated_at']} by respmatrix {doc.get('tool', {}).get('version', '?')}"
        f" from {len(suites['results'])} results"
        + (f" and {len(moved)} migration results." if moved else "."),
        "",
        "Legend: " + ", ".join(f"{s} {o}" for o, s in _SYMBOL.items()) + ". Counts are cases x "
        "clients x protocols.",
        "",
        "## Engines",
        "",
        "| engine | line | version | build | provider | modules |",
        "|---|---|---|---|---|---|",
    ]
    for engine_id in engines:
        facts = doc["engines"].get(engine_id, {})
        versions = facts.get("module_versions", {})
        modules = ", ".join(
            f"{m} {versions[m]}" if m in versions else m for m in facts.get("modules", [])
        )
        lines.append(
            f"| {engine_id} | {facts.get('line', '')} | {facts.get('version', '')} | "
            f"{facts.get('build', '')} | {facts.get('provider', '')} | {modules} |"
        )
    clients = doc.get("clients", {})
    if clients:
        lines += [
            "",
            "Clients: "
            + ", ".join(
                f"{cid} ({c['package']} {c['version']})" for cid, c in sorted(clients.items())
            )
            + ".",
        ]
    lines += ["", "## Outcomes by family", ""]
    lines.append("| family | " + " | ".join(engines) + " |")
    lines.append("|---|" + "---|" * len(engines))
    for family in sorted(families):
        cells = [_cell(by_cell[family, e]) for e in engines]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    lines += ["", "Totals: " + ", ".join(f"{totals[o]} {o}" for o in OUTCOMES if totals[o]) + "."]

    lines += markdown_section(doc)
    lines += _config_section(doc)
    lines += _divergences(doc)
    lines += render_migration(migration_tables(doc))
    lines += _problems(doc)
    lines += fuzz_section(doc)
    return "\n".join(lines) + "\n"


def _config_section(doc: dict[str, Any]) -> list[str]:
    """Starting values that are not the same on every engine, then the parameters some lack."""
    configs = engine_configs(doc)
    if len(configs) < 2:
        return []
    engines = list(configs)
    lines = [
        "",
        "## Configuration defaults that differ",
        "",
        "`CONFIG GET *` of each engine as it started, without what the harness sets (port, dir,"
        " save, appendonly, hz): the values a cutover changes without a config file saying so."
        " `-` where the engine has no such parameter.",
        "",
        "| parameter | " + " | ".join(engines) + " |",
        "|---|" + "---|" * len(engines),
    ]
    for diff in differing_defaults(configs):
        cells = ["-" if diff.values[e] is None else f"`{diff.values[e]}`" for e in engines]
        lines.append(f"| {diff.name} | " + " | ".join(cells) + " |")
    partial = partial_parameters(configs)
    if partial:
        lines += ["", f"Parameters only some engines have ({len(partial)}):", ""]
        lines += [f"- `{name}`: {', '.join(ids)}" for name, ids in partial.items()]
    return lines


def _divergences(doc: dict[str, Any]) -> list[str]:
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for result in doc["results"]:
        if result["divergence"] and result["outcome"] in ("unsupported", "divergent"):
            seen[result["divergence"]][result["outcome"]].add(result["engine"])
    if not seen:
        return []
    lines = [
        "",
        "## Divergences observed",
        "",
        "| id | kind | engines | note | source |",
        "|---|---|---|---|---|",
    ]
    entries = doc.get("divergences", {})
    for div_id in sorted(seen):
        entry = entries.get(div_id, {})
        engines = sorted(set().union(*seen[div_id].values()))
        note = " ".join(entry.get("note", "").split()).replace("|", "\\|")
        lines.append(
            f"| `{div_id}` | {entry.get('kind', '')} | {', '.join(engines)} | {note} | "
            f"[source]({entry.get('source', '')}) |"
        )
    return lines


def _problems(doc: dict[str, Any]) -> list[str]:
    bad = [r for r in doc["results"] if r["outcome"] in ("fail", "error")]
    if not bad:
        return []
    lines = ["", f"## Failures and errors ({len(bad)})", ""]
    for result in bad[:200]:
        message = " ".join(str(result["detail"].get("message", "")).split())[:200]
        lines.append(
            f"- `{result['case']}` on {result['engine']} / {result['client']} / "
            f"{result['protocol']}: **{result['outcome']}** {message}"
        )
    if len(bad) > 200:
        lines.append(f"- ... and {len(bad) - 200} more (see results.json)")
    return lines
