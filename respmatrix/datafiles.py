"""Where the project's data folders (engines/, suites/) live.

In a checkout they sit beside the package; in an installed wheel they are shipped inside it as
``respmatrix/_data`` (see the force-include in pyproject.toml).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from respmatrix.schema_check import SchemaCheck

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder ``name`` (``engines`` or ``suites``), from a checkout or a wheel."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"respmatrix data folder {name!r} not found beside {_PACKAGE}")


class DataFileError(ValueError):
    """A data file (catalog, registry, case) that is not valid YAML or breaks its schema."""


def load_validated(path: Path, schema_name: str, what: str, loader: Any = None) -> Any:
    """Read a YAML data file and validate it against one of the shipped schemas."""
    import yaml

    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader or FastSafeLoader())
    except (OSError, yaml.YAMLError) as exc:
        raise DataFileError(f"{path}: cannot read {what}: {exc}") from None
    error = schema_check(schema_name).error(raw)
    if error is not None:
        raise DataFileError(f"{path}: invalid {what} at {error}")
    return raw


def FastSafeLoader() -> Any:
    """libyaml's safe loader when PyYAML was built with it (about ten times faster)."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def schema_check(name: str) -> SchemaCheck:
    """The compiled check of a shipped YAML schema, built once per process: every xdist worker
    loads all 3,010 cases, and jsonschema took about 8 s of each worker's start to check them."""
    import yaml

    from respmatrix.schema_check import SchemaCheck

    return SchemaCheck(yaml.safe_load(schema_path(name).read_text(encoding="utf-8")))


def schema_path(name: str) -> Path:
    """Return the path of a JSON Schema shipped in ``respmatrix/schemas``."""
    return _PACKAGE / "schemas" / name
