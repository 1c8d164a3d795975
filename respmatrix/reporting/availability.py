"""The availability table: per feature and engine line, the first version that has it.

Derived only from a results document, in the manner of MDN's browser-compat-data: a feature is
*present* on an engine when its cases pass or are ``divergent`` there (present, but behaving
differently: shown as partial, with the registry note), and *absent* where its cases are
``unsupported``. A result speaks for the features its registry entry names: a case about
``bitcount`` and ``bitcount-start-only`` that Redis refuses because of the second feature says
nothing about the first.

The matrix only holds some versions of each line, so a boundary is a range: first seen in 9.0 and
absent in 8.1 reads "added after 8.1, by 9.0"; present in the lowest version tested reads "≤7.2".

>>> table = AvailabilityTable.from_results(doc)        # doc: a respmatrix/results/v1 document
>>> table["set-ifeq"].lines["valkey"].first
'8.1'
>>> table["set-ifeq"].lines["valkey"].text
'added after 8.0, by 8.1'
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

# Per (feature, engine) states, in the order a reader should worry about them.
PRESENT = ("yes", "partial", "mixed")
STATE_WORDS = {
    "fail": "fail",
    "error": "error",
    "mixed": "mixed",
    "no": "absent",
    "partial": "partial",
    "yes": "supported",
    "skipped": "skipped",
    "none": "not run",
}
STATE_SYMBOLS = {
    "fail": "✗",
    "error": "!",
    "mixed": "◐",
    "no": "—",
    "partial": "≠",
    "yes": "✓",
    "skipped": "s",
    "none": "·",
}
# A variant (redis-7.4+stack: the same server with modules loaded) is its own line in reports, so
# a module feature reads "Redis Stack: 7.2" instead of making Redis 7.2 look mixed.
LINE_NAMES = {"redis": "Redis", "redis+stack": "Redis Stack", "valkey": "Valkey"}


def attributed(result: Mapping[str, Any], divergences: Mapping[str, Any]) -> set[str]:
    """The features of ``result`` its outcome speaks for.

    A result that names a registry entry speaks for the features that entry lists (those of the
    case); a pass, or an entry the document does not describe, speaks for all the case's features.
    """
    features = set(result["features"])
    entry = divergences.get(result.get("divergence") or "")
    if entry and entry.get("features"):
        named = features & set(entry["features"])
        if named:
            return named
    return features


@dataclass
class Evidence:
    """What the results of one feature on one engine say, counted by kind."""

    present: int = 0  # pass, or divergent for another feature of the case
    partial: int = 0  # divergent, for this feature
    absent: int = 0  # unsupported, for this feature
    blocked: int = 0  # unsupported for another feature its cases need
    fail: int = 0
    error: int = 0
    skipped: int = 0
    divergences: Counter[str] = field(default_factory=Counter)
    needs: set[str] = field(default_factory=set)  # the features that blocked it

    def add(
        self, outcome: str, speaks: bool, divergence: str | None, others: Iterable[str] = ()
    ) -> None:
        """Count one result; ``others``: the features it speaks for when not this one."""
        if outcome == "pass":
            self.present += 1
        elif outcome == "divergent":
            if speaks:
                self.partial += 1
            else:
                self.present += 1
        elif outcome == "unsupported":
            if speaks:
                self.absent += 1
            else:
                self.blocked += 1
                self.needs.update(others)
        elif outcome in ("fail", "error"):
            setattr(self, outcome, getattr(self, outcome) + 1)
        elif outcome == "skipped":
            self.skipped += 1
        if divergence and speaks and outcome != "pass":
            self.divergences[divergence] += 1

    @property
    def support(self) -> str:
        """yes | partial | mixed | no | unknown: what the engine has, problems aside.

        A feature whose only cases are refused for another feature they need (HEXPIRE NX where
        HEXPIRE is missing) is ``no`` too: nothing a client sends reaches it.
        """
        present = self.present + self.partial
        if present and self.absent:
            return "mixed"
        if self.partial:
            return "partial"
        if present:
            return "yes"
        if self.absent or self.blocked:
            return "no"
        return "unknown"

    @property
    def blocked_only(self) -> bool:
        """Absent only because its cases need a feature the engine lacks."""
        return self.support == "no" and not self.absent

    @property
    def state(self) -> str:
        """The matrix cell's state: a failure or error first, then what the engine has."""
        if self.fail:
            return "fail"
        if self.error:
            return "error"
        support = self.support
        if support != "unknown":
            return support
        return "skipped" if self.skipped else "none"


