"""``respmatrix audit``: what in a live server's workload would change on another engine.

The audit reads the source server and never writes to it: the only commands it sends are
``HELLO``, ``INFO``, ``CONFIG GET``, ``MODULE LIST`` and ``COMMAND DOCS`` (:data:`ALLOWED`,
enforced by :class:`SourceReader`), so it runs under an ACL user limited to exactly those.
From the source it learns the engine and version, the commands the workload used
(``INFO commandstats``, read right after ``HELLO`` and without that ``HELLO``; or
``--commands-from``), the configuration, the modules and the persistence in use. The rest
comes from a results file of a matrix run: per used command the difference between the
source's engine and the target (:func:`respmatrix.reporting.diff.engine_diff`), the target's
command inventory and modules, and the migration paths measured between the two.
The engines' configuration defaults come from starting each engine from the store.

Exit status: 0 no blockers, 1 blockers found, 2 could not audit.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from respmatrix.clients.resp import RespConnection, RespProtocolError
from respmatrix.launcher import parse_info
from respmatrix.replies import RespError

ALLOWED = (("HELLO",), ("INFO",), ("CONFIG", "GET"), ("MODULE", "LIST"), ("COMMAND", "DOCS"))
EXIT_OK, EXIT_BLOCKERS, EXIT_CANNOT = 0, 1, 2

# Settings that describe one server instance (where it listens and writes, how it was started),
# not a behaviour the workload relies on; the defaults servers started by respmatrix show for
# them are the launcher's, not the engine's.
INSTANCE_CONFIGS = frozenset(
    {
        "port", "bind", "dir", "logfile", "pidfile", "daemonize", "save", "appendonly",
        "dbfilename", "appendfilename", "appenddirname", "unixsocket", "unixsocketperm",
        "enable-debug-command", "enable-module-command", "enable-protected-configs",
        "supervised", "syslog-enabled", "syslog-ident", "syslog-facility", "always-show-logo",
        "aclfile", "requirepass", "masterauth", "masteruser", "primaryauth", "primaryuser",
        "replicaof", "slaveof", "cluster-config-file", "tls-port", "tls-cluster",
        "tls-replication", "bind-source-addr", "server-cpulist", "bio-cpulist",
        "aof-rewrite-cpulist", "bgsave-cpulist", "locale-collate", "set-proc-title",
        "proc-title-template", "unixsocketgroup", "cluster-announce-ip", "replica-announce-ip",
        "slave-announce-ip",
    }
)  # fmt: skip


class AuditError(Exception):
    """The audit cannot be done (bad input, unreachable or unusable source); exit status 2."""


# -- reading the source --------------------------------------------------------------------------


@dataclass
class SourceAddress:
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> SourceAddress:
        """``redis://[user[:password]@]host[:port][/db]``."""
        try:
            parsed = urlparse(url)
            port = parsed.port or 6379
        except ValueError as exc:
            raise AuditError(f"--source {url!r}: {exc}") from None
        if parsed.scheme != "redis" or not parsed.hostname:
            raise AuditError(
                f"--source {url!r}: expected redis://[user[:password]@]host[:port][/db]"
            )
        path = parsed.path.strip("/")
        if path and not path.isdigit():
            raise AuditError(f"--source {url!r}: the database must be a number, got {path!r}")
        return cls(
            parsed.hostname,
            port,
            int(path or 0),
            unquote(parsed.username) if parsed.username else None,
            unquote(parsed.password) if parsed.password is not None else None,
        )

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class SourceReader:
    """A connection to the source that can send only the :data:`ALLOWED` commands."""

    def __init__(self, address: SourceAddress, timeout: float = 5.0) -> None:
        self.address = address
        self.sent: list[tuple[str, ...]] = []
        try:
            self.conn = RespConnection(address.host, address.port, protocol=2, timeout=timeout)
        except OSError as exc:
            raise AuditError(
                f"cannot reach the source at {address}: {exc.strerror or exc}"
            ) from None

    def close(self) -> None:
        self.conn.close()

    def call(self, *args: str) -> Any:
        if not any(tuple(a.upper() for a in args[: len(cmd)]) == cmd for cmd in ALLOWED):
            raise AssertionError(f"the audit must not send {args[0]} to the source")
        self.sent.append(tuple(args[:2]) if args[0].upper() != "HELLO" else ("HELLO",))
        try:
            return self.conn.call(*args)
        except (RespProtocolError, ValueError, UnicodeDecodeError) as exc:
            raise AuditError(
                f"the source at {self.address} does not answer as a RESP server ({exc})"
            ) from None
        except (TimeoutError, ConnectionError, OSError) as exc:
            raise AuditError(
                f"the source at {self.address} does not answer as a RESP server "
                f"({type(exc).__name__}: {exc})"
            ) from None

    def hello(self) -> dict[str, Any]:
        args = ["HELLO", "3"]
        if self.address.password is not None:
            args += ["AUTH", self.address.username or "default", self.address.password]
        reply = self.call(*args)
        if isinstance(reply, RespError):
            if reply.code in ("WRONGPASS", "NOAUTH") or "auth" in reply.message.lower():
                raise AuditError(f"authentication to the source at {self.address} failed: {reply}")
            raise AuditError(f"the source at {self.address} refused HELLO 3: {reply}")
        if not isinstance(reply, dict) or "server" not in reply:
            raise AuditError(
                f"the source at {self.address} does not answer as a RESP server "
                f"(HELLO 3 replied {str(reply)[:80]!r})"
            )
        return reply

    def checked(self, *args: str) -> Any:
        reply = self.call(*args)
        if isinstance(reply, RespError):
            raise AuditError(f"the source refused {' '.join(args)}: {reply}")
        return reply


