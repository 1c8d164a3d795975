"""Where the project's data folders (engines/, suites/) live.

In a checkout they sit beside the package; in an installed wheel they are shipped inside it as
``respmatrix/_data`` (see the force-include in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder ``name`` (``engines`` or ``suites``), from a checkout or a wheel."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"respmatrix data folder {name!r} not found beside {_PACKAGE}")


def schema_path(name: str) -> Path:
    """Return the path of a JSON Schema shipped in ``respmatrix/schemas``."""
    return _PACKAGE / "schemas" / name
