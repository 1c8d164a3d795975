"""The client views of the reports, from real results: a typed-API run through redis-py and
valkey-py on a Redis and a Valkey engine, rendered to Markdown and HTML."""

from __future__ import annotations

import json

import pytest

from respmatrix import cli
from respmatrix.reporting.clients import ClientTable, client_label, typed_methods
from respmatrix.reporting.html import render_html
from respmatrix.reporting.markdown import render_matrix


@pytest.fixture(scope="module")
def doc(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("typed")
    code = cli.main(
        [
            "run",
            "--engines", "redis-7.2,valkey-9.1",
            "--clients", "redis-py,valkey-py",
            "--protocols", "3",
            "--families", "hashes,strings",
            "--versioned-clients",
            "--no-install",
            "-n", "0",
            "--out", str(out),
            "--", "-k", "redis-py-h or redis-py-set",
        ]
    )  # fmt: skip
    assert code == 0
    return json.loads((out / "results.json").read_text())


def test_typed_methods_per_client_and_engine(doc: dict) -> None:
    rows = {(r.method, r.client.split("@")[0]): r.cells for r in typed_methods(doc)}
    # redis-py has hexpire(); Redis 7.2 lacks HEXPIRE, Valkey 9.1 has it.
    assert rows["hexpire", "redis-py"] == {"redis-7.2": "unsupported", "valkey-9.1": "pass"}
    # valkey-py dropped hexpire() in 6.1: the client lacks it whatever the engine.
    assert rows["hexpire", "valkey-py"] == {
        "redis-7.2": "client-unsupported",
        "valkey-9.1": "client-unsupported",
    }
    # set(ifeq=) in redis-py reaches Valkey's IFEQ; Redis 7.2 refuses the option.
    assert rows["set-ifeq", "redis-py"] == {"redis-7.2": "unsupported", "valkey-9.1": "pass"}


def test_client_rows_name_versions_and_split_client_outcomes(doc: dict) -> None:
    table = ClientTable.from_results(doc)
    assert all("@" in c for c in table.clients)
    for client in table.clients:
        assert table.labels[client] == client_label(client, doc["clients"])
        assert table.labels[client].split()[1] == doc["clients"][client]["version"]
    valkey_py = next(c for c in table.clients if c.startswith("valkey-py@"))
    cell = table.cells[valkey_py, "valkey-9.1"]
    assert cell.client["unsupported"] >= 2  # hexpire() and hgetex() at least
    assert cell.worst == "client"
    markdown = render_matrix(doc)
    assert "## Clients x engines" in markdown and "## Typed API methods by client" in markdown
    assert "⊘ client lacks it" in markdown
    page = render_html(doc)
    assert 'id="client-table"' in page and 'id="typed-table"' in page
