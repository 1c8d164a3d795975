"""The engine catalog: which engine ids exist, and what each one is.

The facts live in ``engines/catalog.yaml``; this module only reads and validates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from packaging.version import Version

from respmatrix.datafiles import DataFileError, data_dir, load_validated

LINES = ("redis", "valkey")


class UnknownEngineError(LookupError):
    """An engine id (or line) that the catalog does not list."""


@dataclass(frozen=True)
class EngineSpec:
    """One engine version of the matrix, as the catalog describes it."""

    id: str
    line: str
    version: str
    image: str
    server: str  # path of the server binary inside the installed engine folder
    sources: tuple[dict[str, Any], ...]
    build: dict[str, Any] | None = None
    library_dirs: tuple[str, ...] = ()
    modules: dict[str, str] = field(default_factory=dict)  # bundled module files, by name
    # A variant (``redis-7.4+stack``) shares the install of ``base`` and differs only in the
    # modules it loads at start.
    base: str | None = None
    load: tuple[str, ...] = ()  # bundled modules this id starts with (``--loadmodule``)
    # What MODULE LIST must report once started (built-in and loaded), name -> version.
    loaded_modules: dict[str, str] = field(default_factory=dict)

    @property
    def install_id(self) -> str:
        """The id whose engine folder this spec runs from: itself, or its base for a variant."""
        return self.base or self.id

    @property
    def variant(self) -> str | None:
        """``stack`` for ``redis-7.4+stack``; None for a base engine."""
        return self.id.partition("+")[2] or None

    @cached_property
    def parsed_version(self) -> Version:
        return Version(self.version)

    @property
    def minor(self) -> str:
        """``7.2`` for 7.2.4: the release line the id names."""
        return f"{self.parsed_version.major}.{self.parsed_version.minor}"


def _variant(base: EngineSpec, raw: dict[str, Any], path: Path) -> EngineSpec:
    """A variant entry: the base engine started with some of its bundled modules loaded."""
    if not raw["id"].startswith(f"{base.id}+"):
        raise DataFileError(f"{path}: variant {raw['id']!r} must be named {base.id}+<variant>")
    unknown = sorted(set(raw["load"]) - set(base.modules))
    if unknown:
        raise DataFileError(
            f"{path}: variant {raw['id']} loads {', '.join(unknown)}, which {base.id} does not "
            f"bundle (it has: {', '.join(base.modules) or 'none'})"
        )
    loaded = {**base.loaded_modules, **{name: str(v) for name, v in raw["load"].items()}}
    return replace(base, id=raw["id"], base=base.id, load=tuple(raw["load"]), loaded_modules=loaded)


class EngineCatalog:
    """All engines the catalog lists, in catalog order."""

    def __init__(self, engines: Iterable[EngineSpec]) -> None:
        self._engines = {e.id: e for e in engines}

    @classmethod
    def load(cls, path: Path | None = None) -> EngineCatalog:
        path = path or data_dir("engines") / "catalog.yaml"
        raw = load_validated(path, "catalog.schema.yaml", "engine catalog")
        engines = []
        for item in raw["engines"]:
            builtin = {name: str(v) for name, v in item.get("builtin_modules", {}).items()}
            base = EngineSpec(
                id=item["id"],
                line=item["line"],
                version=item["version"],
                image=item["image"],
                server=item["server"],
                sources=tuple(item["sources"]),
                build=item.get("build"),
                library_dirs=tuple(item.get("library_dirs", ())),
                modules=dict(item.get("modules", {})),
                loaded_modules=builtin,
            )
            engines.append(base)
            for variant in item.get("variants", ()):
                engines.append(_variant(base, variant, path))
        return cls(engines)

    def __iter__(self) -> Iterator[EngineSpec]:
        return iter(self._engines.values())

    def __len__(self) -> int:
        return len(self._engines)

    def get(self, engine_id: str) -> EngineSpec:
        try:
            return self._engines[engine_id]
        except KeyError:
            known = ", ".join(self._engines)
            raise UnknownEngineError(
                f"unknown engine id {engine_id!r}; known ids: {known}"
            ) from None

    def select(self, selector: str | Iterable[str]) -> list[EngineSpec]:
        """Resolve ``all``, a line (``valkey``), ids, or a comma list of those, in catalog order.

        ``all`` and a line include the variants (``redis-7.4+stack``): the module families
        only have something to run on those.
        """
        words = selector.split(",") if isinstance(selector, str) else list(selector)
        wanted: set[str] = set()
        for word in (w.strip() for w in words):
            if not word:
                continue
            if word == "all":
                wanted.update(self._engines)
            elif word in LINES:
                wanted.update(e.id for e in self if e.line == word)
            else:
                wanted.add(self.get(word).id)
        return [e for e in self if e.id in wanted]
