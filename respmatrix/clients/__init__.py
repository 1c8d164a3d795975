"""Client adapters: one per client mode, all returning the plain values of ``replies``.

Adapters are looked up by id and imported only when used, so loading the pytest plugin does not
import every client library.
"""

from __future__ import annotations

from importlib import import_module

from respmatrix.clients.base import ClientAdapter, Endpoint

# client id -> "module:Class".
ADAPTERS: dict[str, str] = {
    "raw": "respmatrix.clients.raw:RawClient",
    "redis-py": "respmatrix.clients.redispy:RedisPyClient",
    "valkey-py": "respmatrix.clients.redispy:ValkeyPyClient",
    "redis-py-async": "respmatrix.clients.redispy:RedisPyAsyncClient",
    "valkey-py-async": "respmatrix.clients.redispy:ValkeyPyAsyncClient",
    "valkey-glide": "respmatrix.clients.glide:GlideAsyncClient",
    "valkey-glide-sync": "respmatrix.clients.glide:GlideSyncClient",
}


class UnknownClientError(LookupError):
    """A client id that no adapter provides."""


def adapter_class(client_id: str) -> type[ClientAdapter]:
    """Return the adapter class for ``client_id`` (e.g. ``redis-py``)."""
    try:
        module, _, name = ADAPTERS[client_id].partition(":")
    except KeyError:
        raise UnknownClientError(
            f"unknown client {client_id!r}; known clients: {', '.join(ADAPTERS)}"
        ) from None
    return getattr(import_module(module), name)


def select_clients(selector: str) -> list[str]:
    """Resolve ``all`` or a comma list of client ids, in adapter order."""
    words = {w.strip() for w in selector.split(",") if w.strip()}
    if "all" in words:
        return list(ADAPTERS)
    for word in words - ADAPTERS.keys():
        adapter_class(word)  # raises UnknownClientError naming the known ids
    return [c for c in ADAPTERS if c in words]


__all__ = ["ADAPTERS", "ClientAdapter", "Endpoint", "UnknownClientError", "adapter_class"]
