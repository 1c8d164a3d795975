"""The respmatrix pytest plugin: options, fixtures, markers, YAML case collection, recording.

It only wires things together; the engine pool, client adapters, case runner and results
writer do the work. Loaded through the ``pytest11`` entry point, so importing it stays cheap:
engines start, and client libraries are imported, only when a test needs them.
"""

from __future__ import annotations

import functools
import gc
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

SESSION_KEY: pytest.StashKey[RespmatrixSession] = pytest.StashKey()
_OUTCOME_STATUS = {
    "unsupported": ("unsupported", "u", "UNSUPPORTED"),
    "divergent": ("divergent", "d", "DIVERGENT"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("respmatrix", "respmatrix: real Redis and Valkey engines")
    group.addoption(
        "--engines",
        default=os.environ.get("RESPMATRIX_ENGINES", "all"),
        help="engine ids, lines (redis, valkey) or 'all', comma separated (default: all)",
    )
    group.addoption(
        "--clients",
        default=os.environ.get("RESPMATRIX_CLIENTS", "all"),
        help="client modes, comma separated, or 'all' (default: all)",
    )
    group.addoption(
        "--protocols", default="2,3", help="RESP protocols: 2, 3 or both (default: 2,3)"
    )
    group.addoption(
        "--families",
        default=None,
        help="only collect YAML cases of these families, comma separated",
    )
    group.addoption(
        "--engine-url",
        action="append",
        default=[],
        metavar="ID=URL",
        help="use a running server for an engine id instead of starting one",
    )
    group.addoption(
        "--provider",
        default="binary",
        choices=["binary", "docker"],
        help="how engines start: binary (the engine store) or docker (containers; default binary)",
    )
    group.addoption(
        "--engine-image",
        action="append",
        default=[],
        metavar="ID=IMAGE",
        help="with --provider docker: the image to run for an engine id",
    )
    group.addoption(
        "--suites",
        default=None,
        metavar="DIR",
        help="folder of YAML cases and registry.yaml (default: the shipped suites)",
    )
    group.addoption(
        "--respmatrix-out",
        default=None,
        metavar="DIR",
        help="record outcomes and write DIR/results.json",
    )
    group.addoption(
        "--respmatrix-versioned-clients",
        action="store_true",
        default=False,
        help="record client ids with their package version (redis-py@5.3.0), so results of "
        "several versions of one client merge side by side",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "engine_versions(redis=None, valkey=None): run only on engine versions matching these "
        "specifiers, e.g. engine_versions(redis='>=7.4', valkey='>=9.0'); False means none",
    )
    config.addinivalue_line(
        "markers", "respmatrix_feature(name): the feature a test exercises (registry key)"
    )
    state = config.stash[SESSION_KEY] = RespmatrixSession.from_config(config)
    explicit = ("--engines", "--clients", "--protocols")
    if any(arg.split("=")[0] in explicit for arg in config.invocation_params.args):
        _ = state.selection  # a typo in an id is a usage error now, not a collection error


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    session = parent.config.stash[SESSION_KEY]
    from respmatrix.cases import is_case_file

    if is_case_file(file_path, session.suites_root):
        family = file_path.relative_to(session.suites_root).parts[0]
        if session.families and family not in session.families:
            return None
        from respmatrix.collect import CaseFile

        return CaseFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    from respmatrix.collect import CaseItem

    if any(isinstance(item, CaseItem) for item in session.items):
        # The collected items and their cases live until the end of the run and are no
        # garbage. Left in the cyclic GC's reach, every full collection walks them again: 16
        # full collections cost a worker 4.2-4.9 s of its 33-40 s (two engines, all families,
        # every client mode), and the more modes run, the more collections there are.
        gc.collect()
        gc.freeze()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    names = metafunc.fixturenames
    if "resp_client" not in names and "resp_engine" not in names:
        return
    session = metafunc.config.stash[SESSION_KEY]
    if "resp_client" in names:
        targets = session.selection.targets()
    else:
        from respmatrix.selection import Target

        targets = [Target(e, "raw", 2) for e in session.selection.engines]
    ids = [t.id if "resp_client" in names else t.engine for t in targets]
    metafunc.parametrize("resp_target", targets, ids=ids, scope="function")


@pytest.fixture
def resp_engine(request: pytest.FixtureRequest, resp_target: Any) -> Any:
    """The running engine for this test's target, all databases flushed."""
    session = request.config.stash[SESSION_KEY]
    # Gate on the marker before starting anything: a skipped test costs no engine.
    _check_version_marker(request.node, session.catalog.get(resp_target.engine))
    running = session.engine(resp_target.engine)
    session.pool.reset(resp_target.engine)
    return running


@pytest.fixture
def resp_client(resp_engine: Any, resp_target: Any, request: pytest.FixtureRequest) -> Any:
    """A connected client adapter (``.call(...)`` for raw commands, ``.native`` for the library)."""
    return request.config.stash[SESSION_KEY].client(resp_target)


def _check_version_marker(node: pytest.Item, spec: Any) -> None:
    marker = node.get_closest_marker("engine_versions")
    if marker is None:
        return
    from packaging.specifiers import SpecifierSet

    wanted = marker.kwargs.get(spec.line)
    if wanted is None:
        return
    if wanted is False or spec.parsed_version not in SpecifierSet(wanted):
        pytest.skip(f"{spec.id} is outside {spec.line}{wanted or ' (none)'}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    session = item.config.stash[SESSION_KEY]
    target = getattr(getattr(item, "callspec", None), "params", {}).get("resp_target")
    if target is not None and session.writer is not None:
        session.record_python_test(item, target, report)
    return report


def _case_id(item: pytest.Item, target: Any) -> str:
    """The test id without the engine/client/protocol part (other parameters stay)."""
    base, _, params = item.nodeid.partition("[")
    params = params.removesuffix("]")
    for cell in (target.id, target.engine):
        if cell in params:
            params = params.replace(cell, "", 1).strip("-").replace("--", "-")
            break
    return f"{base}[{params}]" if params else base


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Any:
    if report.when == "call" and report.passed:
        outcome = dict(report.user_properties).get("respmatrix_outcome")
        return _OUTCOME_STATUS.get(outcome)
    return None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash[SESSION_KEY]
    if state.out_dir is not None and not hasattr(session.config, "workerinput"):
        state.finish()


@dataclass
class RespmatrixSession:
    """What one pytest process knows about the run (stored in ``config.stash``)."""

    config: pytest.Config
    suites_root: Path
    families: set[str] | None
    engines_word: str
    clients_word: str
    protocols_word: str
    engine_urls: dict[str, str]
    out_dir: Path | None
    _selection: Any = None
    _catalog: Any = None
    _registry: Any = None
    _pool: Any = None
    writer: Any = None
    _recorded: set[str] = field(default_factory=set)
    provider: str = "binary"
    engine_images: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: pytest.Config) -> RespmatrixSession:
        from respmatrix.datafiles import data_dir

        suites = config.getoption("suites")
        families = config.getoption("families")
        out = config.getoption("respmatrix_out")
        urls = {}
        for item in config.getoption("engine_url"):
            engine_id, sep, url = item.partition("=")
            if not sep or not url:
                raise pytest.UsageError(f"--engine-url expects ID=URL, got {item!r}")
            urls[engine_id] = url
        images = {}
        for item in config.getoption("engine_image"):
            engine_id, sep, image = item.partition("=")
            if not sep or not image:
                raise pytest.UsageError(f"--engine-image expects ID=IMAGE, got {item!r}")
            images[engine_id] = image
        state = cls(
            config=config,
            suites_root=Path(suites).resolve() if suites else data_dir("suites").resolve(),
            families={f.strip() for f in families.split(",") if f.strip()} if families else None,
            engines_word=config.getoption("engines"),
            clients_word=config.getoption("clients"),
            protocols_word=config.getoption("protocols"),
            engine_urls=urls,
            out_dir=Path(out).resolve() if out else None,
            provider=config.getoption("provider"),
            engine_images=images,
        )
        if state.provider == "docker" and not hasattr(config, "workerinput"):
            # one message for a missing daemon, not one failed item per case
            from respmatrix.providers.docker import DockerUnavailableError, docker_client

            try:
                docker_client()
            except DockerUnavailableError as exc:
                raise pytest.UsageError(str(exc)) from None
        if state.out_dir is not None:
            from respmatrix.results import ResultsWriter

            parts = state.out_dir / ".parts"
            worker = getattr(config, "workerinput", {}).get("workerid", "main")
            if worker == "main" and parts.exists():
                shutil.rmtree(parts)  # parts of an earlier run in the same folder
            state.writer = ResultsWriter(parts, worker)
        return state

    @property
    def catalog(self) -> Any:
        if self._catalog is None:
            from respmatrix.catalog import EngineCatalog

            self._catalog = EngineCatalog.load()
        return self._catalog

    @property
    def selection(self) -> Any:
        if self._selection is None:
            from respmatrix.catalog import UnknownEngineError
            from respmatrix.clients import UnknownClientError
            from respmatrix.selection import Selection

            try:
                self._selection = Selection.parse(
                    self.catalog, self.engines_word, self.clients_word, self.protocols_word
                )
            except (UnknownEngineError, UnknownClientError, ValueError) as exc:
                raise pytest.UsageError(str(exc)) from None
        return self._selection

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from respmatrix.registry import DivergenceRegistry

            self._registry = DivergenceRegistry.load(self.suites_root / "registry.yaml")
        return self._registry

    @property
    def pool(self) -> Any:
        if self._pool is None:
            from respmatrix.pool import EnginePool

            log_dir = self.out_dir / "logs" if self.out_dir else None
            self._pool = EnginePool(
                self.catalog,
                engine_urls=self.engine_urls,
                log_dir=log_dir,
                provider=self.provider,
                engine_images=self.engine_images,
            )
        return self._pool

    def engine(self, engine_id: str) -> Any:
        running = self.pool.engine(engine_id)
        if self.writer is not None and f"engine:{engine_id}" not in self._recorded:
            self._recorded.add(f"engine:{engine_id}")
            self.writer.engine(engine_id, running.facts)
        return running

    def client_id(self, client: str) -> str:
        """The client id results name: with ``@version`` under --respmatrix-versioned-clients."""
        if not self.config.getoption("respmatrix_versioned_clients"):
            return client
        return _versioned_client_id(client)

    def client(self, target: Any) -> Any:
        adapter = self.pool.client(target.engine, target.client, target.protocol)
        if self.writer is not None and f"client:{target.client}" not in self._recorded:
            self._recorded.add(f"client:{target.client}")
            self.writer.client(
                self.client_id(target.client),
                adapter.package or "respmatrix",
                adapter.package_version() or "?",
            )
        return adapter

    def record_case(self, case: Any, target: Any, outcome: Any, seconds: float) -> None:
        if self.writer is None:
            return
        if f"case:{case.id}" not in self._recorded:
            self._recorded.add(f"case:{case.id}")
            facts = {"claim": case.claim, "path": case.path.name}
            if case.api:  # typed-API case: which library API and which of its methods
                facts["api"] = list(case.api)
                facts["calls"] = sorted({s.call for s in case.steps if s.call})
            self.writer.case(case.id, facts)
        if outcome.divergence and f"div:{outcome.divergence}" not in self._recorded:
            self._recorded.add(f"div:{outcome.divergence}")
            entry = self.registry.get(outcome.divergence).as_dict()
            self.writer.divergence(entry)
        self.writer.result(
            {
                "case": case.id,
                "family": case.family,
                "features": list(case.features),
                "engine": target.engine,
                "client": self.client_id(target.client),
                "protocol": f"resp{target.protocol}",
                "outcome": outcome.outcome,
                "divergence": outcome.divergence,
                "duration_ms": round(seconds * 1000, 3),
                "detail": outcome.detail,
            }
        )

    def flush_results(self) -> None:
        """Put the rows recorded so far on disk (after each item)."""
        if self.writer is not None:
            self.writer.flush()

    def record_python_test(self, item: pytest.Item, target: Any, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            outcome = "pass" if report.passed else "skipped" if report.skipped else "fail"
            if report.when == "setup" and report.failed:
                outcome = "error"
            marker = item.get_closest_marker("respmatrix_feature")
            module = Path(str(item.path)).stem.removeprefix("test_")
            self.writer.result(
                {
                    "case": _case_id(item, target),
                    "family": module,
                    "features": list(marker.args) if marker else [],
                    "engine": target.engine,
                    "client": self.client_id(target.client),
                    "protocol": f"resp{target.protocol}",
                    "outcome": outcome,
                    "divergence": None,
                    "detail": {"message": str(report.longrepr)[-2000:]} if report.failed else {},
                }
            )
            self.writer.flush()

    def finish(self) -> None:
        from respmatrix import results

        if self.writer is not None:
            self.writer.close()
        assert self.out_dir is not None
        # The merged document stays in memory for the CLI to render (results.load), out of
        # the cyclic GC's reach: pytest's last gc.collect() does not walk it.
        results.merge_parts(self.out_dir, freeze=True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self.writer is not None:
            self.writer.close()


@functools.cache
def _versioned_client_id(client: str) -> str:
    from respmatrix.clients import adapter_class

    version = adapter_class(client).package_version()
    return f"{client}@{version}" if version else client
