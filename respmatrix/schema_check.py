"""A JSON Schema compiled to Python for speed, with jsonschema's wording when something fails.

A full run writes about 400,000 result rows, and each worker checks every row it writes.
jsonschema interprets the schema on every call (about 60 us per row, a seventh of a worker's
Python time in an all-clients run); fastjsonschema compiles it once into plain Python (about
3 us). jsonschema stays the reference: when the compiled check refuses an instance, jsonschema
finds the error to report, so messages read the same whichever path caught them.

Formats are annotations here, as in jsonschema without a format checker: the compiled check
does not enforce them either, so the two never disagree on a ``date-time``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema
import jsonschema


class SchemaCheck:
    """``error(instance)``: None when ``instance`` follows ``schema``, else where and what."""

    def __init__(self, schema: dict[str, Any]) -> None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        self._reference = cls(schema)
        # fastjsonschema knows drafts 4, 6 and 7; the keywords our schemas use mean the same
        # there as in 2020-12 (tests/test_schema_check.py holds the two to the same answers).
        # use_default=False: never fill a schema's defaults into the instance being checked.
        draft7 = {k: v for k, v in schema.items() if k != "$schema"}
        self._compiled: Callable[[Any], Any] = fastjsonschema.compile(
            draft7, use_default=False, use_formats=False
        )

    def error(self, instance: Any) -> str | None:
        try:
            self._compiled(instance)
        except fastjsonschema.JsonSchemaException as exc:
            found = jsonschema.exceptions.best_match(self._reference.iter_errors(instance))
            if found is None:
                # The two disagree (fastjsonschema reads `$` in a pattern as the end of the
                # string; Python's re, under jsonschema, also before a final newline): still
                # refuse, where and in the words of the compiled check.
                where = "/".join(str(p) for p in (exc.path or ["data"])[1:]) or "/"
                return f"{where}: {exc.message}"
            where = "/".join(str(p) for p in found.absolute_path) or "/"
            return f"{where}: {found.message}"
        return None
