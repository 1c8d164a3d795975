"""Differential fuzzing (``respmatrix fuzz``): the normaliser, the script quoting, the
classification against the registry, and bounded runs on real engines.

The engine tests take about a minute on two cores: the same seed gives the same scripts; a
bounded run over four engines of both lines writes a schema-valid results file whose every
unexplained difference replays through the raw client; with the registry emptied, differences
are reported with a script that reproduces them; and two servers of the same version never
disagree (the normalisation hides ordering, cursors, randomness and timing, nothing else).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from respmatrix import results
from respmatrix.catalog import EngineCatalog
from respmatrix.cli import main
from respmatrix.clients.resp import RespConnection
from respmatrix.datafiles import load_validated
from respmatrix.fuzz.classify import classify
from respmatrix.fuzz.emit import emit_case
from respmatrix.fuzz.features import error_features, features_of
from respmatrix.fuzz.lockstep import Engine, Finding, Lockstep, UnexplainedDifference
from respmatrix.fuzz.normalise import normalise
from respmatrix.fuzz.results import results_document
from respmatrix.fuzz.runner import FuzzConfig, plan, run_fuzz
from respmatrix.fuzz.script import format_command, parse_script, quote_arg, split_line
from respmatrix.pool import EnginePool
from respmatrix.registry import Divergence, DivergenceRegistry, VersionRange
from respmatrix.replies import RespError, SetReply

BOTH_LINES = ["redis-7.2", "redis-8.2", "valkey-8.0", "valkey-9.1"]

# -- script quoting -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "quoted"),
    [
        ("k1", "k1"),
        ("", '""'),
        ("a b", '"a b"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("it's", '"it\'s"'),
        ("back\\slash", '"back\\\\slash"'),
        ("line\nbreak", '"line\\nbreak"'),
        (b"\x00\xff", '"\\x00\\xff"'),
        ("ñ", '"\\xc3\\xb1"'),
        ("{k}3", "{k}3"),
        (-9223372036854775808, "-9223372036854775808"),
    ],
)
def test_arguments_are_quoted_as_the_cli_splits_them(arg: object, quoted: str) -> None:
    assert quote_arg(arg) == quoted
    data = arg if isinstance(arg, bytes) else str(arg).encode()
    assert split_line(quoted) == [data]


def test_a_script_round_trips_through_the_cli_splitter() -> None:
    commands = [["SET", "k", b"\x00a b\"'\\\r\n\t\x7f"], ["EVAL", "return {1,'x'}", "0"],
                ["HSET", "日本", "", "😀"]]  # fmt: skip
    text = "".join(format_command(c) + "\n" for c in commands)
    assert len(text.splitlines()) == 3  # one command per line, whatever the bytes
    assert parse_script(text) == [[a if isinstance(a, bytes) else a.encode() for a in c]
                                  for c in commands]  # fmt: skip


# -- normalisation ----------------------------------------------------------------------------


def test_only_undefined_order_is_normalised() -> None:
    assert normalise(["SMEMBERS", "s"], ["b", "a"]) == normalise(["SMEMBERS", "s"], ["a", "b"])
    assert normalise(["SMEMBERS", "s"], SetReply(["b", "a"])) == {"set": ["a", "b"]}
    # an array and a RESP3 set are not the same reply shape
    assert normalise(["SMEMBERS", "s"], ["a"]) != normalise(["SMEMBERS", "s"], SetReply(["a"]))
    assert normalise(["HGETALL", "h"], ["f", "1", "g", "2"]) == normalise(
        ["HGETALL", "h"], ["g", "2", "f", "1"]
    )
    assert normalise(["HGETALL", "h"], {"f": "1"}) == normalise(["HGETALL", "h"], {"f": "1"})
    # ordered replies stay ordered
    assert normalise(["LRANGE", "l", "0", "-1"], ["b", "a"]) != normalise(
        ["LRANGE", "l", "0", "-1"], ["a", "b"]
    )
    assert normalise(["HMGET", "h", "a", "b"], ["1", None]) == ["1", None]


def test_sort_is_compared_in_order_unless_it_does_not_sort() -> None:
    # equal scores are ordered by their bytes on every engine: the order is part of the reply
    for args in (["SORT", "l"], ["SORT", "l", "ALPHA"], ["SORT_RO", "l", "LIMIT", "0", "2"]):
        assert normalise(args, ["1", "01"]) != normalise(args, ["01", "1"])
    # BY a constant pattern does not sort: a set comes in hash-table order, a list in its own
    nosort = ["SORT", "s", "BY", "nosort", "ALPHA"]
    assert normalise(nosort, ["a", "b"], "set") == normalise(nosort, ["b", "a"], "set")
    assert normalise(nosort, ["a", "b"], "list") != normalise(nosort, ["b", "a"], "list")


def test_scan_cursors_random_picks_and_timings_keep_their_shape() -> None:
    assert normalise(["SCAN", "0"], ["17", ["b", "a"]]) == normalise(
        ["SCAN", "0"], ["9", ["a", "b"]]
    )
    assert normalise(["SCAN", "0"], ["0", ["a"]]) != normalise(["SCAN", "0"], ["5", ["a"]])
    assert normalise(["HSCAN", "h", "0"], ["0", ["f", "1", "g", "2"]]) == normalise(
        ["HSCAN", "h", "0"], ["0", ["g", "2", "f", "1"]]
    )
    assert normalise(["SRANDMEMBER", "s", "2"], ["a", "b"]) == normalise(
        ["SRANDMEMBER", "s", "2"], ["c", "a"]
    )
    assert normalise(["SRANDMEMBER", "s", "2"], ["a"]) != normalise(
        ["SRANDMEMBER", "s", "2"], ["c", "a"]
    )
    assert normalise(["TTL", "k"], 3599) == normalise(["TTL", "k"], 3600) == "positive"
    assert normalise(["TTL", "k"], -1) == -1 != normalise(["TTL", "k"], -2)
    assert normalise(["XINFO", "CONSUMERS", "s", "g"], [["name", "c", "idle", 5]]) == normalise(
        ["XINFO", "CONSUMERS", "s", "g"], [["name", "c", "idle", 9]]
    )


def test_doubles_compare_by_value_errors_by_full_text() -> None:
    assert normalise(["ZSCORE", "z", "m"], "0.10000000000000001") == normalise(
        ["ZSCORE", "z", "m"], 0.1
    )
    assert normalise(["ZSCORE", "z", "m"], "1.5") != normalise(["ZSCORE", "z", "m"], "1.25")
    # a stored string is not a double: its text is the value
    assert normalise(["GET", "k"], "0.10000000000000001") != normalise(["GET", "k"], "0.1")
    a, b = RespError("ERR syntax error"), RespError("ERR Syntax error")
    assert normalise(["SET", "k"], a) != normalise(["SET", "k"], b)


# -- classification ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def specs() -> dict[str, object]:
    catalog = EngineCatalog.load()
    return {e: catalog.get(e) for e in BOTH_LINES}


def _entry(kind: str, feature: str, ranges: dict[str, object]) -> Divergence:
    return Divergence(
        id=f"{feature}-entry", kind=kind, features=(feature,),
        ranges={line: VersionRange.parse(r) for line, r in ranges.items()},
        note="test", source="https://valkey.io/", reply={"error_match": "^ERR unknown command"},
    )  # fmt: skip


def test_a_difference_is_explained_only_along_the_registry_lines(specs: dict) -> None:
    registry = DivergenceRegistry([_entry("divergent", "x-feature", {"valkey": {"added": "9.0"}})])
    split = {"redis-7.2": 1, "redis-8.2": 1, "valkey-8.0": 1, "valkey-9.1": 2}
    verdict = classify({"x-feature"}, specs, split, registry)
    assert verdict.kind == "explained"
    assert verdict.explained == {"valkey-9.1": ("divergent", "x-feature-entry")}
    # the same split with another feature, or along another line, is a failure
    assert classify({"other"}, specs, split, registry).kind == "fail"
    other = {"redis-7.2": 1, "redis-8.2": 2, "valkey-8.0": 1, "valkey-9.1": 2}
    assert classify({"x-feature"}, specs, other, registry).kind == "fail"
    same = dict.fromkeys(split, 1)
    assert classify({"other"}, specs, same, registry).kind == "same"


def test_the_entry_named_is_the_one_whose_split_matches_the_replies(specs: dict) -> None:
    # two entries apply to valkey-9.1; only one predicts the split seen (alphabetical order
    # would name the other)
    narrow = Divergence(
        id="a-narrow", kind="divergent", features=("x-feature",),
        ranges={"valkey": VersionRange.parse({"added": "9.0"})}, note="test",
        source="https://valkey.io/",
    )  # fmt: skip
    wide = _entry("divergent", "x-feature", {"valkey": {"added": "8.0"}})
    registry = DivergenceRegistry([narrow, wide])
    split = {"redis-7.2": 1, "redis-8.2": 1, "valkey-8.0": 2, "valkey-9.1": 2}
    verdict = classify({"x-feature"}, specs, split, registry)
    assert verdict.kind == "explained"
    assert verdict.explained == {
        "valkey-8.0": ("divergent", "x-feature-entry"),
        "valkey-9.1": ("divergent", "x-feature-entry"),
    }
    only_new = {"redis-7.2": 1, "redis-8.2": 1, "valkey-8.0": 3, "valkey-9.1": 2}
    verdict = classify({"x-feature"}, specs, only_new, registry)
    assert verdict.explained["valkey-9.1"] == ("divergent", "a-narrow")


def test_an_unsupported_feature_is_expected_to_be_refused(specs: dict) -> None:
    registry = DivergenceRegistry(
        [_entry("unsupported", "newcmd", {"redis": False, "valkey": {"added": "9.0"}})]
    )
    refused = {"error": "ERR unknown command 'NEWCMD'"}
    replies = {"redis-7.2": refused, "redis-8.2": refused, "valkey-8.0": refused, "valkey-9.1": 1}
    verdict = classify({"newcmd"}, specs, replies, registry)
    assert verdict.kind == "explained"
    assert set(verdict.explained) == {"redis-7.2", "redis-8.2", "valkey-8.0"}
    assert {o for o, _ in verdict.explained.values()} == {"unsupported"}


def test_features_follow_option_words_and_registry_value_conditions() -> None:
    assert {"set", "set-ifeq"} <= features_of(["SET", "k", "v", "IFEQ", "x"])
    assert "set-k" not in features_of(["SET", "k", "v"])  # key names are no options
    assert "hfe-negative-expire" in features_of(["HEXPIRE", "h", "-1", "FIELDS", "1", "f"])
    assert "hfe-numfields-mismatch" in features_of(["HEXPIRE", "h", "10", "FIELDS", "2", "f"])
    assert "hfe-numfields-mismatch" not in features_of(["HEXPIRE", "h", "10", "FIELDS", "1", "f"])
    assert "string-embstr-limit" in features_of(["OBJECT", "ENCODING", "k"], "string")
    assert "string-embstr-limit" not in features_of(["OBJECT", "ENCODING", "k"], "list")
    assert "scan-negative-cursor" in features_of(["SCAN", "-1"])
    # the fuzzer's own findings, once registered, are tagged so that a rerun explains them
    version_0 = "\x00" * 12
    assert "restore-rdb0-payload" in features_of(["RESTORE", "k", "0", version_0])
    assert "restore-rdb0-payload" not in features_of(
        ["RESTORE", "k", "0", "\x00\x0b\x00" + "\x00" * 8]
    )
    assert "getex-missing-key-arg-check" in features_of(["GETEX", "k", "PX", "-1"], "none")
    assert "getex-missing-key-arg-check" not in features_of(["GETEX", "k", "PX", "-1"], "string")
    assert "hexpire-wrongtype-arg-check" in features_of(["HEXPIRE", "k", "x"], "list")
    assert "hexpire-wrongtype-arg-check" not in features_of(["HEXPIRE", "k", "x"], "hash")
    # an unknown key type (inside MULTI) may be any: the state-dependent tags are all there
    assert "getex-missing-key-arg-check" in features_of(["GETEX", "k", "PX", "-1"])
    assert "bitcount-wrongtype-arg-check" in features_of(["BITCOUNT", "k", "x"], "set")
    assert "bitcount-wrongtype-arg-check" not in features_of(["BITCOUNT", "k", "x"], "string")
    assert "sort-empty-string-score" in features_of(["SORT", "k"], "list", True)
    assert "sort-empty-string-score" not in features_of(["SORT", "k"], "list", False)
    assert "sort-empty-string-score" not in features_of(["SORT", "k", "ALPHA"], "list", True)
    assert "hgetex-missing-fields-arity" in features_of(["HGETEX", "h", "EX", "10", "f"])
    assert "hgetex-missing-fields-arity" not in features_of(
        ["HGETEX", "h", "EX", "10", "FIELDS", "1", "f"]
    )


def test_tags_are_as_narrow_as_the_registry_entries() -> None:
    past = "set-past-expire-stored"
    assert past in features_of(["SET", "k", "v", "EXAT", "1"])
    assert past in features_of(["SET", "k", "v", "PXAT", "1000", "GET"])
    for options in (["EX", "3600"], ["PX", "10"], ["EXAT", "4102444800"], ["EX", "0"], ["EX"],
                    ["EXAT", "x"], []):  # fmt: skip
        assert past not in features_of(["SET", "k", "v", *options]), options
    assert past not in features_of(["SET", "k", "EXAT", "v"])  # a value, not an option
    assert "dump-payload-format" not in features_of(["DUMP", "k"], "none")
    assert "dump-payload-format" in features_of(["DUMP", "k"], "list")
    # register_function's error text: only when every engine refused a library using it
    load = ["FUNCTION", "LOAD", "#!lua name=l\nredis.register_function('f', 1)"]
    assert "lua-register-function-error" not in features_of(load)
    assert "lua-register-function-error" in error_features(load, False)
    assert "lua-register-function-error" not in error_features(["FUNCTION", "LOAD", "x"], False)


def test_the_plan_is_fixed_by_the_configuration() -> None:
    config = FuzzConfig(["strings", "lists"], protocols=[2, 3], examples=25)
    order = plan(config)
    assert order[:4] == [("strings", 2, 0, 10), ("strings", 3, 0, 10), ("lists", 2, 0, 10),
                         ("lists", 3, 0, 10)]  # fmt: skip
    assert sum(size for *_, size in order) == 25 * 4


# -- real engines -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[EnginePool]:
    pool = EnginePool(EngineCatalog.load())
    yield pool
    pool.close()


def engines_of(pool: EnginePool, ids: list[str], suffix: str = "") -> list[Engine]:
    found = []
    for engine_id in ids:
        running = pool.engine(engine_id)
        endpoint = running.endpoint
        found.append(Engine(engine_id + suffix, running.spec, endpoint.host, endpoint.port))
    return found


def replay_last(engine: Engine, finding: Finding) -> object:
    """Run a finding's script through a fresh raw connection; the last reply, normalised."""
    commands = parse_script(finding.script)
    with RespConnection(engine.host, engine.port) as conn:
        replies = [conn.call(*command) for command in commands]
        conn.call("FUNCTION", "FLUSH")
    return normalise(commands[-1], replies[-1])


