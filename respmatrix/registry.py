"""The divergence registry: every known difference between engines, with a source.

Entries live in ``suites/registry.yaml``. Each names the features it touches and, per engine
line, the versions it covers (BCD-style ``added``/``removed``, ``true`` for every version,
``false`` for none). ``unsupported`` entries describe where a feature *exists*; outside that
range the engine is expected to refuse it. ``divergent`` entries describe where the divergent
behaviour is seen; there a case expects the alternative reply it states for that entry.

``client`` entries are about a client library, not an engine: they name client modes and the
versions of their package (``clients: {valkey-glide: {added: "2.0"}}``), optionally narrowed to
protocols and engine versions, and say whether the client cannot express the feature
(``outcome: unsupported``) or hands back another reply (``outcome: divergent``). Outcomes they
explain carry ``scope: client`` so reports keep them apart from engine divergences.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from respmatrix.catalog import EngineSpec
from respmatrix.datafiles import DataFileError, data_dir, load_validated


@dataclass(frozen=True)
class VersionRange:
    """Versions of one engine line: ``added`` inclusive, ``removed`` exclusive."""

    added: Version | None  # None with everywhere=False means "no version"
    removed: Version | None = None
    everywhere: bool = False

    @classmethod
    def parse(cls, raw: Any) -> VersionRange:
        if raw is True:
            return cls(None, None, everywhere=True)
        if raw is False or raw is None:
            return cls(None)
        removed = raw.get("removed")
        return cls(Version(str(raw["added"])), Version(str(removed)) if removed else None)

    def __contains__(self, version: Version) -> bool:
        if self.everywhere:
            return True
        if self.added is None:
            return False
        return self.added <= version and (self.removed is None or version < self.removed)

    def describe(self) -> str:
        if self.everywhere:
            return "all versions"
        if self.added is None:
            return "no version"
        return f"{self.added}+" if self.removed is None else f"{self.added} to <{self.removed}"


# A module feature exists where the engine has the module loaded (built in or --loadmodule),
# whatever its line and version: ``support: {module: ReJSON}`` is kept as ranges["module:ReJSON"].
MODULE_KEY = "module:"


def parse_where(raw: dict[str, Any]) -> dict[str, VersionRange]:
    """``support``/``applies``: versions per engine line, or ``{module: NAME, versions: ...}``
    (the versions of the module as MODULE LIST reports them; every version if left out)."""
    if "module" in raw:
        return {MODULE_KEY + raw["module"]: VersionRange.parse(raw.get("versions", True))}
    return {line: VersionRange.parse(v) for line, v in raw.items()}


@dataclass(frozen=True)
class ClientRef:
    """The client side of a cell: mode id, package version (None for the raw client), protocol."""

    id: str
    version: str | None
    protocol: int


@dataclass(frozen=True)
class Divergence:
    """One registry entry."""

    id: str
    kind: str  # "unsupported" | "divergent" | "client"
    features: tuple[str, ...]
    ranges: dict[str, VersionRange]  # line -> versions (support or applies, per kind)
    note: str
    source: str
    reply: dict[str, Any] | None = None  # unsupported: how a lacking engine answers
    clients: dict[str, VersionRange] | None = None  # client entries: mode -> package versions
    client_outcome: str | None = None  # client entries: "unsupported" | "divergent"
    protocols: tuple[int, ...] = (2, 3)  # client entries only

    @property
    def converts(self) -> bool:
        """A client entry for a library that converts replies by command: it applies to every
        step whose command the adapter converts, whatever the case's features."""
        return self.kind == "client" and bool((self.reply or {}).get("converted"))

    @property
    def scope(self) -> str:
        return "client" if self.kind == "client" else "engine"

    @property
    def outcome(self) -> str:
        """The outcome this entry explains: unsupported or divergent."""
        return self.client_outcome or self.kind

    def in_range(self, engine: EngineSpec) -> bool:
        """Whether ``engine`` is in the entry's versions: of its line, or of a module it loads."""
        for key, versions in self.ranges.items():
            if key.startswith(MODULE_KEY):
                loaded = engine.loaded_modules.get(key.removeprefix(MODULE_KEY))
                return loaded is not None and Version(loaded) in versions
        return engine.parsed_version in self.ranges.get(engine.line, VersionRange(None))

    def applies_to(self, engine: EngineSpec, client: ClientRef | None = None) -> bool:
        """True where this entry predicts a difference on ``engine`` (through ``client``)."""
        in_range = self.in_range(engine)
        if self.kind == "client":
            if client is None or client.version is None or self.clients is None:
                return False
            versions = self.clients.get(client.id)
            return (
                versions is not None
                and Version(client.version) in versions
                and client.protocol in self.protocols
                and (not self.ranges or in_range)
            )
        return not in_range if self.kind == "unsupported" else in_range

    def as_dict(self) -> dict[str, Any]:
        entry = {
            "id": self.id,
            "kind": self.kind,
            "features": list(self.features),
            "versions": {line: r.describe() for line, r in self.ranges.items()},
            "note": self.note,
            "source": self.source,
        }
        if self.clients is not None:
            entry["clients"] = {c: r.describe() for c, r in self.clients.items()}
            entry["outcome"] = self.outcome
        return entry


