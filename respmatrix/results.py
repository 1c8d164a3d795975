"""Writing outcomes as they happen, and merging them into one results file.

Each worker appends JSON lines to its own part file and flushes after every pytest item (a
case on one engine through every client mode), so a crash keeps what ran before the item it
hit. Only the controller merges parts into ``results.json`` (schema
``respmatrix/results/v1``, see ``schemas/results.schema.json``).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from functools import cache
from pathlib import Path
from typing import Any

import respmatrix
from respmatrix.datafiles import schema_path
from respmatrix.schema_check import SchemaCheck

SCHEMA_ID = "respmatrix/results/v1"
_KEY = ("case", "engine", "client", "protocol")


class ResultsFileError(ValueError):
    """A results file that cannot be read or does not follow the schema."""


class MergeConflictError(ValueError):
    """Two inputs disagree on the outcome of the same (case, engine, client, protocol)."""


class ResultsWriter:
    """Appends records to ``<parts_dir>/<worker>.jsonl``, one flushed line per record."""

    def __init__(self, parts_dir: Path, worker: str) -> None:
        parts_dir.mkdir(parents=True, exist_ok=True)
        self.path = parts_dir / f"{worker}-{os.getpid()}.jsonl"
        self._file = self.path.open("a", encoding="utf-8")

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")

    def flush(self) -> None:
        """Hand what was written to the OS: once per item, not per row (a system call costs
        about as much as a row's JSON on the VMs this runs on, and an item has up to 14 rows)."""
        self._file.flush()

    def engine(self, engine_id: str, facts: dict[str, Any]) -> None:
        self._write({"type": "engine", "id": engine_id, **facts})

    def client(self, client_id: str, package: str, version: str) -> None:
        self._write({"type": "client", "id": client_id, "package": package, "version": version})

    def case(self, case_id: str, facts: dict[str, Any]) -> None:
        self._write({"type": "case", "id": case_id, **facts})

    def divergence(self, entry: dict[str, Any]) -> None:
        self._write({"type": "divergence", **entry})

    def result(self, record: dict[str, Any]) -> None:
        # Each worker checks its own rows as it writes them (in parallel, while other workers
        # wait on servers); the merge then checks only the rest of the document.
        validate_row(record, str(self.path))
        self._write({"type": "result", **record})

    def close(self) -> None:
        self._file.close()


@contextlib.contextmanager
def _cyclic_gc_paused(freeze: bool = False) -> Iterator[None]:
    """Parse JSON with the cyclic GC paused; with ``freeze``, then move everything alive out
    of its reach (``gc.freeze()``, process-wide: for a process that holds the document until
    it exits, as ``respmatrix run`` and ``report`` do).

    Parsed JSON holds no reference cycles, yet the GC walks the growing document again and
    again as it is built (reading the whole matrix's parts, 416,010 rows: 7.3 s with it, 2.3 s
    without), and once more for each generation it passes through afterwards (0.4 s, 0.7 s).
    Frozen objects are still freed by reference counting when the document is dropped.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if enabled:
            gc.enable()


# A result row's part line is the row as results.json holds it, plus this last key ("type"
# sorts after every key a row has): the merge writes the row's text as it is, not dumped again.
_RESULT_LINE_END = ', "type": "result"}'


def read_parts(parts_dir: Path) -> dict[str, Any]:
    """Fold every part file into one results document (a torn last line is skipped)."""
    with _cyclic_gc_paused():
        return merge([_read_parts(parts_dir, {})])


def _read_parts(parts_dir: Path, row_texts: dict[int, str]) -> dict[str, Any]:
    """The parts as one document; ``row_texts`` gets each result row's JSON text, by id()."""
    doc = empty_document()
    for path in sorted(parts_dir.glob("*.jsonl")):
        # "\n" only: str.splitlines() also breaks at U+2028, U+0085..., which JSON written
        # with ensure_ascii=False leaves unescaped inside a reply, and the row would be lost
        for line in path.read_text(encoding="utf-8").split("\n"):
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a worker killed mid-write leaves at most one torn line
            kind = record.pop("type", None)
            if kind == "engine":
                doc["engines"][record.pop("id")] = record
            elif kind == "client":
                doc["clients"][record.pop("id")] = record
            elif kind == "case":
                doc["cases"][record.pop("id")] = record
            elif kind == "divergence":
                doc["divergences"][record.pop("id")] = record
            elif kind == "result":
                doc["results"].append(record)
                if line.endswith(_RESULT_LINE_END):
                    row_texts[id(record)] = line[: -len(_RESULT_LINE_END)] + "}"
    return doc


def merge_parts(out_dir: Path, *, freeze: bool = False) -> Path:
    """Fold ``<out_dir>/.parts`` into ``<out_dir>/results.json``, then remove the parts.
    ``freeze``: keep the merged document out of the cyclic GC's reach (see ``load``)."""
    parts = out_dir / ".parts"
    target = out_dir / "results.json"
    row_texts: dict[int, str] = {}
    with _cyclic_gc_paused(freeze):
        doc = merge([_read_parts(parts, row_texts)])
    write(doc, target, rows_checked=True, row_texts=row_texts)
    global _merged
    _merged = (target.resolve(), _stamp(target), doc)
    # The merged file now holds everything the parts did; if writing it had failed,
    # the parts would still be on disk.
    shutil.rmtree(parts, ignore_errors=True)
    return target


def empty_document() -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tool": {"name": "respmatrix", "version": respmatrix.__version__},
        "engines": {},
        "clients": {},
        "cases": {},
        "divergences": {},
        "results": [],
    }


