"""Coverage measured from the engines themselves: every command (and subcommand) that any of
the eight engines lists in a family's COMMAND DOCS group is sent by at least one case of that
family, unless ``suites/exclusions.yaml`` leaves it out with a reason.
"""

from __future__ import annotations

import pytest
import yaml

from respmatrix.cases import discover_cases
from respmatrix.catalog import EngineCatalog
from respmatrix.clients.resp import RespConnection
from respmatrix.datafiles import data_dir
from respmatrix.launcher import EngineProcess
from tests.conftest import require_installed

pytestmark = pytest.mark.engines

# suite family -> COMMAND DOCS group
FAMILY_GROUPS = {"strings": "string", "keyspace": "generic"}


@pytest.fixture(scope="module")
def inventory(catalog: EngineCatalog, store) -> dict[str, set[str]]:
    """group -> {"GET", "OBJECT ENCODING", ...}, the union over every engine of the catalog."""
    found: dict[str, set[str]] = {}
    for spec in catalog:
        require_installed(store, spec)
        with EngineProcess(spec, store.server_path(spec), store.server_env(spec)) as process:
            docs = RespConnection(process.host, process.port, protocol=3).call("COMMAND", "DOCS")
        for name, doc in docs.items():
            group = doc.get("group")
            found.setdefault(group, set()).add(name.upper())
            for sub, subdoc in (doc.get("subcommands") or {}).items():
                found.setdefault(subdoc.get("group", group), set()).add(
                    sub.upper().replace("|", " ")
                )
    return found


def sent_commands(family: str) -> set[str]:
    sent = set()
    for case in discover_cases(data_dir("suites"), {family}):
        for step in case.steps:
            if step.send:
                words = [str(a).upper() for a in step.send[:2]]
                sent.add(words[0])
                sent.add(" ".join(words))
        for command in case.cleanup:
            sent.add(str(command[0]).upper())
    return sent


def exclusions() -> dict[str, str]:
    path = data_dir("suites") / "exclusions.yaml"
    raw = yaml.safe_load(path.read_text()) if path.exists() else {}
    return {item["command"]: item["reason"] for item in (raw or {}).get("exclusions", [])}


@pytest.mark.parametrize("family", sorted(FAMILY_GROUPS))
def test_every_command_of_the_family_has_a_case(family: str, inventory) -> None:
    group = FAMILY_GROUPS[family]
    assert inventory.get(group), f"no engine lists a {group!r} group"
    missing = sorted(inventory[group] - sent_commands(family) - exclusions().keys())
    assert missing == [], f"{family}: commands of group {group!r} without a case: {missing}"


def test_exclusions_have_reasons() -> None:
    for command, reason in exclusions().items():
        assert len(reason) > 15, f"{command}: say why it is left out"