class DivergenceRegistry:
    """All divergence entries, looked up by feature."""

    def __init__(self, entries: Iterable[Divergence]) -> None:
        self.entries = {e.id: e for e in entries}
        self._converters = [e for e in self.entries.values() if e.converts]
        self._by_feature: dict[str, list[Divergence]] = {}
        # applicable() answers, by what they depend on: every case asks once per client mode
        # and engine, and the answer never changes during a run.
        self._applicable: dict[tuple[Any, ...], tuple[Divergence, ...]] = {}
        for entry in self.entries.values():
            for feature in entry.features:
                self._by_feature.setdefault(feature, []).append(entry)

    @classmethod
    def load(cls, path: Path | None = None) -> DivergenceRegistry:
        path = path or data_dir("suites") / "registry.yaml"
        raw = load_validated(path, "registry.schema.yaml", "divergence registry")
        entries = []
        seen: set[str] = set()
        for item in raw["divergences"]:
            if item["id"] in seen:
                raise DataFileError(f"{path}: duplicate divergence id {item['id']!r}")
            seen.add(item["id"])
            ranges_key = {"unsupported": "support", "divergent": "applies"}.get(
                item["kind"], "engines"
            )
            clients = item.get("clients")
            entries.append(
                Divergence(
                    id=item["id"],
                    kind=item["kind"],
                    features=tuple(item["features"]),
                    ranges=parse_where(item.get(ranges_key, {})),
                    note=item["note"].strip(),
                    source=item["source"],
                    reply=item.get("reply"),
                    clients=(
                        {c: VersionRange.parse(v) for c, v in clients.items()}
                        if clients is not None
                        else None
                    ),
                    client_outcome=item.get("outcome"),
                    protocols=tuple(item.get("protocols", (2, 3))),
                )
            )
        return cls(entries)

    def applicable(
        self, features: Iterable[str], engine: EngineSpec, client: ClientRef | None = None
    ) -> list[Divergence]:
        """Entries touching any of ``features`` that predict a difference on ``engine``
        (client entries only when ``client`` is given and they name it)."""
        features = tuple(features)
        key = (
            features,
            engine.line,
            engine.version,
            tuple(sorted(engine.loaded_modules.items())),
            client,
        )
        found = self._applicable.get(key)
        if found is None:
            entries = {e.id: e for e in self._converters if e.applies_to(engine, client)}
            for feature in features:
                for entry in self._by_feature.get(feature, ()):
                    if entry.applies_to(engine, client):
                        entries[entry.id] = entry
            found = self._applicable[key] = tuple(entries.values())
        return list(found)

    def get(self, divergence_id: str) -> Divergence:
        return self.entries[divergence_id]
