"""The client views: client mode x engine outcome counts, and the typed methods each client offers.

Outcomes a client registry entry explains (``detail.scope == "client"``) are counted apart from
the engine's own, so a reader sees whether a difference comes from the server or the library.
Client ids are shown with their package version; results of several versions of one client
(``redis-py@5.3.0`` beside ``redis-py``, from the tox client envs) sit side by side as rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from respmatrix.reporting import OUTCOME_SYMBOLS

# Families whose results are not cases run through a client mode: the migration matrix and the
# differential fuzzer drive engines with the raw client themselves.
NOT_CLIENT_FAMILIES = frozenset({"migration", "fuzz"})


def client_scope(result: Mapping[str, Any]) -> bool:
    """True when the outcome is the client library's doing, not the engine's."""
    return result["detail"].get("scope") == "client"


def client_label(client_id: str, clients: Mapping[str, Any]) -> str:
    facts = clients.get(client_id, {})
    version = facts.get("version")
    base = client_id.split("@", 1)[0]
    return f"{base} {version}" if version else client_id


@dataclass
class ClientCell:
    """Counts for one client mode on one engine, both protocols."""

    engine: Counter[str] = field(default_factory=Counter)  # outcomes of the engine's making
    client: Counter[str] = field(default_factory=Counter)  # outcomes a client entry explains

    def text(self) -> str:
        if not self.engine and not self.client:
            return ""
        parts = [f"{OUTCOME_SYMBOLS[o]}{n}" for o, n in _ordered(self.engine)]
        if self.client:
            parts.append(
                "client: " + " ".join(f"{OUTCOME_SYMBOLS[o]}{n}" for o, n in _ordered(self.client))
            )
        return " ".join(parts)

    @property
    def worst(self) -> str:
        merged = self.engine + self.client
        for outcome in ("error", "fail"):
            if merged[outcome]:
                return outcome
        if self.client:
            return "client"
        return "pass" if merged else "none"


def _ordered(counts: Counter[str]) -> list[tuple[str, int]]:
    return [(o, counts[o]) for o in OUTCOME_SYMBOLS if counts[o]]


@dataclass
class ClientTable:
    clients: list[str]
    engines: list[str]
    cells: dict[tuple[str, str], ClientCell]
    labels: dict[str, str]

    @classmethod
    def from_results(cls, doc: Mapping[str, Any]) -> ClientTable:
        cells: dict[tuple[str, str], ClientCell] = defaultdict(ClientCell)
        for result in doc["results"]:
            if result["family"] in NOT_CLIENT_FAMILIES:
                continue
            cell = cells[result["client"], result["engine"]]
            side = cell.client if client_scope(result) else cell.engine
            side[result["outcome"]] += 1
        engines = list(doc.get("engines", {})) or sorted({e for _, e in cells})
        clients = sorted({c for c, _ in cells}, key=lambda c: (c.split("@")[0], c))
        known = doc.get("clients", {})
        return cls(clients, engines, dict(cells), {c: client_label(c, known) for c in clients})


# A typed-method cell, from the outcomes over both protocols, in order of precedence.
TYPED_STATES = {
    "error": "! error",
    "fail": "✗ fails",
    "client-unsupported": "⊘ client lacks it",
    "client-divergent": "≠ client differs",
    "unsupported": "— engine lacks it",
    "divergent": "≠ engine differs",
    "pass": "✓ works",
}


@dataclass
class TypedRow:
    api: str
    method: str
    client: str
    cells: dict[str, str]  # engine -> state key of TYPED_STATES


def typed_methods(doc: Mapping[str, Any]) -> list[TypedRow]:
    """Per typed method (the ``method.*`` features of typed cases) and client mode, whether it
    works on each engine."""
    cases = doc.get("cases", {})
    seen: dict[tuple[str, str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for result in doc["results"]:
        facts = cases.get(result["case"], {})
        if not facts.get("api"):
            continue
        state = result["outcome"]
        if client_scope(result) and state in ("unsupported", "divergent"):
            state = f"client-{state}"
        api = ",".join(facts["api"])
        for feature in result["features"]:
            if feature.startswith("method."):
                method = feature.removeprefix("method.")
                seen[api, method, result["client"]][result["engine"]].add(state)
    rows = []
    for (api, method, client), by_engine in sorted(seen.items()):
        cells = {
            engine: next(s for s in TYPED_STATES if s in states)
            for engine, states in by_engine.items()
        }
        rows.append(TypedRow(api, method, client, cells))
    return rows


def markdown_section(doc: Mapping[str, Any]) -> list[str]:
    """The client x engine table and the typed-method view, as Markdown lines."""
    table = ClientTable.from_results(doc)
    if not table.clients:
        return []
    lines = [
        "",
        "## Clients x engines",
        "",
        "Outcomes per client mode (both protocols) and engine. Outcomes that a client registry "
        "entry explains are counted after `client:`, apart from the engine's own.",
        "",
        "| client | " + " | ".join(table.engines) + " |",
        "|---|" + "---|" * len(table.engines),
    ]
    for client in table.clients:
        cells = [table.cells.get((client, e), ClientCell()).text() for e in table.engines]
        lines.append(f"| {table.labels[client]} | " + " | ".join(cells) + " |")
    rows = typed_methods(doc)
    if rows:
        lines += [
            "",
            "## Typed API methods by client",
            "",
            "Each library's own method (not `execute_command`), its parsed return value checked: "
            + ", ".join(TYPED_STATES.values())
            + ".",
            "",
            "| method | client | " + " | ".join(table.engines) + " |",
            "|---|---|" + "---|" * len(table.engines),
        ]
        for row in rows:
            cells = [TYPED_STATES[row.cells[e]] if e in row.cells else "" for e in table.engines]
            lines.append(
                f"| `{row.method}` | {table.labels.get(row.client, row.client)} | "
                + " | ".join(cells)
                + " |"
            )
    return lines
