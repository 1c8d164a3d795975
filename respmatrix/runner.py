"""Running one case on one engine through one client, and deciding its outcome.

Outcome words are the contract of design.md: pass, fail, unsupported, divergent, error, skipped.
Expected differences come only from the divergence registry: a case may state the alternative
reply a *registered* divergence produces, and an engine the registry says lacks a feature must
refuse it with an error reply. Registry entries of kind ``client`` do the same for a client
library (a mode that cannot express a command, a typed method that is missing or parses a reply
its own way); outcomes they explain carry ``scope: client`` in their detail.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from respmatrix.cases import Case, Expectation
from respmatrix.catalog import EngineSpec
from respmatrix.clients.base import UNCONVERTED, ClientAdapter, ClientCannotExpress
from respmatrix.connections import STARTED, CaseConnections
from respmatrix.expectations import describe, jsonable, mismatch, resolve_time, same
from respmatrix.registry import ClientRef, Divergence, DivergenceRegistry
from respmatrix.replies import ClientFailure, RespError

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


def _typed_arg(client: ClientAdapter, arg: Any, variables: dict[str, Any]) -> Any:
    """An argument of a typed call: plain values, lists, or ``{api: Name, args: [...]}``."""
    if isinstance(arg, dict) and "api" in arg:
        inner = [_typed_arg(client, a, variables) for a in arg.get("args", ())]
        return client.api_value(arg["api"], inner if "args" in arg else None)
    if isinstance(arg, list):
        return [_typed_arg(client, a, variables) for a in arg]
    if isinstance(arg, dict) and not arg.keys() & {"var", "hex", "unix", "unix_ms"}:
        return {k: _typed_arg(client, v, variables) for k, v in arg.items()}
    if arg is None or isinstance(arg, bool):
        return arg
    return resolve_args((arg,), variables)[0]


def client_ref(client: ClientAdapter) -> ClientRef:
    """Who answers through ``client``: its mode, package version and protocol."""
    return _client_ref(type(client), client.protocol)


@cache
def _client_ref(adapter: type[ClientAdapter], protocol: int) -> ClientRef:
    # asked once per case and client mode; the package version is read from its metadata once
    return ClientRef(adapter.client_id, adapter.package_version(), protocol)


def _send(client: ClientAdapter, step: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """One step through the client: a raw command, or a typed method call (``call:``)."""
    try:
        if step.call:
            return client.invoke(step.call, args, kwargs)
        return client.call(*args)
    except ClientCannotExpress as exc:
        return ClientFailure("cannot-express", str(exc))


def _client_layer(
    step: Any, observed: Any, protocol: int, diverging: dict[str, Divergence], engine_alt: str
) -> Divergence | None:
    """A client entry among the step's alternatives whose reply matches, when the engine
    alternative chosen for the step does not."""
    for divergence_id in step.alternatives:
        entry = diverging.get(divergence_id)
        if entry is None or entry.kind != "client" or divergence_id == engine_alt:
            continue
        if mismatch(step.expectation(protocol, divergence_id), observed) is None:
            return entry
    return None


def _converted(
    client: ClientAdapter, step: Any, command: tuple[Any, ...], expectation: Expectation
) -> Expectation | None:
    """The step's expected reply as a converting client hands it back, when that differs."""
    if step.call or expectation.kind != "value" or not command:
        return None
    value = client.converted_reply(command, expectation.value)
    if value is UNCONVERTED or same(value, expectation.value):
        return None
    return Expectation("value", value, expectation.unordered)


def _as_protocol(step: Any, args: tuple[Any, ...], protocol: int, diverging: dict) -> Any:
    """A client entry saying the client hands back another protocol's reply shape for this
    step's command: (entry, that protocol), else None."""
    if step.call or not args:
        return None
    name = str(args[0]).upper()
    full = f"{name} {str(args[1]).upper()}" if len(args) > 1 else name
    for entry in diverging.values():
        reply = entry.reply or {}
        other = reply.get("as_protocol")
        names = {c.upper() for c in reply.get("commands", ())}
        if (
            other
            and other != protocol
            and {name, full} & names
            and step.expectation(other) != step.expectation(protocol)
        ):
            return entry, other
    return None


def _poll(
    step: Any,
    observed: Any,
    protocol: int,
    diverging: dict[str, Divergence],
    connections: CaseConnections,
    send: Callable[[ClientAdapter], Any],
) -> Any:
    """Send a ``poll_ms`` step again until its reply is the one expected (the registry's
    alternative where one applies) or its time is up; the last reply is what gets judged."""
    alternative = next(
        (
            d
            for d in step.alternatives
            if d in diverging and step.alternative_for(d, protocol) is not None
        ),
        None,
    )
    expectation = step.expectation(protocol, alternative)
    deadline = time.monotonic() + step.poll_ms / 1000
    while mismatch(expectation, observed) is not None and time.monotonic() < deadline:
        time.sleep(0.002)
        observed = connections.perform(step, send)
    return observed