@pytest.mark.engines
def test_the_same_seed_gives_the_same_scripts(pool: EnginePool) -> None:
    engines = engines_of(pool, ["redis-7.2", "valkey-9.1"])
    registry = DivergenceRegistry.load()

    def digests(seed: int) -> list[str]:
        config = FuzzConfig(["lists", "sets", "sorted-sets"], seed=seed, examples=10)
        return run_fuzz(engines, registry, config).lockstep.example_digests

    first = digests(7)
    assert len(first) >= 30
    assert digests(7) == first
    assert digests(8) != first


REGISTERED_FINDINGS = [
    # (family, setup, command, {engine: registry entry}) found by the fuzzer, registered by hand
    ("strings", [], ["GETEX", "k1", "PX", "-5"], {"valkey-9.1": "getex-arg-check-before-lookup"}),
    ("transactions", [["MULTI"], ["GETEX", "k2", "EX", "0"]], ["EXEC"],
     {"valkey-9.1": "getex-arg-check-before-lookup"}),
    ("bitmaps", [["SADD", "k1", "1"]], ["BITCOUNT", "k1", "x", "1"],
     {"redis-7.2": "bitmap-missing-key-skips-arg-check"}),
    ("bitmaps", [["ZADD", "k2", "17.5", "x"]], ["BITPOS", "k2", "0", "x"],
     {"redis-7.2": "bitmap-missing-key-skips-arg-check"}),
    ("keyspace", [["RPUSH", "k2", "", ""]], ["SORT", "k2"],
     {"valkey-9.1": "valkey-ffc-float-parser"}),
    ("hashes", [["ZADD", "k1", "0", "a"]], ["HEXPIRE", "k1", "abc", "FIELDS", "1", "f1"],
     {"valkey-9.1": "hexpire-args-before-type-valkey", "redis-7.2": "hexpire-hash-field-ttl"}),
    # Valkey aborts on the nested MULTI: that entry, not the GETEX one (alphabetically first)
    ("transactions", [["MULTI"], ["GETEX", "k2", "EX", "0"], ["MULTI"], ["SET", "k1", "2", "EX"]],
     ["EXEC"], {"valkey-9.1": "valkey-no-multi-aborts-transaction"}),
]  # fmt: skip