@dataclass
class SourceFacts:
    """Everything the audit read from the source."""

    line: str
    version: str
    commandstats: dict[str, int]  # command -> calls (+ rejected and failed), minus the audit's
    config: dict[str, str]
    modules: dict[str, str]  # name -> version
    module_commands: dict[str, str]  # command -> module, from COMMAND DOCS
    info: dict[str, str]
    sent: list[tuple[str, ...]] = field(default_factory=list)


def read_source(address: SourceAddress, timeout: float = 5.0) -> SourceFacts:
    """Read the source with the allowed commands only; AuditError when it cannot be read."""
    reader = SourceReader(address, timeout)
    try:
        hello = reader.hello()
        # First after the handshake: the statistics then hold, of this audit, only what it sent
        # so far (HELLO), which is taken off; its later reads are not in them yet.
        before_stats = own_calls(reader.sent)
        stats_text = reader.checked("INFO", "commandstats")
        info = parse_info(str(reader.checked("INFO", "server")))
        info |= parse_info(str(reader.checked("INFO", "persistence")))
        info |= parse_info(str(reader.checked("INFO", "keyspace")))
        config = reader.checked("CONFIG", "GET", "*")
        modules = reader.checked("MODULE", "LIST")
        docs = reader.checked("COMMAND", "DOCS")
    finally:
        reader.close()
    line = str(hello.get("server", "")).lower()
    version = str(hello.get("version", ""))
    if "valkey_version" in info or info.get("server_name") == "valkey":
        line, version = "valkey", info.get("valkey_version", version)
    if isinstance(config, list):
        config = dict(zip(config[::2], config[1::2], strict=False))
    module_versions = {}
    for module in modules or []:
        fields = (
            module
            if isinstance(module, dict)
            else dict(zip(module[::2], module[1::2], strict=False))
        )
        module_versions[str(fields.get("name"))] = str(fields.get("ver"))
    module_commands = {}
    if isinstance(docs, dict):
        for name, doc in docs.items():
            if isinstance(doc, dict) and doc.get("group") == "module":
                module_commands[str(name).upper()] = str(doc.get("module", ""))
    return SourceFacts(
        line=line,
        version=version,
        commandstats=parse_commandstats(str(stats_text), minus=before_stats),
        config={str(k): str(v) for k, v in config.items()},
        modules=module_versions,
        module_commands=module_commands,
        info=info,
        sent=reader.sent,
    )


_STAT = re.compile(r"^cmdstat_(?P<name>[^:]+):(?P<fields>.*)$")


def own_calls(sent: Iterable[tuple[str, ...]]) -> dict[str, int]:
    """What the audit sent, counted under the names ``INFO commandstats`` uses
    (``("CONFIG", "GET")`` -> ``CONFIG GET``, ``("INFO", "server")`` -> ``INFO``)."""
    counts: dict[str, int] = defaultdict(int)
    for args in sent:
        words = tuple(a.upper() for a in args)
        name = " ".join(words[:2]) if words[:2] in ALLOWED else words[0]
        counts[name] += 1
    return dict(counts)


