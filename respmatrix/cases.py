"""Compatibility cases as data: one YAML file per claim, under ``suites/<family>/<COMMAND>/``.

A case is a script of steps; each step sends one command and states the reply it expects.
See the README ("How to add a case") for the format; ``schemas/case.schema.yaml`` is the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from respmatrix.connections import check_steps
from respmatrix.datafiles import DataFileError, load_validated

# Keys of a step (or of a divergence alternative) that state what reply is expected.
EXPECTATION_KEYS = (
    "expect",
    "expect_resp2",
    "expect_resp3",
    "error",
    "error_match",
    "range",
    "match",
    "type",
    "client_error",
)


# The expectation kinds a step (or alternative) states exactly one of.
EXPECTATION_KINDS = ("expect", "error", "error_match", "range", "match", "type", "client_error")


@dataclass(frozen=True)
class Pattern:
    """``!match REGEX`` inside an expected value: a string fully matching the regex."""

    regex: str


class CaseLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe YAML loader plus the ``!match`` tag."""


@dataclass(frozen=True)
class Between:
    """``!range [low, high]`` inside an expected value: a number in [low, high]; bounds may be
    ``{unix: N}`` / ``{unix_ms: N}`` (times from now)."""

    low: Any
    high: Any


def _between(loader: yaml.SafeLoader, node: yaml.Node) -> Between:
    low, high = loader.construct_sequence(node, deep=True)
    return Between(low, high)


class Unordered(list):
    """``!unordered [...]`` inside an expected value: an array compared as a multiset."""

    __slots__ = ()


class UnorderedPairs(list):
    """``!unordered_pairs [...]``: a flat array of pairs (field, value, ...) compared as a
    multiset of pairs, e.g. HSCAN or ZSCAN pages whose order the engine does not define."""

    __slots__ = ()


CaseLoader.add_constructor("!match", lambda loader, node: Pattern(loader.construct_scalar(node)))
CaseLoader.add_constructor("!range", _between)
CaseLoader.add_constructor(
    "!unordered", lambda loader, node: Unordered(loader.construct_sequence(node, deep=True))
)
CaseLoader.add_constructor(
    "!unordered_pairs",
    lambda loader, node: UnorderedPairs(loader.construct_sequence(node, deep=True)),
)


@dataclass(frozen=True)
class Expectation:
    """What one reply must be, for one protocol."""

    kind: str  # value | error | error_match | range | match | type
    value: Any
    unordered: bool = False

    @classmethod
    def from_step(cls, raw: dict[str, Any], protocol: int, unordered: bool) -> Expectation:
        per_protocol = f"expect_resp{protocol}"
        if per_protocol in raw:
            return cls("value", raw[per_protocol], unordered)
        for kind in ("error", "error_match", "range", "match", "type", "client_error"):
            if kind in raw:
                return cls(kind, raw[kind], unordered)
        # a background step states nothing: only a client refusing to start it is compared
        return cls("value", raw.get("expect"), unordered)


@dataclass(frozen=True)
class Step:
    send: tuple[Any, ...]  # the command, or the positional arguments of a typed call
    raw: dict[str, Any]
    store: str | None = None
    sleep_ms: int = 0
    poll_ms: int = 0  # resend until the reply is the expected one, for at most this long
    alternatives: dict[str, dict[str, Any]] = field(default_factory=dict)
    call: str | None = None  # typed-API step: the client method to call
    kwargs: dict[str, Any] = field(default_factory=dict)
    # expectation() by (protocol, divergence): asked for every step through every client mode
    _expectations: dict[tuple[int, str | None], Expectation] = field(
        default_factory=dict, compare=False, repr=False
    )

    def alternative_for(self, divergence: str, protocol: int) -> dict[str, Any] | None:
        """The alternative this step states for ``divergence`` under ``protocol``, if any.

        An alternative giving only ``expect_resp2`` says the difference shows in RESP2 only.
        """
        alternative = self.alternatives.get(divergence)
        if alternative is None:
            return None
        keys = set(alternative) & set(EXPECTATION_KEYS)
        if not keys - {f"expect_resp{5 - protocol}"}:
            return None  # stated for the other protocol only
        if self.expectation(protocol, divergence) == self.expectation(protocol):
            return None  # same reply as the reference under this protocol: no difference here
        return alternative

    def expectation(self, protocol: int, divergence: str | None = None) -> Expectation:
        found = self._expectations.get((protocol, divergence))
        if found is None:
            raw = self.alternatives[divergence] if divergence else self.raw
            unordered = bool(raw.get("unordered", self.raw.get("unordered", False)))
            found = Expectation.from_step(raw, protocol, unordered)
            self._expectations[protocol, divergence] = found
        return found