@pytest.mark.engines
def test_registered_findings_are_explained_from_the_engines_state(pool: EnginePool) -> None:
    # Through Lockstep.send: the key's type and content come from the engines, as in a run.
    engines = engines_of(pool, ["redis-7.2", "redis-7.4", "valkey-9.1"])
    lockstep = Lockstep(engines, DivergenceRegistry.load())
    try:
        for family, setup, command, expected in REGISTERED_FINDINGS:
            lockstep.begin(family, 2)
            for step in setup:
                lockstep.send(step)
            verdict = lockstep.send(command)
            lockstep.end()
            assert verdict.kind == "explained", (command, verdict.replies)
            named = {label: entry for label, (_, entry) in verdict.explained.items()}
            assert named == expected, (command, verdict.replies)
    finally:
        lockstep.close()


@pytest.mark.engines
def test_after_an_explained_transaction_the_engines_agree_again(pool: EnginePool) -> None:
    # Valkey aborts the transaction (nested MULTI, registered) where Redis runs it and swaps
    # k2 into database 1: the resync must undo that, not only delete k2 in database 0.
    engines = engines_of(pool, ["redis-7.2", "valkey-9.1"])
    lockstep = Lockstep(engines, DivergenceRegistry.load())
    try:
        lockstep.begin("transactions", 2)
        verdicts = []
        for command in (["MULTI"], ["SETNX", "k2", ""], ["SWAPDB", "0", "1"], ["MULTI"],
                        ["EXEC"], ["SELECT", "1"], ["GET", "k2"], ["SELECT", "0"],
                        ["GET", "k2"]):  # fmt: skip
            try:
                verdicts.append(lockstep.send(command))
            except UnexplainedDifference as exc:
                pytest.fail(f"{command}: {exc}")
        assert verdicts[4].kind == "explained"
        assert [v.kind for v in verdicts[5:]] == ["same"] * 4
        script = lockstep.example.commands
        lockstep.end()
        # the resync is part of the script, so a replay sees the same states
        assert script[6:8] == [["FLUSHALL"], ["SELECT", "0"]]
        assert [v.kind for v in lockstep.replay("transactions", 2, script)][5:] == ["same"] * 6
    finally:
        lockstep.close()


