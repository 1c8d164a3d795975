"""A fuzz run as a results file (family ``fuzz``, schema ``respmatrix/results/v1``).

Per machine family and engine: a ``pass`` record for the run itself (examples and steps), a
``fail`` record per unexplained difference (on every engine: the engines disagree, the script
cannot say which one is wrong), and an ``unsupported``/``divergent`` record per registry entry
that explained a difference, on the engines it explained.
"""

from __future__ import annotations

from typing import Any

from respmatrix import __version__
from respmatrix.fuzz.lockstep import Explained, Finding
from respmatrix.fuzz.runner import FuzzOutcome
from respmatrix.fuzz.script import as_bytes, format_script
from respmatrix.registry import DivergenceRegistry
from respmatrix.results import empty_document

FAMILY = "fuzz"


def json_args(commands: list[list[Any]]) -> list[list[Any]]:
    """Commands as JSON: text where the bytes are UTF-8, else ``{"hex": ...}``."""
    out = []
    for command in commands:
        row: list[Any] = []
        for arg in command:
            data = as_bytes(arg)
            try:
                row.append(data.decode())
            except UnicodeDecodeError:
                row.append({"hex": data.hex()})
        out.append(row)
    return out


def finding_case(finding: Finding) -> str:
    return f"fuzz/{finding.family}/{finding.command.lower().replace(' ', '-')}"


def finding_detail(finding: Finding) -> dict[str, Any]:
    return {
        "message": f"{finding.command}: the engines disagree and no registry entry explains it",
        "script": finding.script,
        "commands": json_args(finding.commands),
        "replies": finding.replies,
        "groups": [{"engines": labels, "reply": reply} for labels, reply in finding.groups],
        "features": finding.features,
        "seen": finding.seen,
        "reproduced": finding.reproduced,
    }


def results_document(
    outcome: FuzzOutcome, facts: dict[str, dict[str, Any]], registry: DivergenceRegistry
) -> dict[str, Any]:
    """The results document of a run; ``facts`` maps engine label -> what the engine reported."""
    lockstep, config = outcome.lockstep, outcome.config
    doc = empty_document()
    doc["engines"] = facts
    doc["clients"] = {"raw": {"package": "respmatrix", "version": __version__}}
    labels = [e.label for e in lockstep.engines]
    results = doc["results"]

    def add(
        case: str, claim: str, engine: str, protocol: int, outcome: str,
        divergence: str | None, features: list[str], detail: dict[str, Any],
    ) -> None:  # fmt: skip
        doc["cases"].setdefault(case, {"claim": claim})
        results.append({
            "case": case, "family": FAMILY, "features": features, "engine": engine,
            "client": "raw", "protocol": f"resp{protocol}", "outcome": outcome,
            "divergence": divergence, "detail": detail,
        })  # fmt: skip

    failed = {(f.family, f.protocol) for f in lockstep.findings.values()}
    for family in config.families:
        for protocol in config.protocols:
            if (family, protocol) in failed:
                continue
            for label in labels:
                add(
                    f"fuzz/{family}",
                    f"Differential fuzzing of the {family} commands finds "
                    "no unexplained difference",
                    label,
                    protocol,
                    "pass",
                    None,
                    [family],
                    {"examples": lockstep.examples[family], "steps": lockstep.steps[family]},
                )
    for finding in lockstep.findings.values():
        detail = finding_detail(finding)
        claim = f"{finding.command} answers the same on every engine (fuzz finding)"
        for label in labels:
            add(finding_case(finding), claim, label, finding.protocol, "fail", None,
                finding.features, detail)  # fmt: skip
    for item in lockstep.explained.values():
        entry = registry.get(item.entry)
        doc["divergences"][entry.id] = {k: v for k, v in entry.as_dict().items() if k != "id"}
        case = f"fuzz/{item.family}/{item.entry}"
        claim = f"A difference the fuzzer met is the registered {item.outcome} entry {item.entry}"
        for label in sorted(item.engines):
            add(case, claim, label, item.protocol, item.outcome, item.entry,
                list(entry.features), _explained_detail(item))  # fmt: skip
    doc["fuzz"] = {
        "seed": config.seed,
        "examples": config.examples,
        "budget_s": config.budget,
        "families": config.families,
        "protocols": config.protocols,
        "elapsed_s": round(outcome.elapsed, 1),
        "stopped_by_budget": outcome.stopped_by_budget,
        "examples_run": sum(lockstep.examples.values()),
        "steps_run": sum(lockstep.steps.values()),
        # the example database's replays (before generating; they do not depend on the seed)
        "replayed": list(lockstep.replay_digests),
        "errors": outcome.errors,
    }
    return doc


def _explained_detail(item: Explained) -> dict[str, Any]:
    return {
        "message": f"explained by {item.entry} ({item.count} steps)",
        "script": format_script(item.commands),
        "replies": item.replies,
        "count": item.count,
    }