def merge(docs: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Combine results documents: idempotent, order-independent, refusing conflicts."""
    merged = empty_document()
    by_key: dict[tuple[str, ...], dict[str, Any]] = {}
    for doc in docs:
        for section in ("engines", "clients", "cases", "divergences"):
            for key, value in doc.get(section, {}).items():
                known = merged[section].get(key)
                if known is not None and known != value and section in ("engines", "clients"):
                    fields = sorted(k for k in {*known, *value} if known.get(k) != value.get(k))
                    raise MergeConflictError(
                        f"{section[:-1]} {key!r} differs between inputs in: {', '.join(fields)}"
                    )
                merged[section][key] = value
        for result in doc["results"]:
            key = tuple(str(result[k]) for k in _KEY)
            known = by_key.get(key)
            if known is not None and known["outcome"] != result["outcome"]:
                raise MergeConflictError(
                    "conflicting outcomes for "
                    + " / ".join(key)
                    + f": {known['outcome']} vs {result['outcome']}"
                )
            # Same outcome, other details (timings, transcripts): keep one by a fixed rule so
            # the merge does not depend on the order of its inputs.
            if known is None or _rank(result) < _rank(known):
                by_key[key] = result
    merged["results"] = [by_key[k] for k in sorted(by_key)]
    return merged


def _rank(result: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in result.items() if k != "duration_ms"}, sort_keys=True)


@cache
def _schema() -> dict[str, Any]:
    return json.loads(schema_path("results.schema.json").read_text())


@cache
def _document_check() -> SchemaCheck:
    return SchemaCheck(_schema())


@cache
def _row_check() -> SchemaCheck:
    schema = _schema()
    return SchemaCheck({"$schema": schema["$schema"], **schema["properties"]["results"]["items"]})


def validate(doc: dict[str, Any], where: str = "results") -> None:
    """Raise :class:`ResultsFileError` if ``doc`` does not follow the results schema."""
    error = _document_check().error(doc)
    if error is not None:
        raise ResultsFileError(f"{where}: not a valid {SCHEMA_ID} file at {error}")


def validate_row(record: dict[str, Any], where: str = "results") -> None:
    """Raise :class:`ResultsFileError` if one result row does not follow the results schema."""
    error = _row_check().error(record)
    if error is not None:
        raise ResultsFileError(f"{where}: a result not valid for {SCHEMA_ID} at {error}")


# The results file this process merged last (a run renders the file it has just merged), with its
# size and mtime then and its document: read back unchanged, it is that document. Parsing and
# checking 400,000 rows again (about 10 s for the whole matrix) could not find anything new.
# Parts are read with json.loads, so the document holds only what JSON gives back.
_merged: tuple[Path, tuple[int, int], dict[str, Any]] | None = None


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def load(path: Path, *, freeze: bool = False) -> dict[str, Any]:
    """Read and validate a results file, with one clear message when it is malformed.
    ``freeze``: the caller holds the document until its process exits; move it out of the
    cyclic GC's reach (``gc.freeze()``), so later collections do not walk it again."""
    try:
        if _merged is not None and _merged[0] == path.resolve() and _merged[1] == _stamp(path):
            return _merged[2]
        text = path.read_text(encoding="utf-8")
        with _cyclic_gc_paused(freeze):
            doc = json.loads(text)
    except FileNotFoundError:
        raise ResultsFileError(f"{path}: no such results file") from None
    except OSError as exc:
        raise ResultsFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ResultsFileError(f"{path}: not JSON ({exc})") from None
    validate(doc, str(path))
    return doc


def write(
    doc: dict[str, Any],
    path: Path,
    *,
    rows_checked: bool = False,
    row_texts: dict[int, str] | None = None,
) -> None:
    """Validate and write atomically (a reader never sees half a file). ``rows_checked``: the
    result rows were validated one by one as they were written (``ResultsWriter``);
    ``row_texts``: rows' JSON text as written then, by id() of the row."""
    validate({**doc, "results": []} if rows_checked else doc, str(path))
    if path.is_dir():
        raise ResultsFileError(f"{path}: is a folder; give the results file's path")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    # One result per line: compact enough for tens of thousands of results, still diffable.
    body = {k: v for k, v in doc.items() if k != "results"}
    text = json.dumps(body, indent=1, ensure_ascii=False)[:-2]
    texts = row_texts or {}
    lines = ",\n".join(
        texts.get(id(r)) or json.dumps(r, ensure_ascii=False, sort_keys=True)
        for r in doc["results"]
    )
    try:
        tmp.write_text(f'{text},\n "results": [\n{lines}\n ]\n}}\n', encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