@pytest.mark.engines
def test_the_same_seed_and_database_give_the_same_run(pool: EnginePool, tmp_path: Path) -> None:
    engines = engines_of(pool, ["redis-7.2", "valkey-9.1"])
    empty = DivergenceRegistry([])  # every Valkey-only option becomes a finding to save
    saved = tmp_path / "saved"
    config = FuzzConfig(["strings"], protocols=[2], seed=1, examples=10, database_dir=saved)
    assert run_fuzz(engines, empty, config).lockstep.findings
    assert any(saved.rglob("*")), "failing examples are saved for the next run"

    def run(database: Path | None, protocols: list[int]) -> tuple[list, list, list]:
        if database is not None:
            shutil.copytree(saved, database)  # the same database state for every run
        config = FuzzConfig(["strings"], protocols=protocols, seed=5, examples=10,
                            database_dir=database)  # fmt: skip
        lockstep = run_fuzz(engines, empty, config).lockstep
        findings = sorted((s, f.script) for s, f in lockstep.findings.items())
        return lockstep.replay_digests, lockstep.example_digests, findings

    first = run(tmp_path / "a", [2])
    assert first[0], "the database's examples are replayed"
    assert run(tmp_path / "b", [2]) == first
    # the seed alone decides what is generated: the replays do not change it
    assert run(None, [2])[1] == first[1]
    # RESP3 has its own examples: the RESP2 ones are not replayed there
    assert run(tmp_path / "c", [3])[0] == []
    # a database with nothing saved replays nothing, and that is no harness error
    config = FuzzConfig(["strings"], protocols=[3], seed=5, examples=5,
                        database_dir=tmp_path / "empty")  # fmt: skip
    assert run_fuzz(engines, empty, config).errors == []


