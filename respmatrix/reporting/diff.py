"""Two views of change: between two engines of one run, and between two runs.

``engine_diff`` is the cutover view (say ``redis-7.2`` -> ``valkey-9.1``): every feature whose
results differ between the two engines, grouped by family, with the registry's explanation.

``compare_runs`` is the regression view: the cells (case, engine, client, protocol) of an old
results file that got worse in a new one: a pass that no longer passes, a registered difference
(``divergent``/``unsupported``) that became a ``fail`` or ``error``, a cell that disappeared.

>>> diff = engine_diff(doc, "redis-7.2", "valkey-9.1")
>>> print(render_engine_diff(diff))                    # grouped, aligned text
>>> comparison = compare_runs(old_doc, new_doc)
>>> comparison.worse                                   # [] when nothing regressed
"""

from __future__ import annotations

import textwrap
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from respmatrix.reporting import OUTCOME_SYMBOLS
from respmatrix.reporting.availability import STATE_WORDS, Evidence, attributed

SYMBOLS = {**OUTCOME_SYMBOLS, "missing": "·"}
ORDER = tuple(SYMBOLS)


class UnknownEngineInResults(ValueError):
    """An engine id the results document has no results for."""


def _counts_text(counts: Mapping[str, int]) -> str:
    return " ".join(f"{SYMBOLS[o]}{counts[o]}" for o in ORDER if counts.get(o)) or "·"


# -- engine diff --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultChange:
    """One (case, client, protocol) whose outcome differs between the two engines."""

    case: str
    client: str
    protocol: str
    a: tuple[str, str | None]  # (outcome, divergence id); ("missing", None) if not run
    b: tuple[str, str | None]


