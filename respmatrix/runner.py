"""Running one case on one engine through one client, and deciding its outcome.

Outcome words are the contract of design.md: pass, fail, unsupported, divergent, error, skipped.
Expected differences come only from the divergence registry: a case may state the alternative
reply a *registered* divergence produces, and an engine the registry says lacks a feature must
refuse it with an error reply.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from respmatrix.cases import Case, Expectation
from respmatrix.catalog import EngineSpec
from respmatrix.clients.base import ClientAdapter
from respmatrix.expectations import describe, jsonable, mismatch, resolve_time
from respmatrix.registry import Divergence, DivergenceRegistry
from respmatrix.replies import RespError

OUTCOMES = ("pass", "fail", "unsupported", "divergent", "error", "skipped")


@dataclass
class Outcome:
    outcome: str
    divergence: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Transcript:
    """What was sent and received; turned into JSON only when an outcome needs it."""

    raw: list[tuple[tuple[Any, ...], Any, Any]] = field(default_factory=list)

    def add(self, send: tuple[Any, ...], observed: Any, expected: Any = None) -> None:
        self.raw.append((send, observed, expected))

    @property
    def steps(self) -> list[dict[str, Any]]:
        steps = []
        for send, reply, expected in self.raw:
            step = {"send": jsonable(list(send)), "reply": jsonable(reply)}
            if expected is not None:
                step["expect"] = {expected.kind: jsonable(expected.value)}
            steps.append(step)
        return steps


def resolve_args(args: tuple[Any, ...], variables: dict[str, Any]) -> tuple[Any, ...]:
    out = []
    for arg in args:
        if isinstance(arg, dict) and "var" in arg:
            value = variables[arg["var"]]
            if isinstance(value, RespError):
                raise ValueError(f"variable {arg['var']!r} holds an error reply: {value}")
            out.append(value)
        elif isinstance(arg, dict) and "hex" in arg:
            out.append(bytes.fromhex(arg["hex"]))
        else:
            out.append(resolve_time(arg))
    return tuple(out)


def run_case(
    case: Case,
    client: ClientAdapter,
    engine: EngineSpec,
    registry: DivergenceRegistry,
) -> Outcome:
    """Run ``case`` through ``client`` (already connected, database flushed) on ``engine``."""
    applicable = registry.applicable(case.features, engine)
    lacking = [d for d in applicable if d.kind == "unsupported"]
    diverging = {d.id: d for d in applicable if d.kind == "divergent"}
    used: list[str] = []
    transcript = _Transcript()
    variables: dict[str, Any] = {}
    protocol = client.protocol
    try:
        for index, step in enumerate(case.steps):
            if step.sleep_ms:
                time.sleep(step.sleep_ms / 1000)
                continue
            args = resolve_args(step.send, variables)
            observed = client.call(*args)
            if step.store:
                variables[step.store] = observed
            alternative = next(
                (
                    d
                    for d in step.alternatives
                    if d in diverging and step.alternative_for(d, protocol) is not None
                ),
                None,
            )
            expectation = step.expectation(protocol, alternative)
            transcript.add(args, observed, expectation)
            why = mismatch(expectation, observed)
            if alternative and alternative not in used:
                used.append(alternative)
            if why is None:
                continue
            return _explain_mismatch(
                index,
                why,
                observed,
                lacking,
                alternative and diverging[alternative],
                transcript,
                step_alternatives=step.alternatives,
                protocol=protocol,
            )
    finally:
        for command in case.cleanup:
            client.call(*resolve_args(command, variables))
    if lacking:
        entry = lacking[0]
        return Outcome(
            "fail",
            entry.id,
            {
                "message": f"stale registry entry {entry.id!r}: it says {engine.id} lacks "
                f"{', '.join(entry.features)}, but every step passed",
                "transcript": transcript.steps,
            },
        )
    # An entry the case declares for the other protocol only is not expected to show here.
    other = 5 - protocol
    other_protocol_only = {
        d
        for d in diverging
        if other in case.protocols
        and not any(s.alternative_for(d, protocol) for s in case.steps)
        and any(s.alternative_for(d, other) for s in case.steps)
    }
    unseen = [d for d in diverging if d not in used and d not in other_protocol_only]
    if unseen:
        return Outcome(
            "fail",
            unseen[0],
            {
                "message": f"registry entry {unseen[0]!r} applies to {engine.id} but this case "
                "saw no difference (stale entry, or the case lacks a 'divergent' alternative)",
                "transcript": transcript.steps,
            },
        )
    if used:
        entry = diverging[used[0]]
        return Outcome(
            "divergent",
            entry.id,
            {"message": entry.note, "source": entry.source, "transcript": transcript.steps},
        )
    # A pass is fully described by the case file; only differences carry a transcript.
    return Outcome("pass", None, {})


def _explain_mismatch(
    index: int,
    why: str,
    observed: Any,
    lacking: list[Divergence],
    alternative: Divergence | None,
    transcript: _Transcript,
    *,
    step_alternatives: dict[str, Any],
    protocol: int,
) -> Outcome:
    detail: dict[str, Any] = {"step": index + 1, "transcript": transcript.steps}
    if lacking and isinstance(observed, RespError):
        # Several entries may apply (a case can touch two missing features): any whose
        # registered refusal matches explains the error.
        for entry in lacking:
            pattern = (entry.reply or {}).get("error_match")
            if pattern is None or mismatch(Expectation("error_match", pattern), observed) is None:
                detail.update(message=entry.note, source=entry.source, observed=observed.message)
                return Outcome("unsupported", entry.id, detail)
        entry = lacking[0]
        pattern = (entry.reply or {}).get("error_match")
        detail["message"] = (
            f"registry entry {entry.id!r} expects an engine without the feature to answer "
            f"an error matching {pattern!r}; got {describe(observed)}"
        )
        return Outcome("fail", entry.id, detail)
    if alternative is not None:
        detail["message"] = (
            f"registered divergence {alternative.id!r} predicts another reply: {why}"
        )
        return Outcome("fail", alternative.id, detail)
    detail["message"] = why
    if step_alternatives:
        detail["hint"] = (
            "this step has alternatives for "
            + ", ".join(step_alternatives)
            + ", none of which the registry applies to this engine"
        )
    detail["protocol"] = protocol
    return Outcome("fail", None, detail)
