"""pytest items for YAML cases: one item per (case, engine, protocol), run through every selected
client mode; the results file keeps one row per (case, engine, client, protocol)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from respmatrix.cases import Case, load_case
from respmatrix.clients import adapter_class
from respmatrix.runner import Outcome, run_case
from respmatrix.selection import Target


class CaseFailed(Exception):
    """A case ended in ``fail`` or ``error`` through one or more client modes."""

    def __init__(self, failures: list[tuple[Target, Outcome]]) -> None:
        super().__init__(
            "; ".join(f"{t.client}: {o.detail.get('message', o.outcome)}" for t, o in failures)
        )
        self.failures = failures


# The item's status letter when no client failed: the most telling outcome among its clients.
_STATUS_ORDER = ("divergent", "unsupported", "skipped", "pass")


class CaseFile(pytest.File):
    def collect(self) -> Iterator[CaseItem]:
        from respmatrix.plugin import SESSION_KEY

        session = self.config.stash[SESSION_KEY]
        case = load_case(self.path, session.suites_root)
        # One item per (engine, protocol) runs the case through every selected client mode in
        # turn: a pytest item costs about a millisecond of its own, more than most cases take
        # through a client, so seven items per cell would spend most of a run in pytest.
        cells: dict[tuple[str, int], list[Target]] = {}
        for target in session.selection.targets(case.protocols):
            # A typed-API case is written for one library's methods; other clients do not
            # offer them, so there is no cell to fill (raw cases run through every client).
            if case.runs_on(adapter_class(target.client).api):
                cells.setdefault((target.engine, target.protocol), []).append(target)
        for (engine, protocol), targets in cells.items():
            label = targets[0].id if len(targets) == 1 else f"{engine}-resp{protocol}"
            yield CaseItem.from_parent(
                self, name=f"{case.name}[{label}]", case=case, targets=tuple(targets)
            )


class CaseItem(pytest.Item):
    """One case on one engine over one protocol, through each selected client mode; every
    client's outcome is recorded on its own."""

    def __init__(self, *, case: Case, targets: tuple[Target, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.targets = targets
        for feature in case.features:
            self.add_marker(pytest.mark.respmatrix_feature(feature))

    def runtest(self) -> None:
        from respmatrix.plugin import SESSION_KEY

        session = self.config.stash[SESSION_KEY]
        try:
            # Not kept on the item: the outcomes are in the results file, and a worker holding
            # every item's transcripts makes each full cyclic-GC pass walk them all again.
            outcomes = [
                (target, _run_through(session, self.case, target)) for target in self.targets
            ]
        finally:
            session.flush_results()
        failures = [(t, o) for t, o in outcomes if o.outcome in ("fail", "error")]
        if failures:
            raise CaseFailed(failures)
        seen = {o.outcome for _, o in outcomes}
        status = next((s for s in _STATUS_ORDER if s in seen), "pass")
        self.user_properties.append(("respmatrix_outcome", status))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            lines = [self.case.claim]
            for target, outcome in excinfo.value.failures:
                lines.append(
                    f"{target.client}: {outcome.outcome}: {outcome.detail.get('message', '')}"
                )
                if outcome.divergence:
                    lines.append(f"  registry entry: {outcome.divergence}")
                for index, step in enumerate(outcome.detail.get("transcript", ()), 1):
                    lines.append(
                        f"  {index}. {json.dumps(step['send'])} -> {json.dumps(step['reply'])}"
                    )
            lines.append(f"case file: {self.case.path}")
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"{self.case.id} [{self.name.partition('[')[2].rstrip(']')}]"


def _run_through(session: Any, case: Case, target: Target) -> Outcome:
    """Run ``case`` through one client mode on a flushed engine and record the outcome."""
    began = time.perf_counter()
    try:
        engine = session.engine(target.engine)
        session.pool.reset(target.engine)
        client = session.client(target)
        outcome = run_case(case, client, engine.spec, session.registry)
        stray = client.unsolicited()
        if stray:
            # A server that answers twice would shift every later reply on this connection.
            session.pool.drop_client(target.engine, target.client, target.protocol)
            outcome = Outcome(
                "fail",
                None,
                {
                    "message": f"the server sent {len(stray)} bytes no command asked for: "
                    f"{stray[:80]!r}",
                    "transcript": outcome.detail.get("transcript", []),
                },
            )
    except Exception as exc:  # the harness could not run the case: outcome "error"
        session.pool.drop_client(target.engine, target.client, target.protocol)
        outcome = Outcome("error", None, {"message": f"{type(exc).__name__}: {exc}"})
    session.record_case(case, target, outcome, time.perf_counter() - began)
    return outcome