def parse_commandstats(text: str, minus: Mapping[str, int] | None = None) -> dict[str, int]:
    """``INFO commandstats`` -> {"CONFIG GET": calls, ...}; unused commands dropped.

    ``minus`` takes calls off (the audit's own, made before it read the statistics); what is
    left of a command the audit also sends was the workload's, or an earlier audit's.
    """
    minus = minus or {}
    used = {}
    for line in text.splitlines():
        match = _STAT.match(line.strip())
        if not match:
            continue
        fields = dict(f.split("=", 1) for f in match["fields"].split(",") if "=" in f)
        calls = sum(int(fields.get(k, 0)) for k in ("calls", "rejected_calls", "failed_calls"))
        name = match["name"].upper().replace("|", " ")
        calls -= minus.get(name, 0)
        if calls > 0:
            used[name] = calls
    return dict(sorted(used.items()))


def own_commands_note(used: Mapping[str, int]) -> str:
    """One line on the used commands the audit also sends, or "" when there are none: the
    statistics cannot tell a workload's call from an earlier audit's."""
    allowed = {" ".join(cmd) for cmd in ALLOWED}
    counts = [
        f"{name}: {calls} call{'s' if calls != 1 else ''}"
        for name, calls in used.items()
        if name in allowed
    ]
    return f"{', '.join(counts)}; earlier audits count here too" if counts else ""


_MONITOR = re.compile(r'^\d+\.\d+ \[[^\]]*\] (?P<args>".*)$')


