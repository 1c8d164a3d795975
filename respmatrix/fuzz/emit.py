"""Turning a fuzz finding into a case file for review (``respmatrix fuzz --emit-case DIR``).

The case goes to ``DIR/<family>/<COMMAND>/fuzz-<command>-<digest>.yaml`` like the suites' own
cases, the family being the one ``suites/families.yaml`` gives the command's COMMAND DOCS group
(GETEX found by the transactions machine is a strings case), and the claim names the digest so
that two findings on one command make two distinct claims. Every
step of the minimal script, with the reply all engines agreed on, and the last step (where they
disagree) expecting the reply of the largest group of engines. A comment block lists what each
engine answered. Nothing is added to the registry: a reviewer decides whether this is a
registry entry (with a source), a bug to report, or a case to fix.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

from respmatrix.coverage import load_family_groups
from respmatrix.datafiles import data_dir, load_validated
from respmatrix.fuzz.classify import Verdict
from respmatrix.fuzz.lockstep import Finding, Lockstep, preamble_of
from respmatrix.fuzz.script import as_bytes


def case_argument(arg: Any) -> Any:
    data = as_bytes(arg)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return {"hex": data.hex()}
    return text if text.isprintable() else {"hex": data.hex()}


def expectation(reply: Any, protocol: int) -> dict[str, Any]:
    """A case expectation for a normalised reply (see :mod:`respmatrix.fuzz.normalise`)."""
    if isinstance(reply, dict) and len(reply) == 1:
        ((kind, value),) = reply.items()
        if kind == "error":
            return {"error": value}
        if kind == "unordered_pairs":  # field/value pairs of a flat array (HGETALL, HSCAN)
            return {"expect": [_value(x) for pair in value for x in pair], "unordered": True}
        if kind in ("unordered", "set"):
            # a RESP3 set compares without order anyway; an array needs unordered
            return {"expect": _value(reply), "unordered": True}
        if kind in ("random_array", "random_set"):
            return {"type": "collection"}
        if kind == "random":
            return {"type": "string"}
        if kind == "double":
            number = float(value)
            return {"expect_resp2": value, "expect_resp3": number} if protocol == 2 else {
                "expect": number}  # fmt: skip
    if reply == "positive":
        return {"range": [1, 2**62]}
    value = _value(reply)
    return {"expect": value}


def _value(reply: Any) -> Any:
    """Best-effort plain value for an expectation (typed wrappers unwrapped)."""
    if isinstance(reply, dict) and len(reply) == 1:
        ((kind, value),) = reply.items()
        if kind == "hex":
            return bytes.fromhex(value)
        if kind == "double":
            return float(value)
        if kind == "map":
            try:
                return {_value(k): _value(v) for k, v in value}
            except TypeError:
                return [[_value(k), _value(v)] for k, v in value]
        if kind in ("unordered", "set", "unordered_pairs"):
            return [_value(v) for v in value]
        if kind == "error":
            return value
    if isinstance(reply, list):
        return [_value(v) for v in reply]
    return reply


def finding_digest(finding: Finding) -> str:
    """A short digest of the finding's script: its case file name and claim carry it."""
    return hashlib.sha256(finding.script.encode()).hexdigest()[:8]


def build_case(finding: Finding, verdicts: list[Verdict]) -> tuple[str, dict[str, Any]]:
    """The header comment and the case mapping for a finding."""
    head = len(preamble_of(finding.family, finding.protocol))
    body = finding.commands[head:]
    steps = []
    for command, verdict in zip(body, verdicts, strict=True):
        reply = _reference(verdict.groups())
        step = {"send": [case_argument(a) for a in command]}
        step.update(expectation(reply, finding.protocol))
        steps.append(step)
    features = sorted(f for f in finding.features if _feature_ok(f)) or [finding.family]
    case: dict[str, Any] = {
        "claim": f"{finding.command} answers the same on every engine "
        f"(fuzz finding {finding_digest(finding)}, review)",
        "features": features,
        "protocols": [finding.protocol],
        "steps": steps,
    }
    if finding.family == "scripting":
        case["cleanup"] = [["FUNCTION", "FLUSH"], ["SCRIPT", "FLUSH"]]
    lines = [
        "# Found by respmatrix fuzz: the engines disagree on the last step and no registry",
        "# entry explains it. Review: a registry entry (with a source), a bug, or a fixed case.",
        "# Observed replies on the last step:",
    ]
    for labels, reply in finding.groups:
        lines.append(f"#   {', '.join(labels)}: {json.dumps(reply, ensure_ascii=False)}")
    return "\n".join(lines) + "\n", case


def _reference(groups: list[tuple[list[str], Any]]) -> Any:
    """The reply a case states: the largest group's, passing over engines that lack the
    command (they answer unknown command; the registry, not the case, says so)."""
    known = [
        reply
        for _, reply in groups
        if not (isinstance(reply, dict) and str(reply.get("error", "")).startswith(
            "ERR unknown command"))
    ]  # fmt: skip
    return known[0] if known else groups[0][1]


def _feature_ok(feature: str) -> bool:
    import re

    return re.fullmatch(r"[a-z0-9][a-z0-9._-]*", feature) is not None


def _docs_group(reply: Any) -> str | None:
    """The ``group`` of a COMMAND DOCS reply (a RESP2 array of pairs or a RESP3 map)."""
    docs = reply.get(next(iter(reply))) if isinstance(reply, dict) and reply else None
    if isinstance(reply, list) and len(reply) == 2:
        docs = reply[1]
    if isinstance(docs, list):
        docs = dict(zip(docs[::2], docs[1::2], strict=False))
    group = docs.get("group") if isinstance(docs, dict) else None
    return group if isinstance(group, str) else None


def command_family(lockstep: Lockstep, command: str, default: str) -> str:
    """The suites family of ``command``: its COMMAND DOCS group (asked of the run's engines,
    the first that knows the command) through ``suites/families.yaml``; else ``default``."""
    groups = load_family_groups(data_dir("suites"))
    name = command.lower().replace(" ", "|")  # subcommands as COMMAND DOCS names them
    for engine in lockstep.engines:
        group = _docs_group(lockstep.connection(engine, 2).call("COMMAND", "DOCS", name))
        if group is not None:
            return groups.get(group, default)
    return default


def emit_case(lockstep: Lockstep, finding: Finding, folder: Path) -> Path:
    """Replay ``finding``, write its case file under ``folder`` and check it against the schema."""
    verdicts = lockstep.replay(finding.family, finding.protocol, finding.commands)
    comment, case = build_case(finding, verdicts)
    command = finding.command.replace(" ", "-")  # subcommands as the suites name them
    slug = command.lower().replace("_", "-")
    family = command_family(lockstep, finding.command, finding.family)
    path = folder / family / command / f"fuzz-{slug}-{finding_digest(finding)}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = comment + yaml.safe_dump(case, sort_keys=False, allow_unicode=True, width=100)
    path.write_text(text, encoding="utf-8")
    load_validated(path, "case.schema.yaml", "emitted case")
    return path
