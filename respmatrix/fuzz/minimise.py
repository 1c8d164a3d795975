"""Shrinking a failing script further by replaying it, one command fewer at a time.

Hypothesis shrinks the choices that produced an example, which often leaves steps the failure
does not need (a state machine's steps are hard to delete without changing the ones after).
Here each command before the last is dropped in turn, the script is replayed on the engines,
and the drop is kept if the last step still splits the engines the same way, unexplained. The
replays also prove the script reproduces the difference.
"""

from __future__ import annotations

from typing import Any

from respmatrix.fuzz.classify import Verdict
from respmatrix.fuzz.lockstep import Finding, Lockstep, preamble_of

MAX_REPLAYS = 400


def partition(verdict: Verdict) -> frozenset[frozenset[str]]:
    return frozenset(frozenset(labels) for labels, _ in verdict.groups())


def reproduces(lockstep: Lockstep, finding: Finding, commands: list[list[Any]]) -> Verdict | None:
    """The last step's verdict if it is the same unexplained split, else None."""
    verdicts = lockstep.replay(finding.family, finding.protocol, commands)
    if not verdicts:
        return None
    last = verdicts[-1]
    wanted = frozenset(frozenset(labels) for labels, _ in finding.groups)
    if last.kind == "fail" and partition(last) == wanted:
        return last
    return None


def minimise(lockstep: Lockstep, finding: Finding) -> bool:
    """Shorten ``finding`` in place; False if its script no longer reproduces at all."""
    head = len(preamble_of(finding.family, finding.protocol))
    commands = [list(c) for c in finding.commands]
    verdict = reproduces(lockstep, finding, commands)
    if verdict is None:
        return False
    replays = 1
    changed = True
    while changed and replays < MAX_REPLAYS:
        changed = False
        index = head
        while index < len(commands) - 1 and replays < MAX_REPLAYS:
            candidate = commands[:index] + commands[index + 1 :]
            replays += 1
            found = reproduces(lockstep, finding, candidate)
            if found is not None:
                commands, verdict, changed = candidate, found, True
            else:
                index += 1
    finding.commands = commands
    finding.replies = verdict.replies
    finding.groups = verdict.groups()
    return True
