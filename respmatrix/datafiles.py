"""Where the project's data folders (engines/, suites/) live.

In a checkout they sit beside the package; in an installed wheel they are shipped inside it as
``respmatrix/_data`` (see the force-include in pyproject.toml).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

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
    import jsonschema
    import yaml

    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader or FastSafeLoader())
    except (OSError, yaml.YAMLError) as exc:
        raise DataFileError(f"{path}: cannot read {what}: {exc}") from None
    error = jsonschema.exceptions.best_match(_validator(schema_name).iter_errors(raw))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "/"
        raise DataFileError(f"{path}: invalid {what} at {where}: {error.message}")
    return raw


def FastSafeLoader() -> Any:
    """libyaml's safe loader when PyYAML was built with it (about ten times faster)."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@cache
def _validator(name: str) -> Any:
    # Checking the schema itself once, not on every file, keeps loading 2000 cases fast.
    import jsonschema
    import yaml

    schema = yaml.safe_load(schema_path(name).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_path(name: str) -> Path:
    """Return the path of a JSON Schema shipped in ``respmatrix/schemas``."""
    return _PACKAGE / "schemas" / name