def run_case(
    case: Case,
    client: ClientAdapter,
    engine: EngineSpec,
    registry: DivergenceRegistry,
) -> Outcome:
    """Run ``case`` through ``client`` (already connected, database flushed) on ``engine``."""
    applicable = registry.applicable(case.features, engine, client_ref(client))
    lacking = [d for d in applicable if d.outcome == "unsupported"]
    diverging = {d.id: d for d in applicable if d.outcome == "divergent"}
    converter = next((d for d in diverging.values() if d.converts), None)
    used: list[str] = []
    transcript = _Transcript()
    connections = CaseConnections(client)
    variables: dict[str, Any] = {}
    protocol = client.protocol
    finished = 0  # steps done, to know whether the case stopped early
    try:
        for index, step in enumerate(case.steps):
            finished = index
            if step.sleep_ms:
                time.sleep(step.sleep_ms / 1000)
                continue
            if step.call:
                args = tuple(_typed_arg(client, a, variables) for a in step.send)
                kwargs = {k: _typed_arg(client, v, variables) for k, v in step.kwargs.items()}
            else:
                args, kwargs = resolve_args(step.send, variables), {}
            send = partial(_send, step=step, args=args, kwargs=kwargs)
            observed = connections.perform(step, send)
            if observed is STARTED:
                continue  # a background step: its `await` step checks the reply
            if step.poll_ms:
                observed = _poll(step, observed, protocol, diverging, connections, send)
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
            command = connections.command_of(step, args)  # an await step: its background command
            shape = None if alternative else _as_protocol(step, command, protocol, diverging)
            if shape is not None:
                alternative = shape[0].id
                expectation = step.expectation(shape[1])
            # A converting client also converts an engine entry's alternative reply (not an
            # as_protocol reshaping, which already is the client's shape).
            if converter is not None and (shape is None or alternative != shape[0].id):
                converted = _converted(client, step, command, expectation)
                if converted is not None:
                    if mismatch(converted, observed) is None:
                        if alternative is not None and alternative not in used:
                            used.append(alternative)
                        alternative, expectation = converter.id, converted
                    elif mismatch(expectation, observed) is None:
                        return Outcome(
                            "fail",
                            converter.id,
                            _scoped(
                                converter,
                                {
                                    "step": index + 1,
                                    "message": f"stale registry entry {converter.id!r}: "
                                    f"{client.client_id} should convert this reply to "
                                    f"{describe(converted.value)}, but handed back the wire "
                                    "reply unchanged",
                                    "transcript": transcript.steps,
                                },
                            ),
                        )
            label = connections.label(step, (step.call, *args) if step.call else args)
            transcript.add(label, observed, expectation)
            why = mismatch(expectation, observed) or connections.timing_mismatch(step)
            if why is not None and alternative is not None:
                # A client entry stated on the same step may describe how this client shows the
                # engine's difference (GLIDE raises an error that the engine sent inside an array).
                layered = _client_layer(step, observed, protocol, diverging, alternative)
                if layered is not None:
                    used.append(alternative)
                    alternative, expectation, why = (
                        layered.id,
                        step.expectation(protocol, layered.id),
                        None,
                    )
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
        finished = len(case.steps)
    finally:
        connections.close()  # extra connections never outlive their case
        if finished < len(case.steps) and case.opens_transaction:
            # A case that stopped inside MULTI would leave the connection queueing commands
            # for the next case; the reply (an error when no MULTI is open) does not matter.
            client.call("DISCARD")
        for command in case.cleanup:
            # a command the client cannot express cannot be cleaned up through it either
            with contextlib.suppress(ClientCannotExpress):
                client.call(*resolve_args(command, variables))
    if lacking:
        entry = lacking[0]
        who = f"{engine.id} lacks"
        if entry.kind == "client":
            who = f"{client.client_id} cannot express"
        return Outcome(
            "fail",
            entry.id,
            _scoped(
                entry,
                {
                    "message": f"stale registry entry {entry.id!r}: it says {who} "
                    f"{', '.join(entry.features)}, but every step passed",
                    "transcript": transcript.steps,
                },
            ),
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
    unseen = [
        d
        for d in diverging
        if d not in used
        and d not in other_protocol_only
        # command-scoped client entries are checked per step, not per case
        and not diverging[d].converts
        and not (diverging[d].reply or {}).get("as_protocol")
    ]
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
            _scoped(
                entry,
                {"message": entry.note, "source": entry.source, "transcript": transcript.steps},
            ),
        )
    # A pass is fully described by the case file; only differences carry a transcript.
    return Outcome("pass", None, {})


def _scoped(entry: Divergence, detail: dict[str, Any]) -> dict[str, Any]:
    """Mark outcomes explained by a client entry, so reports keep them apart."""
    if entry.kind == "client":
        detail["scope"] = "client"
    return detail


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
    if isinstance(observed, ClientFailure):
        # Only a client entry explains a client failure; an engine never does.
        for entry in lacking:
            pattern = (entry.reply or {}).get("error_match")
            if entry.kind == "client" and (pattern is None or re.search(pattern, str(observed))):
                detail.update(message=entry.note, source=entry.source, observed=str(observed))
                return Outcome("unsupported", entry.id, _scoped(entry, detail))
        detail["message"] = f"the client failed: {observed}"
        detail["scope"] = "client"
        detail["protocol"] = protocol
        return Outcome("fail", None, detail)
    lacking = [d for d in lacking if d.kind != "client"]
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
        return Outcome("fail", alternative.id, _scoped(alternative, detail))
    detail["message"] = why
    if step_alternatives:
        detail["hint"] = (
            "this step has alternatives for "
            + ", ".join(step_alternatives)
            + ", none of which the registry applies to this engine"
        )
    detail["protocol"] = protocol
    return Outcome("fail", None, detail)
