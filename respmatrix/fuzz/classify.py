"""Whether a difference between engines is explained by the divergence registry.

Each engine gets a *signature*: the registry entries that, for the step's features, predict a
difference on it (``unsupported`` entries where it lacks the feature, ``divergent`` entries where
its behaviour differs). A difference is explained when engines with the same signature all gave
the same reply, so every disagreement crosses a line the registry draws. Engines whose reply
differs from the reference (the engines no entry touches, or else the most common reply) are
``unsupported`` or ``divergent`` for the entry; any other difference is a ``fail``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from respmatrix.catalog import EngineSpec
from respmatrix.registry import Divergence, DivergenceRegistry


@dataclass
class Verdict:
    """The comparison of one step across engines."""

    kind: str  # "same" | "explained" | "fail"
    replies: dict[str, Any]  # engine label -> normalised reply
    # engine label -> (outcome, registry entry id), for the engines an entry explains
    explained: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        return self.kind != "same"

    def groups(self) -> list[tuple[list[str], Any]]:
        """Engines grouped by reply, largest group first (then by first engine)."""
        by_reply: dict[str, list[str]] = {}
        for label, reply in self.replies.items():
            by_reply.setdefault(_key(reply), []).append(label)
        ordered = sorted(by_reply.values(), key=lambda labels: -len(labels))
        return [(labels, self.replies[labels[0]]) for labels in ordered]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def classify(
    features: Iterable[str],
    engines: Mapping[str, EngineSpec],
    replies: Mapping[str, Any],
    registry: DivergenceRegistry,
    earlier: Mapping[str, set[str]] | None = None,
) -> Verdict:
    """Compare normalised ``replies`` (engine label -> reply) of one step. ``earlier`` (engine
    label -> entry ids) names the entries that explained the steps queued before an EXEC:
    the cause of a transaction's different outcome is among them."""
    replies = dict(replies)
    if len({_key(r) for r in replies.values()}) <= 1:
        return Verdict("same", replies)
    features = sorted(set(features))
    entries = {label: registry.applicable(features, engines[label]) for label in replies}
    # An engine that lacks a feature and refuses it with the registered error is as expected,
    # whatever the other engines (and other engines lacking it) answer.
    refused = {
        label: found for label in replies if (found := _refusal(entries[label], replies[label]))
    }
    rest = [label for label in replies if label not in refused]
    signature = {label: tuple(sorted(e.id for e in entries[label])) for label in rest}
    by_signature: dict[tuple[str, ...], set[str]] = {}
    for label, sig in signature.items():
        by_signature.setdefault(sig, set()).add(_key(replies[label]))
    if any(len(seen) > 1 for seen in by_signature.values()):
        return Verdict("fail", replies)
    explained = {label: ("unsupported", entry.id) for label, entry in refused.items()}
    if rest:
        untouched = [label for label in rest if not signature[label]]
        if untouched:
            reference = _key(replies[untouched[0]])
        else:
            reference = Counter(_key(replies[r]) for r in rest).most_common(1)[0][0]
        for label in rest:
            if _key(replies[label]) != reference:
                alike = {other for other in replies if _key(replies[other]) == _key(replies[label])}
                seen = (earlier or {}).get(label, set())
                entry = _best_entry(entries[label], alike, engines, seen)
                explained[label] = (entry.kind, entry.id)
    return Verdict("explained", replies, explained)


def _refusal(entries: list[Divergence], reply: Any) -> Divergence | None:
    """The unsupported entry whose registered refusal ``reply`` is, if any."""
    message = reply.get("error") if isinstance(reply, dict) and len(reply) == 1 else None
    if message is None:
        return None
    for entry in sorted(entries, key=lambda e: e.id):
        pattern = (entry.reply or {}).get("error_match")
        if entry.kind == "unsupported" and pattern and re.search(pattern, message):
            return entry
    return None


def _best_entry(
    entries: list[Divergence],
    alike: set[str],
    engines: Mapping[str, EngineSpec],
    earlier: set[str],
) -> Divergence:
    """The entry named for a differing reply, when several apply: the one whose prediction
    matches what was seen. An entry predicts a difference on the engines it applies to, so the
    best is the one that applies to exactly the engines that gave this reply (``alike``); then
    one that already explained a step of the transaction on this engine (``earlier``); then the
    one whose engines are closest to ``alike``; a divergent entry before an unsupported one;
    and only then the id."""

    def score(entry: Divergence) -> tuple[bool, bool, int, bool, str]:
        predicted = {label for label, spec in engines.items() if entry.applies_to(spec)}
        return (predicted != alike, entry.id not in earlier, len(predicted ^ alike),
                entry.kind != "divergent", entry.id)  # fmt: skip

    return min(entries, key=score)
