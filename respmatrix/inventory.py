"""What commands a running engine knows: the union of COMMAND DOCS and COMMAND LIST.

Names are upper case, subcommands as ``OBJECT ENCODING``; each maps to its COMMAND DOCS group
(module commands to ``module:<name>``). COMMAND LIST catches what COMMAND DOCS omits.
"""

from __future__ import annotations

from respmatrix.clients.resp import RespConnection


def _name(raw: str) -> str:
    return raw.upper().replace("|", " ")


def command_inventory(host: str, port: int) -> dict[str, str]:
    """Command name -> group for the server at ``host:port``."""
    with RespConnection(host, port, protocol=3) as conn:
        docs = conn.call("COMMAND", "DOCS")
        listed = conn.call("COMMAND", "LIST")
    if not isinstance(docs, dict) or not isinstance(listed, list):
        raise RuntimeError(f"{host}:{port} did not answer COMMAND DOCS / COMMAND LIST")
    found: dict[str, str] = {}
    for name, doc in docs.items():
        group = doc.get("group", "unknown")
        if group == "module":
            group = f"module:{doc.get('module', 'unknown')}"
        found[_name(name)] = group
        for sub, subdoc in (doc.get("subcommands") or {}).items():
            # A module's subcommands say only "module" (FT.DEBUG's, say): they are the parent's.
            sub_group = subdoc.get("group", group)
            found[_name(sub)] = group if sub_group == "module" else sub_group
    for name in listed:
        full = _name(name)
        if full not in found:
            parent = full.split(" ", 1)[0]
            found[full] = found.get(parent, "unknown")
    return dict(sorted(found.items()))
