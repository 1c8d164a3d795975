"""One measured migration fact: method, producer, consumer, subject, outcome and why.

Outcomes use the project's vocabulary, measured rather than predicted by the registry:
``pass`` moved and identical, ``divergent`` accepted but different (``differences`` says how),
``unsupported`` refused by the consumer (``error`` is its exact words), ``error`` the harness
could not tell (a server that would not start for another reason, a timeout of our own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from respmatrix.migration import FAMILY

PASS, DIFFERENT, REFUSED, ERROR = "pass", "divergent", "unsupported", "error"


@dataclass
class MigrationOutcome:
    method: str  # dump-restore | rdb | replication
    producer: str
    consumer: str
    subject: str  # the data type for dump-restore, "dataset" for the others
    outcome: str
    reason: str  # one line a reader can act on
    error: str | None = None  # the consumer's exact refusal (reply or log line)
    differences: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # stage, log lines, timings

    @property
    def case(self) -> str:
        return f"{FAMILY}/{self.method}/{self.producer}/{self.subject}"

    def claim(self) -> str:
        what = "a DUMP payload of" if self.method == "dump-restore" else "the dataset via"
        target = self.subject if self.method == "dump-restore" else self.method
        return f"{what} {target} moves from {self.producer} unchanged"

    def as_result(self) -> dict[str, Any]:
        """A record of the results file (family ``migration``; engine is the consumer)."""
        detail: dict[str, Any] = {"message": self.reason}
        if self.error is not None:
            detail["error"] = self.error
        if self.differences:
            detail["differences"] = self.differences
        detail.update(self.extra)
        return {
            "case": self.case,
            "family": FAMILY,
            "features": [self.method],
            "engine": self.consumer,
            "producer": self.producer,
            "method": self.method,
            "client": "raw",
            "protocol": "resp2",
            "outcome": self.outcome,
            "divergence": None,
            "detail": detail,
        }

    @classmethod
    def from_result(cls, result: dict[str, Any]) -> MigrationOutcome:
        detail = dict(result["detail"])
        subject = result["case"].rsplit("/", 1)[-1]
        return cls(
            method=result["method"],
            producer=result["producer"],
            consumer=result["engine"],
            subject=subject,
            outcome=result["outcome"],
            reason=detail.pop("message", ""),
            error=detail.pop("error", None),
            differences=detail.pop("differences", []),
            extra=detail,
        )