@dataclass(frozen=True)
class Case:
    id: str  # "strings/SET/ifeq-replaces-on-match"
    family: str
    claim: str
    features: tuple[str, ...]
    steps: tuple[Step, ...]
    cleanup: tuple[tuple[Any, ...], ...]
    protocols: tuple[int, ...]
    path: Path
    api: tuple[str, ...] = ()  # typed-API case: the client APIs it is written for

    @property
    def opens_transaction(self) -> bool:
        return any(s.send and str(s.send[0]).upper() == "MULTI" for s in self.steps if not s.call)

    def runs_on(self, client_api: str | None) -> bool:
        """Raw cases run through every client; typed cases through clients offering the API."""
        return not self.api or client_api in self.api

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]


def load_case(path: Path, root: Path) -> Case:
    """Read and validate one case file; ``root`` is the suites folder the id is relative to."""
    raw = load_validated(path, "case.schema.yaml", "case", loader=CaseLoader)
    case_id = path.relative_to(root).with_suffix("").as_posix()
    for index, item in enumerate(raw["steps"], 1):
        for where, spec in [
            ("", item),
            *((f" (divergent {k})", v) for k, v in item.get("divergent", {}).items()),
        ]:
            kinds = [k for k in EXPECTATION_KINDS if k in spec]
            if len(kinds) > 1:
                raise DataFileError(
                    f"{path}: step {index}{where} states several expectations "
                    f"({', '.join(kinds)}); a step states one"
                )
    check_steps(raw["steps"], path)  # conn/background/await/receive steps fit together
    steps = []
    for item in raw["steps"]:
        if "sleep_ms" in item:
            steps.append(Step(send=(), raw=item, sleep_ms=int(item["sleep_ms"])))
            continue
        steps.append(
            Step(
                send=tuple(item["send"] if "send" in item else item.get("args", ())),
                raw=item,
                store=item.get("store"),
                poll_ms=int(item.get("poll_ms", 0)),
                alternatives=dict(item.get("divergent", {})),
                call=item.get("call"),
                kwargs=dict(item.get("kwargs", {})),
            )
        )
    api = tuple(raw.get("api", ()))
    if not api and any(step.call for step in steps):
        raise DataFileError(f"{path}: a case with `call:` steps names the client `api` it is for")
    return Case(
        id=case_id,
        family=case_id.split("/", 1)[0],
        claim=raw["claim"],
        features=tuple(raw["features"]),
        steps=tuple(steps),
        cleanup=tuple(tuple(c) for c in raw.get("cleanup", ())),
        protocols=tuple(raw.get("protocols", (2, 3))),
        path=path,
        api=api,
    )


def discover_cases(root: Path, families: set[str] | None = None) -> list[Case]:
    """Load every case under ``root`` (optionally only some families), sorted by id."""
    cases = []
    for path in sorted(root.rglob("*.yaml")):
        if is_case_file(path, root) and (
            families is None or path.relative_to(root).parts[0] in families
        ):
            cases.append(load_case(path, root))
    return cases


def is_case_file(path: Path, root: Path) -> bool:
    """Case files sit at least one folder deep (``family/...``); ``registry.yaml`` is not one."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    return path.suffix == ".yaml" and len(rel.parts) >= 2 and not path.name.startswith("_")