def version_labels(engines: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Engine id -> the version a reader names it by: ``7.4`` (``7.4.1`` if two share 7.4)."""
    series = {e: ".".join(f["version"].split(".")[:2]) for e, f in engines.items()}
    taken = Counter((engines[e]["line"], s) for e, s in series.items())
    return {
        e: s if taken[engines[e]["line"], s] == 1 else engines[e]["version"]
        for e, s in series.items()
    }


def _sort_key(version: str) -> tuple[Any, ...]:
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def ordered_engines(engines: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Engine ids by line (redis, valkey, then others) and version."""
    lines = list(LINE_NAMES)
    return sorted(
        engines,
        key=lambda e: (
            lines.index(engines[e]["line"]) if engines[e]["line"] in lines else len(lines),
            engines[e]["line"],
            _sort_key(engines[e]["version"]),
        ),
    )


@dataclass(frozen=True)
class VersionSupport:
    """One engine version of a line, and what its results say about the feature."""

    engine: str
    version: str  # exact, as the engine reported it
    label: str  # the series: 7.4
    support: str  # yes | partial | mixed | no | unknown
    problems: int  # fail + error results for the feature
    needs: tuple[str, ...] = ()  # absent only because its cases need these features


@dataclass(frozen=True)
class Boundary:
    """A change of support between two tested versions: ``added`` or ``removed``."""

    kind: str
    after: str | None  # the last version tested before it (None: the lowest version tested)
    by: str  # the first version tested that shows it

    @property
    def text(self) -> str:
        if self.after is None:
            return f"≤{self.by}"
        return f"{self.kind} after {self.after}, by {self.by}"


@dataclass(frozen=True)
class LineAvailability:
    """The support of one feature across the versions of one engine line."""

    line: str
    versions: tuple[VersionSupport, ...]
    boundaries: tuple[Boundary, ...]

    @property
    def first(self) -> str | None:
        """The first version tested that has the feature, or None."""
        added = next((b for b in self.boundaries if b.kind == "added"), None)
        return added.by if added else None

    @property
    def present_now(self) -> bool:
        """Whether the newest version that gave an answer has the feature."""
        known = [v for v in self.versions if v.support != "unknown"]
        return bool(known) and known[-1].support in PRESENT

    @property
    def partial(self) -> tuple[str, ...]:
        return tuple(v.label for v in self.versions if v.support in ("partial", "mixed"))

    @property
    def unknown(self) -> tuple[str, ...]:
        return tuple(v.label for v in self.versions if v.support == "unknown")

    @property
    def needs(self) -> tuple[str, ...]:
        """Features whose absence kept this one from being reached on some version."""
        return tuple(sorted({f for v in self.versions for f in v.needs}))

    @property
    def headline(self) -> str:
        """What a table cell shows: ``7.4``, ``≤7.2``, ``No``, ``?``."""
        if not self.versions or all(v.support == "unknown" for v in self.versions):
            return "?"
        if self.first is None:
            return "No"
        added = next(b for b in self.boundaries if b.kind == "added")
        return added.text if added.after is None else added.by

    @property
    def text(self) -> str:
        """The whole story in words: ``added after 8.1, by 9.0``; ``≤7.2; removed after ...``."""
        if not self.versions or all(v.support == "unknown" for v in self.versions):
            return "no answer from " + ", ".join(v.label for v in self.versions)
        if not self.boundaries:
            labels = [v.label for v in self.versions if v.support != "unknown"]
            span = labels[0] if len(labels) == 1 else f"{labels[0]} to {labels[-1]}"
            story = f"not in {span}"
        else:
            story = "; ".join(b.text for b in self.boundaries)
        if self.needs:
            blocked = [v.label for v in self.versions if v.needs]
            story += f" ({', '.join(blocked)}: its cases need {', '.join(self.needs)})"
        return story

    def as_dict(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "headline": self.headline,
            "text": self.text,
            "boundaries": [
                {"kind": b.kind, "after": b.after, "by": b.by, "text": b.text}
                for b in self.boundaries
            ],
            "partial": list(self.partial),
            "unknown": list(self.unknown),
            "needs": list(self.needs),
            "versions": {
                v.engine: {"version": v.version, "support": v.support, "problems": v.problems}
                for v in self.versions
            },
        }


def line_availability(line: str, versions: Iterable[VersionSupport]) -> LineAvailability:
    """Boundaries from the per-version support of one line (versions in ascending order)."""
    versions = tuple(versions)
    boundaries: list[Boundary] = []
    previous: VersionSupport | None = None  # the last version that gave an answer
    for current in versions:
        if current.support == "unknown":
            continue
        has = current.support in PRESENT
        had = previous is not None and previous.support in PRESENT
        if has and not had:
            boundaries.append(
                Boundary("added", previous.label if previous else None, current.label)
            )
        elif had and not has:
            boundaries.append(Boundary("removed", previous.label, current.label))
        previous = current
    return LineAvailability(line, versions, tuple(boundaries))


@dataclass(frozen=True)
class RegistryNote:
    """A registry entry that touches a feature, as the results file recorded it."""

    id: str
    kind: str
    note: str
    source: str
    versions: Mapping[str, str]
    engines: tuple[str, ...]  # where results of this feature cited it


@dataclass(frozen=True)
class FeatureAvailability:
    feature: str
    families: tuple[str, ...]
    lines: Mapping[str, LineAvailability]
    notes: tuple[RegistryNote, ...]
    evidence: Mapping[str, Evidence]  # engine id -> counts

    @property
    def everywhere(self) -> bool:
        """Present and not partial on every version tested, of every line."""
        return all(v.support == "yes" for la in self.lines.values() for v in la.versions) and bool(
            self.lines
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "families": list(self.families),
            "lines": {line: la.as_dict() for line, la in self.lines.items()},
            "notes": [
                {
                    "id": n.id,
                    "kind": n.kind,
                    "note": n.note,
                    "source": n.source,
                    "versions": dict(n.versions),
                    "engines": list(n.engines),
                }
                for n in self.notes
            ],
        }


class AvailabilityTable(Mapping[str, FeatureAvailability]):
    """Feature id -> :class:`FeatureAvailability`, computed from one results document."""

    def __init__(self, features: Mapping[str, FeatureAvailability], engines: list[str]) -> None:
        self._features = dict(sorted(features.items()))
        self.engines = engines

    @classmethod
    def from_results(cls, doc: Mapping[str, Any]) -> AvailabilityTable:
        engines_facts = engine_facts(doc)
        divergences = doc.get("divergences", {})
        evidence = evidence_by_feature(doc["results"], divergences)
        families: dict[str, set[str]] = defaultdict(set)
        for result in doc["results"]:
            for feature in result["features"]:
                families[feature].add(result["family"])
        order = ordered_engines(engines_facts)
        labels = version_labels(engines_facts)
        by_line: dict[str, list[str]] = defaultdict(list)
        for engine in order:
            by_line[engines_facts[engine]["line"]].append(engine)
        notes_by_feature = _notes(doc, evidence)
        features = {}
        for feature, per_engine in evidence.items():
            lines = {}
            for line, engines in by_line.items():
                tested = [e for e in engines if e in per_engine]
                if not tested:
                    continue
                lines[line] = line_availability(
                    line,
                    (
                        VersionSupport(
                            e,
                            engines_facts[e]["version"],
                            labels[e],
                            per_engine[e].support,
                            per_engine[e].fail + per_engine[e].error,
                            tuple(sorted(per_engine[e].needs))
                            if per_engine[e].blocked_only
                            else (),
                        )
                        for e in tested
                    ),
                )
            features[feature] = FeatureAvailability(
                feature,
                tuple(sorted(families[feature])),
                lines,
                notes_by_feature.get(feature, ()),
                per_engine,
            )
        return cls(features, order)

    def __getitem__(self, feature: str) -> FeatureAvailability:
        return self._features[feature]

    def __iter__(self) -> Iterator[str]:
        return iter(self._features)

    def __len__(self) -> int:
        return len(self._features)

    def as_dict(self) -> dict[str, Any]:
        return {feature: fa.as_dict() for feature, fa in self._features.items()}


def engine_facts(doc: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The document's engines, plus any engine a result names that the header lacks.

    A variant's line reads ``redis+stack``: reports group it apart from the clean server.
    """
    facts: dict[str, Mapping[str, Any]] = {
        engine: dict(f, line=f"{f['line']}+{f['variant']}") if f.get("variant") else f
        for engine, f in doc.get("engines", {}).items()
    }
    for result in doc["results"]:
        if result["engine"] not in facts:
            line, _, version = result["engine"].partition("-")
            facts[result["engine"]] = {"line": line, "version": version or "0"}
    return facts


def evidence_by_feature(
    results: Iterable[Mapping[str, Any]], divergences: Mapping[str, Any]
) -> dict[str, dict[str, Evidence]]:
    """feature -> engine -> :class:`Evidence`, over every result of the document."""
    out: dict[str, dict[str, Evidence]] = defaultdict(dict)
    for result in results:
        speaks = attributed(result, divergences)
        for feature in result["features"]:
            cell = out[feature].get(result["engine"])
            if cell is None:
                cell = out[feature][result["engine"]] = Evidence()
            cell.add(
                result["outcome"], feature in speaks, result.get("divergence"), speaks - {feature}
            )
    return out


def _notes(
    doc: Mapping[str, Any], evidence: Mapping[str, Mapping[str, Evidence]]
) -> dict[str, tuple[RegistryNote, ...]]:
    entries = doc.get("divergences", {})
    cited: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for feature, per_engine in evidence.items():
        for engine, ev in per_engine.items():
            for div_id in ev.divergences:
                cited[feature][div_id].add(engine)
    for div_id, entry in entries.items():  # entries touching a feature, cited or not
        for feature in entry.get("features", ()):
            if feature in evidence:
                cited[feature].setdefault(div_id, set())
    out = {}
    for feature, ids in cited.items():
        notes = []
        for div_id in sorted(ids):
            entry = entries.get(div_id, {})
            notes.append(
                RegistryNote(
                    div_id,
                    entry.get("kind", ""),
                    " ".join(entry.get("note", "").split()),
                    entry.get("source", ""),
                    entry.get("versions", {}),
                    tuple(sorted(ids[div_id])),
                )
            )
        out[feature] = tuple(notes)
    return out
