"""Coverage measured from the engines: which of their commands the suites exercise.

The inventory is the union of every engine's commands (see :mod:`respmatrix.inventory`); a
command counts as covered when some case of its family sends it. ``suites/families.yaml`` maps
COMMAND DOCS groups to families; ``suites/exclusions.yaml`` leaves commands or whole families out
with a reason, and the report lists them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from respmatrix.cases import Case
from respmatrix.datafiles import load_validated


@dataclass
class FamilyCoverage:
    family: str
    commands: set[str] = field(default_factory=set)
    covered: set[str] = field(default_factory=set)
    excluded: dict[str, str] = field(default_factory=dict)
    per_engine: dict[str, tuple[int, int]] = field(default_factory=dict)  # covered, counted
    family_excluded: str | None = None  # why the whole family is left out, if it is

    @property
    def counted(self) -> set[str]:
        return self.commands - self.excluded.keys()

    @property
    def not_covered(self) -> set[str]:
        return self.counted - self.covered

    @property
    def percent(self) -> float | None:
        counted = self.counted
        return 100.0 * len(self.covered & counted) / len(counted) if counted else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "commands": len(self.commands),
            "counted": len(self.counted),
            "covered": sorted(self.covered & self.counted),
            "not_covered": sorted(self.not_covered),
            "excluded": dict(sorted(self.excluded.items())),
            "family_excluded": self.family_excluded,
            "percent": None if self.percent is None else round(self.percent, 1),
            "engines": {e: {"covered": c, "counted": n} for e, (c, n) in self.per_engine.items()},
        }


def load_family_groups(suites: Path) -> dict[str, str]:
    """COMMAND DOCS group -> family."""
    raw = load_validated(suites / "families.yaml", "coverage.schema.yaml", "family map")
    return {g: family for family, spec in raw["families"].items() for g in spec["groups"]}


def load_exclusions(suites: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(family -> reason, command -> reason)."""
    path = suites / "exclusions.yaml"
    raw = load_validated(path, "coverage.schema.yaml", "coverage exclusions")
    families = {e["family"]: e["reason"] for e in raw["exclusions"] if "family" in e}
    commands = {e["command"]: e["reason"] for e in raw["exclusions"] if "command" in e}
    return families, commands


def sent_commands(cases: Iterable[Case]) -> dict[str, set[str]]:
    """family -> command names (and ``CMD SUB`` pairs) that its cases send."""
    sent: dict[str, set[str]] = {}
    for case in cases:
        names = sent.setdefault(case.family, set())
        commands = [step.send for step in case.steps if step.send] + list(case.cleanup)
        for command in commands:
            words = [str(word).upper() for word in command[:2]]
            names.add(words[0])
            names.add(" ".join(words))
    return sent


def measure(
    inventories: Mapping[str, Mapping[str, str]], cases: Iterable[Case], suites: Path
) -> tuple[dict[str, FamilyCoverage], dict[str, set[str]]]:
    """Coverage per family, and the commands whose group no family claims (group -> names)."""
    groups = load_family_groups(suites)
    excluded_families, excluded_commands = load_exclusions(suites)
    sent = sent_commands(cases)
    report = {family: FamilyCoverage(family) for family in dict.fromkeys(groups.values())}
    for family, reason in excluded_families.items():
        # listed even when no engine reports one of its commands (sentinel on a plain server)
        report.setdefault(family, FamilyCoverage(family)).family_excluded = reason
    unmapped: dict[str, set[str]] = {}
    for inventory in inventories.values():
        for command, group in inventory.items():
            family = groups.get(group)
            if family is None:
                unmapped.setdefault(group, set()).add(command)
                continue
            coverage = report[family]
            coverage.commands.add(command)
            reason = excluded_families.get(family) or excluded_commands.get(command)
            if reason:
                coverage.excluded[command] = reason
            elif command in sent.get(family, ()):
                coverage.covered.add(command)
    for engine_id, inventory in inventories.items():
        for family, coverage in report.items():
            mine = {
                c for c, g in inventory.items() if groups.get(g) == family
            } - coverage.excluded.keys()
            coverage.per_engine[engine_id] = (len(mine & coverage.covered), len(mine))
    return report, unmapped
