"""What a run covers: engines x clients x protocols, resolved from command-line words."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from respmatrix.catalog import EngineCatalog
from respmatrix.clients import adapter_class, select_clients


@dataclass(frozen=True)
class Target:
    """One cell of the matrix: an engine, a client mode and a protocol."""

    engine: str
    client: str
    protocol: int

    @property
    def id(self) -> str:
        return f"{self.engine}-{self.client}-resp{self.protocol}"


def parse_protocols(selector: str) -> list[int]:
    """``2,3``, ``resp2``, ``all`` -> [2, 3]."""
    found: set[int] = set()
    for word in (w.strip().lower() for w in selector.split(",") if w.strip()):
        if word == "all":
            found.update((2, 3))
        elif word.removeprefix("resp") in ("2", "3"):
            found.add(int(word.removeprefix("resp")))
        else:
            raise ValueError(f"unknown protocol {word!r}; use 2, 3, resp2, resp3 or all")
    return sorted(found)


@dataclass(frozen=True)
class Selection:
    engines: tuple[str, ...]
    clients: tuple[str, ...]
    protocols: tuple[int, ...]

    @classmethod
    def parse(cls, catalog: EngineCatalog, engines: str, clients: str, protocols: str) -> Selection:
        return cls(
            tuple(e.id for e in catalog.select(engines)),
            tuple(select_clients(clients)),
            tuple(parse_protocols(protocols)),
        )

    def targets(self, protocols: tuple[int, ...] = (2, 3)) -> list[Target]:
        """Every cell, restricted to the protocols a case applies to and a client speaks."""
        cells = []
        for engine, client, protocol in itertools.product(
            self.engines, self.clients, self.protocols
        ):
            if protocol in protocols and protocol in adapter_class(client).protocols:
                cells.append(Target(engine, client, protocol))
        return cells
