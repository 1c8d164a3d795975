"""One hypothesis state machine per family, all driving the same :class:`Lockstep`.

A machine's rules grow a bundle of key names (a few fixed names, so that commands meet each
other's keys) and send one command of the family's list per step, with its arguments drawn
there and then. Each example starts from empty engines (``Lockstep.begin``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, multiple, rule

from respmatrix.fuzz.commands import FAMILIES, Command
from respmatrix.fuzz.lockstep import Lockstep

KEY_NAMES = ["k1", "k2", "{k}3", "k:4", "ñ"]


class LockstepMachine(RuleBasedStateMachine):
    """Base machine: the lockstep, protocol and family are set on the subclass by the runner."""

    lockstep: ClassVar[Lockstep]
    protocol: ClassVar[int] = 2
    family: ClassVar[str] = ""
    commands: ClassVar[list[Command]] = []
    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.lockstep.begin(self.family, self.protocol)

    @initialize(target=keys)
    def first_keys(self) -> Any:
        return multiple("k1", "k2")

    @rule(target=keys, name=st.sampled_from(KEY_NAMES))
    def another_key(self, name: str) -> str:
        return name

    @rule(data=st.data(), key=keys, other=keys)
    def command(self, data: st.DataObject, key: str, other: str) -> None:
        make = data.draw(st.sampled_from(self.commands), label="command")
        args = make(data.draw, key, other)
        self.lockstep.send(args)

    def teardown(self) -> None:
        self.lockstep.end()


def _machine(family: str, commands: list[Command]) -> type[LockstepMachine]:
    name = "".join(part.title() for part in family.split("-")) + "Machine"
    return type(name, (LockstepMachine,), {"family": family, "commands": commands,
                                           "__module__": __name__})  # fmt: skip


MACHINES: dict[str, type[LockstepMachine]] = {f: _machine(f, c) for f, c in FAMILIES.items()}
