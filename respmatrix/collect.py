"""pytest items for YAML cases: one item per (case, engine, client, protocol)."""

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
    """A case ended in ``fail`` or ``error``."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.detail.get("message", outcome.outcome))
        self.outcome = outcome


class CaseFile(pytest.File):
    def collect(self) -> Iterator[CaseItem]:
        from respmatrix.plugin import SESSION_KEY

        session = self.config.stash[SESSION_KEY]
        case = load_case(self.path, session.suites_root)
        for target in session.selection.targets(case.protocols):
            # A typed-API case is written for one library's methods; other clients do not
            # offer them, so there is no cell to fill (raw cases run through every client).
            if not case.runs_on(adapter_class(target.client).api):
                continue
            yield CaseItem.from_parent(
                self, name=f"{case.name}[{target.id}]", case=case, target=target
            )


class CaseItem(pytest.Item):
    def __init__(self, *, case: Case, target: Target, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.target = target
        self.outcome: Outcome | None = None
        for feature in case.features:
            self.add_marker(pytest.mark.respmatrix_feature(feature))

    def runtest(self) -> None:
        from respmatrix.plugin import SESSION_KEY

        session = self.config.stash[SESSION_KEY]
        target = self.target
        began = time.perf_counter()
        try:
            engine = session.engine(target.engine)
            session.pool.reset(target.engine)
            client = session.client(target)
            outcome = run_case(self.case, client, engine.spec, session.registry)
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
        self.outcome = outcome
        session.record_case(self.case, target, outcome, time.perf_counter() - began)
        self.user_properties.append(("respmatrix_outcome", outcome.outcome))
        if outcome.outcome in ("fail", "error"):
            raise CaseFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CaseFailed):
            outcome = excinfo.value.outcome
            lines = [
                f"{outcome.outcome}: {self.case.claim}",
                f"  {outcome.detail.get('message', '')}",
            ]
            if outcome.divergence:
                lines.append(f"  registry entry: {outcome.divergence}")
            for index, step in enumerate(outcome.detail.get("transcript", ()), 1):
                lines.append(
                    f"  {index}. {json.dumps(step['send'])} -> {json.dumps(step['reply'])}"
                )
            lines.append(f"  case file: {self.case.path}")
            return "\n".join(lines)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"{self.case.id} [{self.target.id}]"