@dataclass
class FeatureChange:
    family: str
    feature: str
    a_state: str  # yes | partial | mixed | no | fail | error | skipped | none
    b_state: str
    a_counts: Counter[str]
    b_counts: Counter[str]
    changes: list[ResultChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # registry ids, in order of first sight

    @property
    def cases(self) -> list[str]:
        return sorted({c.case for c in self.changes})


@dataclass
class EngineDiff:
    a: str
    b: str
    engines: Mapping[str, Mapping[str, Any]]
    features: list[FeatureChange]
    divergences: Mapping[str, Mapping[str, Any]]
    compared_features: int  # distinct features of the cases compared
    compared_results: int  # (case, client, protocol) compared

    @property
    def differs(self) -> bool:
        return bool(self.features)

    def as_dict(self) -> dict[str, Any]:
        families: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for fc in self.features:
            families[fc.family].append(
                {
                    "feature": fc.feature,
                    self.a: {"state": fc.a_state, "outcomes": dict(fc.a_counts)},
                    self.b: {"state": fc.b_state, "outcomes": dict(fc.b_counts)},
                    "cases": fc.cases,
                    "results": [
                        {
                            "case": c.case,
                            "client": c.client,
                            "protocol": c.protocol,
                            self.a: {"outcome": c.a[0], "divergence": c.a[1]},
                            self.b: {"outcome": c.b[0], "divergence": c.b[1]},
                        }
                        for c in fc.changes
                    ],
                    "notes": fc.notes,
                }
            )
        cited = {n for fc in self.features for n in fc.notes}
        return {
            "a": {"id": self.a, **_engine_summary(self.engines.get(self.a, {}))},
            "b": {"id": self.b, **_engine_summary(self.engines.get(self.b, {}))},
            "differs": self.differs,
            "features_compared": self.compared_features,
            "features_differing": len({f.feature for f in self.features}),
            "families": dict(families),
            "divergences": {
                d: {k: v for k, v in self.divergences.get(d, {}).items() if k != "features"}
                for d in sorted(cited)
            },
        }


def _engine_summary(facts: Mapping[str, Any]) -> dict[str, Any]:
    return {k: facts[k] for k in ("line", "version", "build") if k in facts}


def engine_diff(doc: Mapping[str, Any], a: str, b: str) -> EngineDiff:
    """Every (family, feature) whose results differ between engines ``a`` and ``b``.

    Two results are alike when outcome and registry entry are the same: both ``divergent`` under
    one entry behave alike; ``divergent`` under two different entries do not.
    """
    present = {r["engine"] for r in doc["results"]}
    for engine in (a, b):
        if engine not in present:
            have = ", ".join(sorted(present)) or "none"
            raise UnknownEngineInResults(
                f"engine {engine!r} has no results in this file (it has: {have})"
            )
    divergences = doc.get("divergences", {})
    side: dict[tuple[str, str, str], dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for result in doc["results"]:
        if result["engine"] in (a, b):
            side[result["case"], result["client"], result["protocol"]][result["engine"]] = result

    rows: dict[tuple[str, str], FeatureChange] = {}
    evidence: dict[tuple[str, str], dict[str, Evidence]] = defaultdict(
        lambda: {a: Evidence(), b: Evidence()}
    )
    counts: dict[tuple[str, str], dict[str, Counter[str]]] = defaultdict(
        lambda: {a: Counter(), b: Counter()}
    )
    compared = set()
    for (case, client, protocol), pair in side.items():
        some = next(iter(pair.values()))
        keys = [(some["family"], f) for f in some["features"]]
        for engine, result in pair.items():
            speaks = attributed(result, divergences)
            for family, feature in keys:
                evidence[family, feature][engine].add(
                    result["outcome"], feature in speaks, result["divergence"], speaks - {feature}
                )
                counts[family, feature][engine][result["outcome"]] += 1
        for engine in (a, b):
            if engine not in pair:
                for key in keys:
                    counts[key][engine]["missing"] += 1
        compared.update(keys)
        ra, rb = pair.get(a), pair.get(b)
        va = (ra["outcome"], ra["divergence"]) if ra else ("missing", None)
        vb = (rb["outcome"], rb["divergence"]) if rb else ("missing", None)
        if va == vb:
            continue
        change = ResultChange(case, client, protocol, va, vb)
        for key in keys:
            row = rows.get(key)
            if row is None:
                row = rows[key] = FeatureChange(key[0], key[1], "", "", Counter(), Counter())
            row.changes.append(change)
            for div in (va[1], vb[1]):
                if div and div not in row.notes:
                    row.notes.append(div)
    for key, row in rows.items():
        row.a_state, row.b_state = evidence[key][a].state, evidence[key][b].state
        row.a_counts, row.b_counts = counts[key][a], counts[key][b]
        row.changes.sort(key=lambda c: (c.case, c.client, c.protocol))
    return EngineDiff(
        a,
        b,
        doc.get("engines", {}),
        [rows[k] for k in sorted(rows)],
        divergences,
        len({feature for _, feature in compared}),
        len(side),
    )


def _engine_title(engine: str, facts: Mapping[str, Any]) -> str:
    if not facts:
        return engine
    build = f", build {facts['build']}" if facts.get("build") else ""
    return f"{engine} ({facts.get('line', '')} {facts.get('version', '')}{build})"


def render_engine_diff(diff: EngineDiff, width: int = 100) -> str:
    """Readable text: families, then one aligned line per feature, then its registry notes."""
    lines = [
        f"{_engine_title(diff.a, diff.engines.get(diff.a, {}))}",
        f"  -> {_engine_title(diff.b, diff.engines.get(diff.b, {}))}",
        "",
    ]
    if not diff.differs:
        lines.append(
            f"No difference: {diff.compared_features} features, {diff.compared_results} "
            "case x client x protocol results behave alike on both engines."
        )
        return "\n".join(lines) + "\n"
    changed = len({(c.case, c.client, c.protocol) for f in diff.features for c in f.changes})
    families = sorted({f.family for f in diff.features})
    lines.append(
        f"{len({f.feature for f in diff.features})} of {diff.compared_features} features differ, "
        f"in {len(families)} families ({changed} of {diff.compared_results} results; "
        "✓ pass  ≠ divergent  — unsupported  ✗ fail  ! error  · not run)."
    )
    name_width = min(max(len(f.feature) for f in diff.features), 40)
    col_a = max(len(_side(f.a_state, f.a_counts)) for f in diff.features)
    col_a = max(col_a, len(diff.a))
    col_b = max(max(len(_side(f.b_state, f.b_counts)) for f in diff.features), len(diff.b))
    explained: set[str] = set()
    for family in families:
        rows = [f for f in diff.features if f.family == family]
        lines += [
            "",
            f"{family} ({len(rows)} feature{'s' if len(rows) != 1 else ''})",
            f"  {'feature':<{name_width}}  {diff.a:<{col_a}}  {diff.b:<{col_b}}  cases",
        ]
        for row in rows:
            total_cases = len({c.case for c in row.changes})
            lines.append(
                f"  {row.feature:<{name_width}}  {_side(row.a_state, row.a_counts):<{col_a}}  "
                f"{_side(row.b_state, row.b_counts):<{col_b}}  {total_cases} differ"
            )
            for div in row.notes:
                entry = diff.divergences.get(div, {})
                if div in explained or not entry:
                    lines.append(f"      [{div}] (see above)" if entry else f"      [{div}]")
                    continue
                explained.add(div)
                note = " ".join(entry.get("note", "").split())
                text = f"[{div}] {entry.get('kind', '')}: {note} <{entry.get('source', '')}>"
                lines += textwrap.wrap(
                    text, width, initial_indent="      ", subsequent_indent="        "
                )
    return "\n".join(lines) + "\n"


def _side(state: str, counts: Mapping[str, int]) -> str:
    return f"{STATE_WORDS.get(state, state)} {_counts_text(counts)}"


# -- comparing two runs -------------------------------------------------------------------------

_KEY = ("case", "engine", "client", "protocol")
REGISTERED = ("divergent", "unsupported")
BROKEN = ("fail", "error")


@dataclass(frozen=True)
class CellChange:
    case: str
    family: str
    engine: str
    client: str
    protocol: str
    old: str
    new: str  # "missing" where the cell disappeared
    message: str = ""


@dataclass
class Comparison:
    worse: list[CellChange]
    better: list[CellChange]
    other: list[CellChange]  # changed, neither worse nor better (e.g. divergent -> unsupported)
    added: int  # cells only in the new file
    compared: int  # cells in the old file
    engine_changes: dict[str, tuple[str, str]]  # engine id -> (old version, new version)

    @property
    def regressed(self) -> bool:
        return bool(self.worse)

    def as_dict(self) -> dict[str, Any]:
        def cells(changes: Iterable[CellChange]) -> list[dict[str, Any]]:
            return [
                {
                    "case": c.case,
                    "family": c.family,
                    "engine": c.engine,
                    "client": c.client,
                    "protocol": c.protocol,
                    "old": c.old,
                    "new": c.new,
                    **({"message": c.message} if c.message else {}),
                }
                for c in changes
            ]

        return {
            "regressed": self.regressed,
            "compared": self.compared,
            "worse": cells(self.worse),
            "better": cells(self.better),
            "changed": cells(self.other),
            "added": self.added,
            "engine_versions_changed": {
                e: {"old": o, "new": n} for e, (o, n) in sorted(self.engine_changes.items())
            },
        }


def is_worse(old: str, new: str) -> bool:
    """pass -> anything else; divergent/unsupported -> fail/error; any cell -> missing."""
    if new == "missing":
        return True
    if old == "pass":
        return new != "pass"
    return old in REGISTERED and new in BROKEN


def _is_better(old: str, new: str) -> bool:
    return new == "pass" or (old in BROKEN and new in REGISTERED)


def compare_runs(old: Mapping[str, Any], new: Mapping[str, Any]) -> Comparison:
    """Cells of ``old`` that got worse, better or otherwise changed in ``new``."""
    new_by_key = {tuple(r[k] for k in _KEY): r for r in new["results"]}
    worse, better, other = [], [], []
    seen = set()
    for result in old["results"]:
        key = tuple(result[k] for k in _KEY)
        seen.add(key)
        now = new_by_key.get(key)
        outcome = now["outcome"] if now else "missing"
        if outcome == result["outcome"]:
            continue
        message = " ".join(str((now or {}).get("detail", {}).get("message", "")).split())
        change = CellChange(
            result["case"], result["family"], *key[1:], result["outcome"], outcome, message
        )
        if is_worse(result["outcome"], outcome):
            worse.append(change)
        elif _is_better(result["outcome"], outcome):
            better.append(change)
        else:
            other.append(change)
    engine_changes = {
        e: (facts.get("version", ""), new["engines"][e].get("version", ""))
        for e, facts in old.get("engines", {}).items()
        if e in new.get("engines", {}) and facts.get("version") != new["engines"][e].get("version")
    }
    order = lambda c: (c.family, c.case, c.engine, c.client, c.protocol)  # noqa: E731
    return Comparison(
        sorted(worse, key=order),
        sorted(better, key=order),
        sorted(other, key=order),
        len(set(new_by_key) - seen),
        len(seen),
        engine_changes,
    )


def render_comparison(comparison: Comparison, old_name: str, new_name: str) -> str:
    """Readable text: what got worse, grouped by family and case, aligned; then the rest."""
    lines = [f"{old_name} -> {new_name}: {comparison.compared} cells compared."]
    for engine, (was, now) in sorted(comparison.engine_changes.items()):
        lines.append(f"  engine {engine}: version {was} -> {now}")
    if comparison.worse:
        lines += ["", f"WORSE ({len(comparison.worse)} cells):"]
        lines += _cell_lines(comparison.worse)
    else:
        lines += ["", "Nothing got worse."]
    if comparison.better:
        lines += ["", f"Better ({len(comparison.better)} cells):"]
        lines += _cell_lines(comparison.better)
    if comparison.other:
        lines += ["", f"Changed ({len(comparison.other)} cells):"]
        lines += _cell_lines(comparison.other)
    if comparison.added:
        lines += ["", f"New cells: {comparison.added} (in {new_name} only)."]
    return "\n".join(lines) + "\n"


def _cell_lines(changes: list[CellChange], limit: int = 400) -> list[str]:
    engine_w = max(len(c.engine) for c in changes)
    client_w = max(len(c.client) for c in changes)
    out: list[str] = []
    family = case = None
    for index, change in enumerate(changes):
        if index == limit:
            out.append(f"  ... and {len(changes) - limit} more (use --json for all)")
            break
        if change.family != family:
            family = change.family
            out.append(f"  {family}")
        if change.case != case:
            case = change.case
            out.append(f"    {case}")
        arrow = f"{change.old} -> {'gone' if change.new == 'missing' else change.new}"
        line = (
            f"      {change.engine:<{engine_w}}  {change.client:<{client_w}}  {change.protocol}  "
            f"{arrow}"
        )
        if change.message:
            line += f"  {change.message[:120]}"
        out.append(line)
    return out