@pytest.mark.engines
def test_a_bounded_run_over_both_lines_reports_reproducible_scripts(
    pool: EnginePool, tmp_path: Path
) -> None:
    engines = engines_of(pool, BOTH_LINES)
    registry = DivergenceRegistry.load()
    # hashes first: whatever the machine's load, the field-TTL refusals are met in the budget
    config = FuzzConfig(["hashes", "strings", "sets", "sorted-sets", "streams", "scripting"],
                        seed=3, examples=20, budget=25, database_dir=tmp_path / "db")  # fmt: skip
    began = time.monotonic()
    outcome = run_fuzz(engines, registry, config)
    assert time.monotonic() - began < 90
    lockstep = outcome.lockstep
    assert sum(lockstep.steps.values()) > 200
    # the registry explains the differences it knows: field TTLs are refused on older engines
    assert ("hashes", "unsupported", "hexpire-hash-field-ttl") in lockstep.explained or (
        "hashes", "unsupported", "hash-field-ttl-commands") in lockstep.explained  # fmt: skip
    for finding in lockstep.findings.values():
        assert finding.reproduced, finding.script
        replies = {e.label: replay_last(e, finding) for e in engines}
        assert len({json.dumps(r, sort_keys=True) for r in replies.values()}) > 1, finding.script
    facts = {e.label: {k: v for k, v in pool.engine(e.label).facts.items() if k != "commands"}
             for e in engines}  # fmt: skip
    doc = results_document(outcome, facts, registry)
    results.validate(doc)
    outcomes = {r["outcome"] for r in doc["results"]}
    assert "unsupported" in outcomes
    assert ("fail" in outcomes) == bool(lockstep.findings)