def read_command_list(path: Path, known: Iterable[str] = ()) -> dict[str, int]:
    """Commands from a file: one per line (``SET``, ``CONFIG GET``, ``config|get``) or a
    ``MONITOR`` capture (``1700000000.1 [0 127.0.0.1:5000] "SET" "k" "v"``), as redis-cli
    prints it or as read off a plain socket (each line a RESP simple string: ``+OK``, then
    ``+1700000000.1 [...] "SET" ...``). ``known`` (the engines' inventories) tells a subcommand
    (``CONFIG GET``) from a command and its key."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise AuditError(f"--commands-from {path}: cannot read: {exc.strerror or exc}") from None
    known = set(known)
    used: dict[str, int] = defaultdict(int)
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line in ("OK", "+OK"):
            continue
        match = _MONITOR.match(line)
        if match is None and line.startswith("+"):
            # The RESP simple-string prefix of a raw capture; only where a MONITOR line follows,
            # so "+SET" in a list of commands is still refused.
            match = _MONITOR.match(line[1:])
        if match:
            words = [w.upper() for w in re.findall(r'"((?:[^"\\]|\\.)*)"', match["args"])[:2]]
        else:
            words = line.replace("|", " ").upper().split()[:2]
        if not words:
            continue
        name = " ".join(words) if " ".join(words) in known else words[0]
        if not re.fullmatch(r"[A-Z][A-Z0-9_.\-]*( [A-Z][A-Z0-9_\-]*)?", name):
            raise AuditError(f"--commands-from {path}: not a command name: {raw.strip()[:60]!r}")
        used[name] += 1
    if not used:
        raise AuditError(f"--commands-from {path}: no command found in the file")
    return dict(sorted(used.items()))


# -- comparing with the results file --------------------------------------------------------------


@dataclass
class CommandStatus:
    command: str
    calls: int
    status: str  # same | divergent | unsupported | not tested
    cases: int = 0  # cases of this command that differ (or were compared, for "same")
    notes: list[dict[str, str]] = field(default_factory=list)  # registry entries: id, note, source
    why: str = ""


def command_of_case(case: str) -> str:
    """``keyspace/OBJECT-ENCODING/claim`` -> ``OBJECT ENCODING`` (the folder names the command)."""
    parts = case.split("/")
    if len(parts) < 3:
        return ""
    return parts[1].replace("-", " ", 1).upper()


def _step_command(detail: Mapping[str, Any]) -> str | None:
    """The command of the step a refused case stopped at (``step`` is 1-based), if recorded."""
    step, transcript = detail.get("step"), detail.get("transcript") or []
    if not step or step > len(transcript):
        return None
    send = transcript[step - 1].get("send") or []
    if not send:
        return None
    name = str(send[0]).upper()
    if name in _CONTAINERS and len(send) > 1:
        return f"{name} {str(send[1]).upper()}"
    return name


# Commands whose first argument is a subcommand (their cases live in folders like OBJECT-ENCODING).
_CONTAINERS = frozenset(
    {"OBJECT", "XINFO", "XGROUP", "CONFIG", "CLIENT", "COMMAND", "MEMORY", "SCRIPT", "FUNCTION",
     "ACL", "MODULE", "PUBSUB", "LATENCY", "SLOWLOG", "CLUSTER"}
)  # fmt: skip


def command_statuses(
    doc: Mapping[str, Any], source: str, target: str, used: Mapping[str, int]
) -> list[CommandStatus]:
    """Per used command: same, divergent (with the registry notes), unsupported, not tested.

    A case that differs between the engines counts against the command that made it differ:
    where one side refused a step (an unsupported feature), the command of that step (an HSET
    case that also sends HPEXPIRE differs because of HPEXPIRE, not HSET); otherwise the command
    the case is filed under.
    """
    from respmatrix.reporting.diff import engine_diff

    diff = engine_diff(doc, source, target)
    divergences = doc.get("divergences", {})
    details = {
        (r["case"], r["engine"], r["client"], r["protocol"]): r["detail"]
        for r in doc["results"]
        if r["engine"] in (source, target) and r["outcome"] != "pass"
    }
    changed: dict[str, set[str]] = defaultdict(set)
    notes: dict[str, list[str]] = defaultdict(list)
    for feature in diff.features:
        for change in feature.changes:
            steps = {
                _step_command(
                    details.get((change.case, engine, change.client, change.protocol), {})
                )
                for engine in (source, target)
            } - {None}
            for command in steps or {command_of_case(change.case)}:
                changed[command].add(change.case)  # type: ignore[index]
                for div in (change.a[1], change.b[1]):
                    if div and div not in notes[command]:  # type: ignore[index]
                        notes[command].append(div)  # type: ignore[index]
    compared: dict[str, set[str]] = defaultdict(set)
    for result in doc["results"]:
        if result["engine"] == target:
            compared[command_of_case(result["case"])].add(result["case"])
    inventory = doc.get("engines", {}).get(target, {}).get("commands")
    statuses = []
    for command, calls in used.items():
        entry_notes = [
            {
                "id": d,
                "kind": divergences.get(d, {}).get("kind", ""),
                "note": " ".join(divergences.get(d, {}).get("note", "").split()),
                "source": divergences.get(d, {}).get("source", ""),
            }
            for d in notes.get(command, [])
        ]
        differ = len(changed.get(command, ()))
        if inventory is not None and command not in inventory:
            status = CommandStatus(command, calls, "unsupported", differ, entry_notes,
                                   f"{target} has no such command")  # fmt: skip
        elif differ:
            tested = len(compared.get(command, set()) | changed[command])
            status = CommandStatus(command, calls, "divergent", differ, entry_notes,
                                   f"{differ} of {tested} cases differ")  # fmt: skip
        elif command in compared:
            n = len(compared[command])
            status = CommandStatus(command, calls, "same", n, why=f"{n} cases behave alike")
        else:
            why = "no case of the matrix sends it; present on the target"
            status = CommandStatus(command, calls, "not tested", why=why)
        statuses.append(status)
    return statuses


def config_differences(
    source_config: Mapping[str, str],
    source_defaults: Mapping[str, str] | None,
    target_defaults: Mapping[str, str] | None,
) -> dict[str, list[dict[str, str]]]:
    """Three lists: what the source sets away from its defaults, which of those the target does
    not know, and which defaults the source relies on that the target changes."""
    out: dict[str, list[dict[str, str]]] = {
        "non_default": [],
        "unknown_on_target": [],
        "default_changes": [],
    }
    if source_defaults is None:
        return out
    for name in sorted(source_config):
        if name in INSTANCE_CONFIGS or name not in source_defaults:
            continue
        value, default = source_config[name], source_defaults[name]
        if value != default:
            row = {"name": name, "value": value, "source_default": default}
            if target_defaults is not None:
                row["target_default"] = target_defaults.get(name, "(no such config)")
            out["non_default"].append(row)
            if target_defaults is not None and name not in target_defaults:
                out["unknown_on_target"].append({"name": name, "value": value})
        elif target_defaults is not None and target_defaults.get(name, default) != default:
            out["default_changes"].append(
                {"name": name, "source": default, "target": target_defaults[name]}
            )
    return out


def engine_defaults(engine_id: str) -> dict[str, str] | None:
    """``CONFIG GET *`` of a freshly started engine from the store; None if not installed."""
    import tempfile

    from respmatrix.catalog import EngineCatalog
    from respmatrix.migration.engines import connect, engine_process
    from respmatrix.store import EngineStore

    spec = EngineCatalog.load().get(engine_id)
    store = EngineStore()
    if not store.is_installed(spec):
        return None
    with tempfile.TemporaryDirectory(prefix="respmatrix-audit-") as logs:
        process = engine_process(spec, store, Path(logs)).start()
        try:
            with connect(process) as conn:
                reply = conn.call("CONFIG", "GET", "*")
        finally:
            process.stop()
    return {str(k): str(v) for k, v in zip(reply[::2], reply[1::2], strict=True)}


def catalog_engine(line: str, version: str, modules: Iterable[str]) -> str:
    """The catalog id of the source: same line and minor version, the variant whose modules
    match what the source has loaded if there is one, else the base engine."""
    from packaging.version import InvalidVersion, Version

    from respmatrix.catalog import EngineCatalog

    try:
        minor = Version(version).release[:2]
    except InvalidVersion:
        raise AuditError(f"the source reports an unreadable version {version!r}") from None
    candidates = [
        s for s in EngineCatalog.load() if s.line == line and s.parsed_version.release[:2] == minor
    ]
    if not candidates:
        raise AuditError(
            f"the source is {line} {version}, which no catalog engine matches (same line and "
            "minor version); respmatrix can only audit against engines of its matrix"
        )
    have = set(modules)
    for spec in candidates:
        loaded = set(getattr(spec, "loaded_modules", {}) or {})
        if loaded and loaded <= have and "+" in spec.id:
            return spec.id
    return next((s.id for s in candidates if "+" not in s.id), candidates[0].id)


@dataclass
class AuditReport:
    source: dict[str, Any]
    target: dict[str, Any]
    commands: list[CommandStatus]
    config: dict[str, list[dict[str, str]]]
    config_note: str
    modules: dict[str, Any]
    persistence: dict[str, Any]
    migration: list[dict[str, Any]]
    blockers: list[str]
    warnings: list[str]
    notes: list[str] = field(default_factory=list)  # caveats on what was read

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["commands"] = [asdict(c) for c in self.commands]
        return data


def audit(
    facts: SourceFacts,
    doc: Mapping[str, Any],
    target: str,
    used: Mapping[str, int],
    source_defaults: Mapping[str, str] | None,
    target_defaults: Mapping[str, str] | None,
    source_id: str | None = None,
) -> AuditReport:
    """The cutover report from what was read (pure: no server is contacted here)."""
    from respmatrix.reporting.migration import migration_tables, split_migration

    suites, _ = split_migration(doc)
    tested = {r["engine"] for r in suites["results"]}
    source_id = source_id or catalog_engine(facts.line, facts.version, facts.modules)
    base = source_id.partition("+")[0]
    if source_id not in tested and base in tested:  # a module variant the file lacks
        source_id = base
    for engine, role in ((target, "target"), (source_id, "source's engine")):
        if engine not in tested:
            have = ", ".join(sorted(tested)) or "none"
            raise AuditError(
                f"the results file has no results for the {role} {engine} (it has: {have}); "
                f"run `respmatrix run --engines {engine}` and merge"
            )
    commands = command_statuses(suites, source_id, target, used)
    config = config_differences(facts.config, source_defaults, target_defaults)
    note = ""
    if source_defaults is None or target_defaults is None:
        missing = [
            e for e, d in ((source_id, source_defaults), (target, target_defaults)) if d is None
        ]
        note = f"config defaults not compared: {', '.join(missing)} not installed"

    target_facts = doc.get("engines", {}).get(target, {})
    target_modules = set(target_facts.get("modules", []))
    used_modules = {facts.module_commands[c] for c in used if c in facts.module_commands}
    lacking = sorted(set(facts.modules) - target_modules)
    modules = {
        "source": facts.modules,
        "target": sorted(target_modules),
        "lacking": lacking,
        "lacking_used": sorted(set(lacking) & used_modules),
    }
    persistence = {
        "save": facts.config.get("save", ""),
        "appendonly": facts.config.get("appendonly", ""),
        "aof-use-rdb-preamble": facts.config.get("aof-use-rdb-preamble", ""),
        "rdb_last_bgsave_status": facts.info.get("rdb_last_bgsave_status", ""),
        "aof_enabled": facts.info.get("aof_enabled", ""),
    }
    migration = []
    for table in migration_tables(doc):
        cell = table.cell(source_id, target)
        if cell is None:
            continue
        rdb_versions = {r["detail"].get("rdb_version") for r in cell.outcomes} - {None}
        if table.method == "rdb" and rdb_versions:
            persistence["rdb_version"] = min(rdb_versions)
        migration.append(
            {
                "method": table.method,
                "works": cell.state == "pass",
                "state": cell.state,
                "identical": cell.passed,
                "of": len(cell.outcomes),
                "reasons": cell.reasons(),
            }
        )

    blockers, warnings = [], []
    for status in commands:
        if status.status == "unsupported":
            blockers.append(f"{status.command}: unsupported on {target} ({status.why})")
        elif status.status == "divergent":
            warnings.append(f"{status.command}: behaves differently on {target} ({status.why})")
    for name in modules["lacking_used"]:
        blockers.append(f"module {name}: used by the workload, not loaded on {target}")
    for name in sorted(set(lacking) - set(modules["lacking_used"])):
        warnings.append(f"module {name}: loaded on the source, not on {target} (no command used)")
    for row in config["unknown_on_target"]:
        warnings.append(f"config {row['name']} = {row['value']!r}: {target} has no such setting")
    for row in config["default_changes"]:
        warnings.append(
            f"config {row['name']}: default {row['source']!r} on the source, {row['target']!r} "
            f"on {target}"
        )
    if migration and not any(m["works"] for m in migration):
        blockers.append(f"no migration method moves the data from {source_id} to {target} intact")
    return AuditReport(
        source={
            "engine": source_id,
            "line": facts.line,
            "version": facts.version,
            "db": None,
            "commands_read_from": "",
            "sent": [" ".join(s) for s in facts.sent],
        },
        target={"engine": target, **{k: target_facts.get(k) for k in ("line", "version")}},
        commands=commands,
        config=config,
        config_note=note,
        modules=modules,
        persistence=persistence,
        migration=migration,
        blockers=blockers,
        warnings=warnings,
    )


# -- output ------------------------------------------------------------------------------------


def render(report: AuditReport) -> str:
    """The report as aligned text tables."""
    src, tgt = report.source, report.target
    lines = [
        f"source: {src['line']} {src['version']} (matrix engine {src['engine']}), "
        f"commands from {src['commands_read_from']}",
        f"target: {tgt['engine']} ({tgt.get('line')} {tgt.get('version')})",
        "",
        f"Commands used ({len(report.commands)}):",
    ]
    width = max([len(c.command) for c in report.commands] + [7])
    order = {"unsupported": 0, "divergent": 1, "not tested": 2, "same": 3}
    for status in sorted(report.commands, key=lambda c: (order[c.status], c.command)):
        lines.append(f"  {status.command:<{width}}  {status.status:<11}  {status.why}")
        for note in status.notes:
            lines.append(f"  {'':<{width}}    [{note['id']}] {note['note']} <{note['source']}>")
    lines += [f"  note: {note}" for note in report.notes]
    lines += ["", "Configuration:"]
    if report.config_note:
        lines.append(f"  {report.config_note}")
    for row in report.config["non_default"]:
        target = (
            f", {tgt['engine']} default {row['target_default']!r}"
            if "target_default" in row
            else ""
        )
        lines.append(
            f"  set on the source: {row['name']} = {row['value']!r} "
            f"(default {row['source_default']!r}{target})"
        )
    for row in report.config["default_changes"]:
        lines.append(f"  default changes:   {row['name']}: {row['source']!r} -> {row['target']!r}")
    if not any(report.config.values()) and not report.config_note:
        lines.append("  nothing set away from the defaults, and no default changes")
    mods = report.modules
    lines += [
        "",
        f"Modules: source {', '.join(f'{n} {v}' for n, v in mods['source'].items()) or 'none'}; "
        f"target {', '.join(mods['target']) or 'none'}; lacking on the target: "
        f"{', '.join(mods['lacking']) or 'none'}",
    ]
    p = report.persistence
    lines += [
        "",
        f"Persistence: save {p['save']!r}, appendonly {p['appendonly']}, aof-use-rdb-preamble "
        f"{p['aof-use-rdb-preamble']}"
        + (f", RDB version {p['rdb_version']}" if "rdb_version" in p else ""),
        "",
        "Migration paths (measured):",
    ]
    if not report.migration:
        lines.append(
            f"  not measured for {src['engine']} -> {tgt['engine']}: run "
            f"`respmatrix migrate --producers {src['engine']} --consumers {tgt['engine']}`"
        )
    for m in report.migration:
        word = "works" if m["works"] else ("partly" if m["identical"] else "does not work")
        lines.append(f"  {m['method']:<13} {word} ({m['identical']}/{m['of']} identical)")
        for reason, subjects in m["reasons"].items():
            lines.append(f"      {reason} ({', '.join(subjects)})")
    lines += ["", f"Blockers ({len(report.blockers)}):"]
    lines += [f"  - {b}" for b in report.blockers] or ["  none"]
    lines += ["", f"To review ({len(report.warnings)}):"]
    lines += [f"  - {w}" for w in report.warnings] or ["  none"]
    return "\n".join(lines) + "\n"


# -- the command -------------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    """Register ``audit`` on the CLI's sub-command parser."""
    parser = commands.add_parser(
        "audit",
        help="what in a live server's workload behaves differently on a target engine",
        description="Read a live server (only HELLO, INFO, CONFIG GET, MODULE LIST and COMMAND "
        "DOCS are sent; nothing is written) and report, for a target engine of the matrix: per "
        "used command its status there (same, divergent with the registry note, unsupported), "
        "config defaults that differ, modules the target lacks, the persistence in use and "
        "which migration methods work. Exit status: 0 no blockers, 1 blockers, 2 could not audit.",
    )
    parser.add_argument(
        "--source", required=True, metavar="URL", help="redis://[user[:password]@]HOST:PORT[/DB]"
    )
    parser.add_argument("--target", required=True, metavar="ENGINE-ID", help="e.g. valkey-9.1")
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("reports/results.json"),
        help="results file of a matrix run (default: reports/results.json)",
    )
    parser.add_argument(
        "--commands-from",
        type=Path,
        default=None,
        metavar="FILE",
        help="use these commands instead of INFO commandstats: one per line, or a MONITOR capture",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per reply (default 5)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    from respmatrix import results
    from respmatrix.catalog import EngineCatalog, UnknownEngineError
    from respmatrix.cli import CommandError

    try:
        try:
            EngineCatalog.load().get(args.target)
        except UnknownEngineError as exc:
            raise AuditError(str(exc).strip("'\"")) from None
        address = SourceAddress.parse(args.source)
        try:
            doc = results.load(args.results)
        except results.ResultsFileError as exc:
            hint = ""
            if not args.results.exists():  # the results are generated, not in git
                hint = (
                    "; make one with `respmatrix run --out reports` and "
                    "`respmatrix migrate --out reports`, or pass --results FILE"
                )
            raise AuditError(f"{exc}{hint}") from None
        facts = read_source(address, args.timeout)
        source_id = catalog_engine(facts.line, facts.version, facts.modules)
        if args.commands_from is not None:
            known = set()
            for engine in doc.get("engines", {}).values():
                known.update(engine.get("commands", {}))
            used = read_command_list(args.commands_from, known)
            origin = str(args.commands_from)
        else:
            used, origin = facts.commandstats, "INFO commandstats"
        report = audit(
            facts, doc, args.target, used,
            engine_defaults(source_id), engine_defaults(args.target), source_id,
        )  # fmt: skip
    except AuditError as exc:
        raise CommandError(str(exc), EXIT_CANNOT) from None
    report.source["commands_read_from"] = origin
    if args.commands_from is None and (note := own_commands_note(used)):
        report.notes.append(note)
    report.source["db"] = address.db
    if args.json:
        print(json.dumps(report.as_dict(), indent=1, ensure_ascii=False))
    else:
        print(render(report), end="")
    return EXIT_BLOCKERS if report.blockers else EXIT_OK
