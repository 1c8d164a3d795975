"""The results contract: writer, merge (idempotent, order-independent, conflicts), schema."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from respmatrix import results


def result(case: str, engine: str, outcome: str = "pass") -> dict:
    return {
        "case": case,
        "family": case.split("/")[0],
        "features": ["f"],
        "engine": engine,
        "client": "raw",
        "protocol": "resp2",
        "outcome": outcome,
        "divergence": None,
        "detail": {},
    }


def break_first_outcome(path: Path) -> None:
    """Change a results file on disk so that its first row breaks the schema."""
    broken = json.loads(path.read_text())
    broken["results"][0]["outcome"] = "maybe"
    path.write_text(json.dumps(broken))


def doc(*items: dict) -> dict:
    d = results.empty_document()
    d["engines"] = {
        "valkey-9.1": {"line": "valkey", "version": "9.1.2", "build": "x", "provider": "binary"}
    }
    d["results"] = list(items)
    return d


def test_merge_is_idempotent_and_order_independent() -> None:
    shards = [
        doc(result("a/x", "valkey-9.1")),
        doc(result("a/y", "valkey-9.1")),
        doc(result("a/x", "valkey-9.1")),
    ]
    once = results.merge(shards)
    shuffled = shards[:]
    random.Random(4).shuffle(shuffled)
    assert once["results"] == results.merge(shuffled)["results"]
    assert results.merge([once, once])["results"] == once["results"]
    assert [r["case"] for r in once["results"]] == ["a/x", "a/y"]


def test_merge_refuses_conflicting_duplicates() -> None:
    with pytest.raises(results.MergeConflictError, match=r"a/x / valkey-9.1 / raw / resp2"):
        results.merge([doc(result("a/x", "valkey-9.1")), doc(result("a/x", "valkey-9.1", "fail"))])


def test_writer_streams_and_a_torn_line_is_skipped(tmp_path: Path) -> None:
    writer = results.ResultsWriter(tmp_path, "gw0")
    writer.engine(
        "valkey-9.1", {"line": "valkey", "version": "9.1.2", "build": "b", "provider": "binary"}
    )
    writer.result(result("a/x", "valkey-9.1"))
    writer.flush()  # the plugin flushes after each item
    # the line is on disk before close: a crash keeps it
    assert '"a/x"' in writer.path.read_text()
    with writer.path.open("a") as fh:
        fh.write('{"type": "result", "case": "a/torn')  # a worker killed mid-write
    merged = results.read_parts(tmp_path)
    results.validate(merged)
    assert [r["case"] for r in merged["results"]] == ["a/x"]


def test_rows_are_checked_as_workers_write_them_and_the_merge_checks_the_rest(
    tmp_path: Path,
) -> None:
    writer = results.ResultsWriter(tmp_path / ".parts", "gw0")
    bad = {**result("a/x", "valkey-9.1"), "outcome": "maybe"}
    with pytest.raises(results.ResultsFileError, match=r"a result not valid .* at outcome"):
        writer.result(bad)
    assert "maybe" not in writer.path.read_text(), "a bad row is never written"
    writer.result(result("a/x", "valkey-9.1"))
    # an engine record the schema refuses is caught by the merge, which checks all but the rows
    writer.engine(
        "valkey-9.1", {"line": "keydb", "version": "9.1.2", "build": "b", "provider": "binary"}
    )
    writer.close()
    with pytest.raises(results.ResultsFileError, match=r"engines/valkey-9.1/line"):
        results.merge_parts(tmp_path)
    assert (tmp_path / ".parts").exists(), "nothing is lost when the merge refuses"


def test_malformed_files_give_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(results.ResultsFileError, match=r"not JSON"):
        results.load(bad)
    bad.write_text(json.dumps({"schema": "respmatrix/results/v1", "results": []}))
    with pytest.raises(results.ResultsFileError, match=r"not a valid respmatrix/results/v1"):
        results.load(bad)
    with pytest.raises(results.ResultsFileError, match=r"no such results file"):
        results.load(tmp_path / "missing.json")


def test_a_file_changed_after_this_process_wrote_it_is_validated_again(tmp_path: Path) -> None:
    """Loading the file a run has just written skips the second validation; any later change
    to the file (other size or mtime) is validated like a stranger's file."""
    path = tmp_path / "results.json"
    results.write(doc(result("strings/a", "valkey-9.1")), path)
    assert results.load(path)["results"][0]["case"] == "strings/a"
    break_first_outcome(path)
    with pytest.raises(results.ResultsFileError, match=r"not a valid .* at results/0/outcome"):
        results.load(path)


def test_a_run_renders_the_document_it_merged_until_the_file_changes(tmp_path: Path) -> None:
    writer = results.ResultsWriter(tmp_path / ".parts", "gw0")
    writer.result(result("a/x", "valkey-9.1"))
    writer.close()
    target = results.merge_parts(tmp_path)
    merged = results.load(target)
    assert results.load(target) is merged, "the merged document is not parsed again"
    # Changed on disk after the merge: read and checked again, not the held document.
    break_first_outcome(target)
    with pytest.raises(results.ResultsFileError, match=r"at results/0/outcome"):
        results.load(target)


def test_merged_rows_are_written_as_a_fresh_write_would_write_them(tmp_path: Path) -> None:
    """The merge copies each row's text from its part line instead of dumping the row again:
    the file must be byte for byte what writing the merged document afresh gives."""
    writer = results.ResultsWriter(tmp_path / ".parts", "gw0")
    writer.engine(
        "valkey-9.1", {"line": "valkey", "version": "9.1.2", "build": "b", "provider": "binary"}
    )
    # U+2028 and U+0085 stay unescaped in the part line; str.splitlines() would break there
    reply = {"z": "line\u2028separator\x85next", "a": [None, 2.5]}
    detail = {"transcript": [{"send": ["SET", "k", "é"], "reply": reply}]}
    rows = [
        {**result("b/y", "valkey-9.1", "fail"), "detail": {**detail, "message": "ünïcode"}},
        {**result("a/x", "valkey-9.1"), "duration_ms": 1.25},
    ]
    for row in rows:
        writer.result(row)
    writer.close()
    texts: dict[int, str] = {}
    read = results._read_parts(tmp_path / ".parts", texts)
    assert all(id(r) in texts for r in read["results"]), "every row's text is taken from its line"
    target = results.merge_parts(tmp_path)
    merged = json.loads(target.read_text(encoding="utf-8"))
    assert [r["case"] for r in merged["results"]] == ["a/x", "b/y"]
    assert merged["results"][1]["detail"]["transcript"][0]["reply"] == reply
    again = tmp_path / "again.json"
    results.write(merged, again)
    assert target.read_bytes() == again.read_bytes()