@pytest.mark.engines
def test_an_unexplained_difference_is_a_fail_with_a_replayable_script(
    pool: EnginePool, tmp_path: Path
) -> None:
    # With the registry emptied, Valkey's SET IFEQ, DELIFEQ and friends are unexplained.
    engines = engines_of(pool, ["redis-7.2", "valkey-9.1"])
    config = FuzzConfig(["strings"], protocols=[2], seed=1, examples=20, budget=12)
    outcome = run_fuzz(engines, DivergenceRegistry([]), config)
    findings = list(outcome.lockstep.findings.values())
    assert findings
    for finding in findings:
        redis, valkey = (replay_last(e, finding) for e in engines)
        assert redis != valkey, finding.script
        assert {json.dumps(r, sort_keys=True) for r in (redis, valkey)} == {
            json.dumps(reply, sort_keys=True) for _, reply in finding.groups
        }
    paths = [emit_case(outcome.lockstep, f, tmp_path / "cases") for f in findings]
    path = paths[0]
    case = load_validated(path, "case.schema.yaml", "emitted case")
    assert path.parent.parent.name == "strings"
    # a finding of the transactions machine on GETEX is a strings case, with its own claim
    getex = [["FLUSHALL"], ["GETEX", "k2", "EX", "0"]]
    other = Finding("transactions", "GETEX", 2, getex, ["getex"], {}, [])
    again = Finding("transactions", "GETEX", 2, [getex[0], ["GETEX", "k1", "PX", "-5"]],
                    ["getex"], {}, [])  # fmt: skip
    emitted = [emit_case(outcome.lockstep, f, tmp_path / "cases") for f in (other, again)]
    assert {p.parent.relative_to(tmp_path / "cases").as_posix() for p in emitted} == {
        "strings/GETEX"
    }
    files = set(paths + emitted)  # the same script found by two machines is one case
    claims = [load_validated(p, "case.schema.yaml", "case")["claim"] for p in files]
    assert len(set(claims)) == len(claims) == len(files) > 1
    last = parse_script(findings[0].script)[-1]
    sent = [bytes.fromhex(a["hex"]) if isinstance(a, dict) else str(a).encode()
            for a in case["steps"][-1]["send"]]  # fmt: skip
    assert sent == last
    assert len(case["steps"]) == len(parse_script(findings[0].script)) - 1  # FLUSHALL is implied
    assert "Observed replies" in path.read_text()
    outcome.lockstep.close()


