"""The "migration paths" tables: producers x consumers per method, each cell with its reason.

Built from the ``migration`` family of a results file only. A cell sums what moved from the
producer (row) to the consumer (column): for DUMP/RESTORE the data types restored identical out
of those dumped, for RDB and replication the one outcome. The reason (an exact refusal, or what
differed) is a numbered note under the table, so equal reasons are written once.

>>> tables = migration_tables(doc)
>>> print("\\n".join(render_markdown(tables)))
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from respmatrix.migration import FAMILY, METHODS
from respmatrix.reporting import OUTCOME_SYMBOLS

METHOD_TITLES = {
    "dump-restore": "DUMP/RESTORE (per data type)",
    "rdb": "RDB file (SAVE on the producer, the consumer started on it)",
    "replication": "Replication (the consumer as a replica of the producer)",
}
# A cell's state, worst first: what the reader most needs to see decides the symbol.
_ORDER = ("error", "unsupported", "divergent", "pass")
STATE_WORDS = {
    "pass": "identical",
    "divergent": "different",
    "unsupported": "refused",
    "error": "not measured",
}


@dataclass
class Cell:
    """What moved from one producer to one consumer by one method."""

    outcomes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def state(self) -> str:
        kinds = {r["outcome"] for r in self.outcomes}
        for kind in _ORDER:
            if kind in kinds:
                return "partial" if kind == "unsupported" and "pass" in kinds else kind
        return "none"

    @property
    def symbol(self) -> str:
        state = self.state
        if state == "partial":
            return OUTCOME_SYMBOLS["divergent"]
        return OUTCOME_SYMBOLS.get(state, "·")

    @property
    def passed(self) -> int:
        return sum(r["outcome"] == "pass" for r in self.outcomes)

    def reasons(self) -> dict[str, list[str]]:
        """Reason -> the subjects (data types) it applies to, for the results that are not pass."""
        found: dict[str, list[str]] = defaultdict(list)
        for result in self.outcomes:
            if result["outcome"] != "pass":
                detail = result["detail"]
                reason = detail.get("message", "")
                if result["outcome"] == "unsupported":  # a refusal: the consumer's own words
                    reason = detail.get("error") or reason
                    if result["method"] == "replication" and detail.get("stage"):
                        reason = f"{detail['stage']}: {reason}"
                    if detail.get("relaxed"):
                        reason += f" (with rdb-version-check relaxed: {detail['relaxed']})"
                found[reason].append(result["case"].rsplit("/", 1)[-1])
        return dict(found)


@dataclass
class MethodTable:
    method: str
    producers: list[str]
    consumers: list[str]
    cells: dict[tuple[str, str], Cell]

    def cell(self, producer: str, consumer: str) -> Cell | None:
        return self.cells.get((producer, consumer))


def is_migration(result: Mapping[str, Any]) -> bool:
    return result.get("family") == FAMILY


def split_migration(doc: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the document without migration results, the migration results)."""
    moved = [r for r in doc["results"] if is_migration(r)]
    if not moved:
        return dict(doc), []
    rest = dict(doc)
    rest["results"] = [r for r in doc["results"] if not is_migration(r)]
    return rest, moved


def _engine_order(doc: Mapping[str, Any], ids: set[str]) -> list[str]:
    from respmatrix.catalog import EngineCatalog

    try:
        known = [spec.id for spec in EngineCatalog.load()]
    except Exception:
        known = []
    ordered = [e for e in known if e in ids]
    return ordered + sorted(ids - set(ordered))


def migration_tables(doc: Mapping[str, Any]) -> list[MethodTable]:
    """One table per method found in the results file, in the order of METHODS."""
    by_method: dict[str, dict[tuple[str, str], Cell]] = defaultdict(dict)
    for result in doc["results"]:
        if is_migration(result):
            cells = by_method[result["method"]]
            key = (result["producer"], result["engine"])
            cells.setdefault(key, Cell()).outcomes.append(result)
    tables = []
    for method in METHODS:
        cells = by_method.get(method)
        if not cells:
            continue
        producers = _engine_order(doc, {p for p, _ in cells})
        consumers = _engine_order(doc, {c for _, c in cells})
        tables.append(MethodTable(method, producers, consumers, cells))
    return tables


def cell_text(cell: Cell, method: str, notes: dict[str, int]) -> str:
    """``✓ 17/17``, ``— 0/17 [1]``, ``≠ 19/20 [2] vectorset``; notes numbered in ``notes``."""
    refs = []
    for reason, subjects in cell.reasons().items():
        number = notes.setdefault(reason, len(notes) + 1)
        partial = method == "dump-restore" and len(subjects) < len(cell.outcomes)
        refs.append(f"[{number}]" + (f" {', '.join(subjects)}" if partial else ""))
    head = cell.symbol
    if method == "dump-restore":
        head += f" {cell.passed}/{len(cell.outcomes)}"
    else:
        head += f" {STATE_WORDS.get(cell.outcomes[0]['outcome'], '')}"
    return " ".join([head, *refs])


def render_markdown(tables: Sequence[MethodTable]) -> list[str]:
    """The "Migration paths" section of matrix.md (no lines when there is nothing to show)."""
    if not tables:
        return []
    lines = [
        "",
        "## Migration paths",
        "",
        "Rows are producers (where the data was written), columns consumers (where it went). "
        "✓ identical, ≠ accepted but different or partly refused, — refused, ! not measured; "
        "DUMP/RESTORE cells count the data types restored identical. Numbers point to the "
        "reasons below the table: the consumer's exact words.",
    ]
    for table in tables:
        notes: dict[str, int] = {}
        lines += [
            "",
            f"### {METHOD_TITLES.get(table.method, table.method)}",
            "",
            "| producer \\ consumer | " + " | ".join(table.consumers) + " |",
            "|---|" + "---|" * len(table.consumers),
        ]
        for producer in table.producers:
            cells = []
            for consumer in table.consumers:
                cell = table.cell(producer, consumer)
                cells.append(cell_text(cell, table.method, notes) if cell else "")
            lines.append(f"| {producer} | " + " | ".join(cells) + " |")
        if notes:
            lines.append("")
            for reason, number in notes.items():
                lines.append(f"{number}. {_md(reason)}")
    return lines


def _md(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def html_model(tables: Sequence[MethodTable]) -> list[dict[str, Any]]:
    """Plain dicts for the HTML template: per method, rows of cells with symbol, text, title."""
    model = []
    for table in tables:
        notes: dict[str, int] = {}
        rows = []
        for producer in table.producers:
            cells = []
            for consumer in table.consumers:
                cell = table.cell(producer, consumer)
                if cell is None:
                    cells.append({"state": "none", "text": "", "title": "not run"})
                    continue
                reasons = cell.reasons()
                title = "; ".join(
                    f"{r} ({', '.join(s)})" if table.method == "dump-restore" else r
                    for r, s in reasons.items()
                )
                cells.append(
                    {
                        "state": cell.state,
                        "text": cell_text(cell, table.method, notes),
                        "title": title or STATE_WORDS["pass"],
                    }
                )
            rows.append({"producer": producer, "cells": cells})
        model.append(
            {
                "method": table.method,
                "title": METHOD_TITLES.get(table.method, table.method),
                "consumers": table.consumers,
                "rows": rows,
                "notes": [(n, r) for r, n in notes.items()],
            }
        )
    return model