@pytest.mark.engines
def test_two_servers_of_the_same_version_never_disagree(catalog: EngineCatalog) -> None:
    first, second = EnginePool(catalog), EnginePool(catalog)
    try:
        engines = [*engines_of(first, ["valkey-9.1"], "#1"), *engines_of(second, ["valkey-9.1"],
                                                                         "#2")]  # fmt: skip
        families = ["keyspace", "sets", "hashes", "sorted-sets", "streams", "scripting",
                    "transactions", "lists"]  # fmt: skip
        config = FuzzConfig(families, seed=11, examples=30, budget=20)
        outcome = run_fuzz(engines, DivergenceRegistry.load(), config)
        lockstep = outcome.lockstep
        assert sum(lockstep.steps.values()) > 300
        assert lockstep.findings == {}, [f.script for f in lockstep.findings.values()]
        assert lockstep.explained == {}
        assert outcome.errors == []
    finally:
        first.close()
        second.close()


# -- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["fuzz", "--engines", "redis-7.2"],
        ["fuzz", "--engines", "redis-7.2,valkey-9.1", "--families", "nosuch"],
        ["fuzz", "--engines", "redis-7.2,valkey-9.1", "--protocols", "4"],
        ["fuzz", "--engines", "redis-6.0,valkey-9.1"],
        ["fuzz", "--engines", "redis-7.2,valkey-9.1", "--budget", "0"],
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("respmatrix: error: ")


@pytest.mark.engines
def test_the_command_writes_results_and_report(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(["fuzz", "--engines", "redis-7.4,valkey-9.0", "--families", "bitmaps",
                 "--examples", "10", "--budget", "20", "--seed", "2", "--out", str(out),
                 "--no-database", "--protocols", "2"])  # fmt: skip
    doc = results.load(out / "results.json")
    assert doc["fuzz"]["seed"] == 2 and doc["fuzz"]["families"] == ["bitmaps"]
    fails = [r for r in doc["results"] if r["outcome"] == "fail"]
    assert code == (1 if fails else 0)
    assert {r["family"] for r in doc["results"]} == {"fuzz"}
    report = (out / "fuzz.md").read_text()
    assert "## Differential fuzzing" in report
    for result in fails:
        assert result["detail"]["script"] in report
