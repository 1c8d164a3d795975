"""The CI definitions: the GitHub workflows are valid and pass zizmor, the matrix workflow shards
the catalog's engines (a quick subset on pull requests) and publishes from one least-privileged
job, its shell steps do what they say when run locally, and the three ways of running CI
(``.ci/run``, ``tox.ini``, the workflow) run the same commands as the README says.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from respmatrix.catalog import EngineCatalog

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CI_RUN = ROOT / ".ci" / "run"
TOX_INI = ROOT / "tox.ini"
README = ROOT / "README.md"
PYTEST_PREFIX = "python -m pytest"
QUICK_ENGINES = ["redis-7.2", "redis-8.2", "valkey-8.0", "valkey-9.1"]
PAGES_ACTIONS = {
    "actions/configure-pages",
    "actions/upload-pages-artifact",
    "actions/deploy-pages",
}


def tool(name: str) -> str:
    """The executable beside this interpreter (the venv's), else on PATH; skip if neither."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    found = shutil.which(name, path=search)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]' provides it)")
    return found


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


def workflow_files() -> list[Path]:
    files = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])
    assert files, f"no workflow in {WORKFLOWS}"
    return files


def load_workflow(name: str = "ci.yml") -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def all_workflows() -> dict[str, dict]:
    return {path.name: yaml.safe_load(path.read_text()) for path in workflow_files()}


def triggers(workflow: dict) -> dict:
    # PyYAML (YAML 1.1) reads the key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def all_steps() -> list[tuple[str, str, dict]]:
    """(workflow file, job id, step) for every step of every workflow."""
    return [
        (file, name, step)
        for file, workflow in all_workflows().items()
        for name, job in workflow["jobs"].items()
        for step in job.get("steps", [])
    ]


def action(step: dict) -> str:
    """The action a step uses, without the ref: ``actions/checkout``."""
    return step.get("uses", "").partition("@")[0]


def step_named(job: dict, name: str) -> dict:
    for step in job["steps"]:
        if name in (step.get("name"), step.get("id")):
            return step
    raise AssertionError(f"no step named {name!r} in {[s.get('name') for s in job['steps']]}")


def run_step(
    step: dict, cwd: Path, env: dict[str, str], stubs: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a `run:` script the way GitHub does with `shell: bash` (bash -eo pipefail), in cwd,
    with only the given env (plus PATH). ``stubs`` maps a command name to a bash script that
    stands in for it on PATH.
    """
    script = cwd / ".step.sh"
    script.write_text(step["run"])
    bin_dir = cwd / ".stubs"
    bin_dir.mkdir(exist_ok=True)
    for name, body in (stubs or {}).items():
        stub = bin_dir / name
        stub.write_text("#!/usr/bin/env bash\n" + body)
        stub.chmod(0o755)
    path = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]])
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        cwd=cwd, env={"PATH": path, "HOME": str(cwd), **env}, capture_output=True, text=True,
        timeout=60, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def catalog_ids() -> list[str]:
    return [spec.id for spec in EngineCatalog.load()]


# -- the workflows, checked by the tools CI uses ---------------------------------------------------


def test_workflows_match_the_github_workflow_schema() -> None:
    exe = tool("check-jsonschema")
    files = [str(p.relative_to(ROOT)) for p in workflow_files()]
    proc = run(exe, "--builtin-schema", "vendor.github-workflows", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing_in_the_workflows() -> None:
    exe = tool("zizmor")
    proc = run(exe, "--offline", "--no-progress", str(WORKFLOWS.relative_to(ROOT)))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_workflows_are_ci_matrix_and_fuzz() -> None:
    assert [p.name for p in workflow_files()] == ["ci.yml", "fuzz-nightly.yml", "matrix.yml"]
    assert set(load_workflow("ci.yml")["jobs"]) == {"lint", "tests"}
    assert set(load_workflow("fuzz-nightly.yml")["jobs"]) == {"fuzz"}
    assert set(load_workflow("matrix.yml")["jobs"]) == {"plan", "shard", "merge", "deploy"}


def test_every_action_is_pinned_by_full_commit_sha() -> None:
    for path in workflow_files():
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(?:-\s+)?uses:\s*(\S+)", line)
            if match and not match.group(1).startswith("./"):
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", match.group(1)), line
                # The tag the SHA stands for, for the reader and for updates.
                assert re.search(r"@[0-9a-f]{40} # v\d+(\.\d+)*$", line), line
    pins: dict[str, set[str]] = {}
    for _, _, step in all_steps():
        if "uses" in step:
            name, _, ref = step["uses"].partition("@")
            pins.setdefault(name, set()).add(ref)
    assert {name: refs for name, refs in pins.items() if len(refs) > 1} == {}, "one SHA per action"
    assert pins.keys() >= PAGES_ACTIONS


def test_workflow_steps_take_expressions_from_env_only() -> None:
    # Template injection: no ${{ }} expansion inside a shell script.
    for file, name, step in all_steps():
        assert "${{" not in step.get("run", ""), f"{file} job {name}: {step['run']}"


def test_least_privilege_and_no_persisted_credentials() -> None:
    for file, workflow in all_workflows().items():
        assert workflow["permissions"] == {"contents": "read"}, file
        for name, job in workflow["jobs"].items():
            grants = job.get("permissions", {})
            writes = {scope for scope, level in grants.items() if level == "write"}
            if (file, name) == ("matrix.yml", "deploy"):
                assert grants == {"pages": "write", "id-token": "write"}
            else:
                assert not writes, f"{file} job {name} writes {writes}"
    for file, name, step in all_steps():
        if action(step) == "actions/checkout":
            assert step["with"]["persist-credentials"] is False, f"{file} job {name}"


def test_engine_store_cache_and_debian_mirror() -> None:
    for file, workflow in all_workflows().items():
        assert workflow["env"]["RESPMATRIX_DEBIAN_MIRROR"] == "https://deb.debian.org/debian", file
        assert workflow["env"]["RESPMATRIX_HOME"] == "~/.respmatrix", file
    jobs = {
        ("ci.yml", "tests"), ("matrix.yml", "shard"), ("matrix.yml", "merge"),
        ("fuzz-nightly.yml", "fuzz"),
    }  # fmt: skip
    for file, workflow in all_workflows().items():
        for name, job in workflow["jobs"].items():
            steps = job["steps"]
            # The engine store's cache (the fuzz job also keeps hypothesis's example database).
            restores = [i for i, s in enumerate(steps) if action(s) == "actions/cache/restore"
                        and "engines" in s["with"]["path"]]  # fmt: skip
            saves = [i for i, s in enumerate(steps) if action(s) == "actions/cache/save"
                     and "engines" in s["with"]["path"]]  # fmt: skip
            assert not any(action(s) == "actions/cache" for s in steps), f"{file} job {name}"
            if (file, name) not in jobs:
                assert not restores and not saves, f"{file} job {name}"
                continue
            # Restored before the install, saved right after it (before the tests or the run).
            assert len(restores) == len(saves) == 1, f"{file} job {name}"
            restore, save = steps[restores[0]], steps[saves[0]]
            runs = [s.get("run", "") for s in steps]
            install = next(
                i for i, r in enumerate(runs) if r.startswith("respmatrix engines install")
            )
            assert restores[0] < install == saves[0] - 1, f"{file} job {name}"
            assert "hashFiles('engines/catalog.yaml')" in restore["with"]["key"]
            assert restore["with"]["path"].split() == save["with"]["path"].split() == [
                "~/.respmatrix/engines", "!~/.respmatrix/engines/downloads"
            ]  # fmt: skip
            assert save["with"]["key"] == "${{ steps.engines-cache.outputs.cache-primary-key }}"
            assert restore["id"] == "engines-cache"


# -- ci.yml: lint and the tests --------------------------------------------------------------------


def test_ci_tests_job_has_a_chromium_for_the_browser_test() -> None:
    job = load_workflow("ci.yml")["jobs"]["tests"]
    assert job["env"]["RESPMATRIX_CHROMIUM"] == "/usr/bin/google-chrome"
    runs = [step.get("run", "") for step in job["steps"]]
    assert "respmatrix engines install all" in runs


def test_ci_lint_job_checks_every_workflow() -> None:
    runs = [step.get("run", "") for step in load_workflow("ci.yml")["jobs"]["lint"]["steps"]]
    assert (
        "check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml" in runs
    )
    assert "zizmor --offline .github/workflows" in runs


# -- matrix.yml: the plan -------------------------------------------------------------------------


def matrix_workflow() -> dict:
    return load_workflow("matrix.yml")


def plan(tmp_path: Path, event: str, ref: str = "refs/heads/main", engines: str = "") -> Any:
    job = matrix_workflow()["jobs"]["plan"]
    output = tmp_path / "github_output"
    output.write_text("")
    env = {
        **{k: str(v) for k, v in job["env"].items()},
        "INPUT_ENGINES": engines,
        "GITHUB_EVENT_NAME": event,
        "GITHUB_REF": ref,
        "GITHUB_OUTPUT": str(output),
    }
    proc = run_step(step_named(job, "plan"), tmp_path, env)
    if proc.returncode != 0:
        return proc
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert set(outputs) == set(job["outputs"])
    return {**outputs, "engines": json.loads(outputs["engines"])}


def test_matrix_triggers() -> None:
    on = triggers(matrix_workflow())
    assert on["push"] == {"branches": ["main"]}
    assert "pull_request" in on
    assert on["schedule"] and all("cron" in entry for entry in on["schedule"])
    engines = on["workflow_dispatch"]["inputs"]["engines"]
    assert engines["type"] == "string" and engines["default"] == "all"


def test_the_full_shard_list_is_the_engine_catalog() -> None:
    plan_env = matrix_workflow()["jobs"]["plan"]["env"]
    assert plan_env["FULL_ENGINES"].split(",") == catalog_ids()
    shard = matrix_workflow()["jobs"]["shard"]
    assert shard["strategy"]["matrix"] == {"engine": "${{ fromJSON(needs.plan.outputs.engines) }}"}
    assert shard["strategy"]["fail-fast"] is False
    assert shard["needs"] == "plan"


@pytest.mark.parametrize("event", ["schedule", "push", "workflow_dispatch"])
def test_nightly_push_and_dispatch_run_and_publish_the_full_matrix(
    tmp_path: Path, event: str
) -> None:
    outputs = plan(tmp_path, event, engines="all" if event == "workflow_dispatch" else "")
    assert outputs == {
        "engines": catalog_ids(),
        "engine_ids": ",".join(catalog_ids()),
        "clients": "all",
        "families": "",
        "full": "true",
        "publish": "true",
    }


def test_pull_requests_run_the_quick_subset_and_publish_nothing(tmp_path: Path) -> None:
    plan_env = matrix_workflow()["jobs"]["plan"]["env"]
    assert plan_env["QUICK_ENGINES"].split(",") == QUICK_ENGINES
    assert set(QUICK_ENGINES) <= set(catalog_ids())
    families = plan_env["QUICK_FAMILIES"].split(",")
    assert families == ["strings", "keyspace"]
    assert all((ROOT / "suites" / family).is_dir() for family in families)
    outputs = plan(tmp_path, "pull_request", ref="refs/pull/6/merge")
    assert outputs["engines"] == QUICK_ENGINES
    assert (outputs["clients"], outputs["families"]) == ("raw", "strings,keyspace")
    assert (outputs["full"], outputs["publish"]) == ("false", "false")


def test_dispatch_chooses_engines_by_id_or_line(tmp_path: Path) -> None:
    outputs = plan(tmp_path, "workflow_dispatch", engines="valkey-9.1, redis")
    assert outputs["engines"] == [e for e in catalog_ids() if e.startswith("redis")] + [
        "valkey-9.1"
    ]
    assert (outputs["full"], outputs["publish"]) == ("false", "false")
    assert plan(tmp_path, "workflow_dispatch", engines="")["engines"] == catalog_ids()
    # A full run elsewhere than main is not published.
    elsewhere = plan(tmp_path, "workflow_dispatch", ref="refs/heads/topic", engines="all")
    assert (elsewhere["full"], elsewhere["publish"]) == ("true", "false")
    for bad in ("redis-6.2", "valkey-9.1,$(touch pwned)", ","):
        proc = plan(tmp_path, "workflow_dispatch", engines=bad)
        assert isinstance(proc, subprocess.CompletedProcess), bad
        assert proc.returncode == 2, bad
    assert not (tmp_path / "pwned").exists()


# -- matrix.yml: shards, merge, summary ------------------------------------------------------------


ARGS_STUB = 'printf "%s\\n" "$@" > "$HOME/args"\nmkdir -p shard && echo "{}" > shard/results.json\n'


@pytest.mark.parametrize(
    ("clients", "families", "expected"),
    [
        ("raw", "strings,keyspace", ["--clients", "raw", "--families", "strings,keyspace"]),
        ("all", "", ["--clients", "all"]),
    ],
)
def test_shard_runs_its_engine_and_records_the_exit_status(
    tmp_path: Path, clients: str, families: str, expected: list[str]
) -> None:
    job = matrix_workflow()["jobs"]["shard"]
    assert job["env"]["ENGINE"] == "${{ matrix.engine }}"
    env = {"ENGINE": "valkey-9.1", "CLIENTS": clients, "FAMILIES": families}
    # `respmatrix run` exits 1 when a case fails: the step fails, the status is kept for merge.
    proc = run_step(step_named(job, "respmatrix run"), tmp_path, env,
                    {"respmatrix": ARGS_STUB + "exit 1\n"})  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert (tmp_path / "shard" / "exit-status").read_text() == "1\n"
    args = (tmp_path / "args").read_text().split()
    assert args[:3] == ["run", "--engines", "valkey-9.1"]
    assert args[3:5] + args[7:] == expected and args[5:7] == ["--out", "shard"]

    upload = next(s for s in job["steps"] if action(s) == "actions/upload-artifact")
    assert upload["if"] == "${{ !cancelled() }}"
    assert upload["with"]["name"] == "shard-${{ matrix.engine }}"
    assert {"shard/results.json", "shard/exit-status"} <= set(upload["with"]["path"].split())


def test_merge_downloads_the_shards_merges_renders_and_uploads() -> None:
    job = matrix_workflow()["jobs"]["merge"]
    assert job["needs"] == ["plan", "shard"]
    assert job["if"] == "${{ !cancelled() && needs.plan.result == 'success' }}"
    assert job["permissions"] == {"contents": "read", "pages": "read"}
    uses = [action(s) for s in job["steps"] if "uses" in s]
    assert "actions/download-artifact" in uses and "actions/upload-artifact" in uses
    runs = [s.get("run", "") for s in job["steps"]]
    assert "respmatrix report merge -o merged/results.json shards/*/results.json" in runs
    assert "respmatrix report render merged/results.json --out merged" in runs
    pages = next(s for s in job["steps"] if action(s) == "actions/configure-pages")
    assert pages["id"] == "pages" and pages["continue-on-error"] is True
    fetch = step_named(job, "fetch the last published results")
    assert fetch["env"] == {"BASE_URL": "${{ steps.pages.outputs.base_url }}"}
    assert "curl " in fetch["run"] and "results.json" in fetch["run"]


def test_a_variant_shard_runs_and_caches_its_base_engines_install(tmp_path: Path) -> None:
    job = matrix_workflow()["jobs"]["shard"]
    step = step_named(job, "install")
    restore = step_named(job, "engines-cache")
    assert job["steps"].index(step) < job["steps"].index(restore)
    assert restore["with"]["key"].startswith("engines-${{ steps.install.outputs.id }}-")
    specs = list(EngineCatalog.load())
    assert any(spec.base for spec in specs), "the catalog has no variant to check"
    for spec in specs:
        output = tmp_path / f"output-{spec.id}"
        proc = run_step(step, tmp_path, {"ENGINE": spec.id, "GITHUB_OUTPUT": str(output)})
        assert proc.returncode == 0, proc.stderr
        assert output.read_text() == f"id={spec.install_id}\n", spec.id


def test_merge_measures_the_migration_paths_between_merge_and_render() -> None:
    job = matrix_workflow()["jobs"]["merge"]
    runs = [s.get("run", "") for s in job["steps"]]
    merge = runs.index("respmatrix report merge -o merged/results.json shards/*/results.json")
    migrate = runs.index(step_named(job, "respmatrix migrate")["run"])
    render = runs.index("respmatrix report render merged/results.json --out merged")
    install = runs.index("respmatrix engines install all")
    assert install < merge < migrate < render
    # The engine store is the one ci.yml's tests job fills: one cache entry for both.
    restore = step_named(job, "engines-cache")
    tests_restore = step_named(load_workflow("ci.yml")["jobs"]["tests"], "engines-cache")
    assert restore["with"]["key"] == tests_restore["with"]["key"]


MIGRATE_STUB = 'printf "%s\\n" "$@" > "$HOME/args"\nexit "$MIGRATE_EXIT"\n'


@pytest.mark.parametrize(("exit_status", "step_status"), [(0, 0), (1, 0), (2, 2)])
def test_migrate_step_measures_the_base_engines_and_keeps_unmeasured_cells(
    tmp_path: Path, exit_status: int, step_status: int
) -> None:
    step = step_named(matrix_workflow()["jobs"]["merge"], "respmatrix migrate")
    env = {"ENGINE_IDS": "redis-7.2,redis-7.2+stack,valkey-9.1", "MIGRATE_EXIT": str(exit_status)}
    proc = run_step(step, tmp_path, env, {"respmatrix": MIGRATE_STUB})
    assert proc.returncode == step_status, proc.stdout + proc.stderr
    args = (tmp_path / "args").read_text().split()
    assert args == [
        "migrate", "--engines", "redis-7.2,valkey-9.1", "--no-install", "--out", "merged"
    ]  # fmt: skip
    status = tmp_path / "migrate-status.txt"
    if exit_status == 0:
        assert status.read_text() == "Measured between redis-7.2 valkey-9.1.\n"
    if exit_status == 1:
        assert "could not be measured" in status.read_text()
        assert "::warning" in proc.stdout


def test_migrate_step_skips_a_run_of_variants_only(tmp_path: Path) -> None:
    step = step_named(matrix_workflow()["jobs"]["merge"], "respmatrix migrate")
    env = {"ENGINE_IDS": "redis-7.4+stack", "MIGRATE_EXIT": "9"}
    proc = run_step(step, tmp_path, env, {"respmatrix": MIGRATE_STUB})
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "args").exists()
    assert "no base engine" in (tmp_path / "migrate-status.txt").read_text()


def test_migrate_step_merges_the_migration_family_into_the_merged_results(
    tmp_path: Path,
) -> None:
    """The real command on one engine (its control pair, three methods; about 9 s)."""
    from respmatrix.store import EngineStore

    spec = EngineCatalog.load().get("valkey-9.1")
    if not EngineStore().is_installed(spec):
        pytest.skip("valkey-9.1 is not installed (respmatrix engines install valkey-9.1)")
    merged = tmp_path / "merged"
    merged.mkdir()
    step = step_named(matrix_workflow()["jobs"]["merge"], "respmatrix migrate")
    env = {k: v for k, v in os.environ.items() if k.startswith(("RESPMATRIX_", "XDG_"))}
    proc = run_step(step, tmp_path, {**env, "HOME": os.environ["HOME"], "ENGINE_IDS": "valkey-9.1"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    doc = json.loads((merged / "results.json").read_text())
    cells = {(r["producer"], r["engine"], r["method"]) for r in doc["results"]}
    assert cells == {
        ("valkey-9.1", "valkey-9.1", m) for m in ("dump-restore", "rdb", "replication")
    }
    assert {r["family"] for r in doc["results"]} == {"migration"}
    assert "Migration paths" in (merged / "matrix.md").read_text()


def test_merge_fails_when_a_shard_did_not_finish(tmp_path: Path) -> None:
    job = matrix_workflow()["jobs"]["merge"]
    for engine, status in (("redis-7.2", "0"), ("valkey-9.1", "1"), ("valkey-8.0", "3")):
        shard = tmp_path / "shards" / f"shard-{engine}"
        shard.mkdir(parents=True)
        (shard / "results.json").write_text("{}")
        (shard / "exit-status").write_text(status + "\n")
    env = {"ENGINE_IDS": "redis-7.2,valkey-9.1,valkey-8.0,redis-8.2"}
    assert run_step(step_named(job, "check that every planned shard finished"), tmp_path, env)\
        .returncode == 0  # fmt: skip
    missing = (tmp_path / "shards-missing.txt").read_text()
    assert "valkey-8.0" in missing and "redis-8.2" in missing
    assert "redis-7.2" not in missing and "valkey-9.1" not in missing
    proc = run_step(step_named(job, "fail if a shard did not finish"), tmp_path, env)
    assert proc.returncode == 1 and "redis-8.2" in proc.stderr


def test_fetch_says_when_nothing_was_published(tmp_path: Path) -> None:
    step = step_named(matrix_workflow()["jobs"]["merge"], "fetch the last published results")
    proc = run_step(step, tmp_path, {"BASE_URL": "", "FULL": "true"})
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "last.json").exists()
    assert "no published results" in (tmp_path / "last-status.txt").read_text()


def test_a_partial_run_is_compared_with_the_published_cells_it_ran(tmp_path: Path) -> None:
    """Published cells of engines, families or migration producers a partial run left out are
    not compared (they would read as missing, i.e. worse)."""

    def cell(engine: str, family: str, producer: str | None = None) -> dict:
        cell = {"case": f"{family}/c", "engine": engine, "client": "raw", "protocol": "resp2",
                "family": family, "outcome": "pass"}  # fmt: skip
        return {**cell, "producer": producer} if producer else cell

    published = tmp_path / "site"
    published.mkdir()
    old = [
        cell("redis-7.2", "strings"), cell("redis-7.4", "strings"), cell("redis-7.2", "hashes"),
        cell("redis-7.2", "migration", "redis-7.2"), cell("redis-7.2", "migration", "redis-7.4"),
    ]  # fmt: skip
    (published / "results.json").write_text(json.dumps({"results": old}))
    new = [cell("redis-7.2", "strings"), cell("redis-7.2", "migration", "redis-7.2")]
    (tmp_path / "merged").mkdir()
    (tmp_path / "merged" / "results.json").write_text(json.dumps({"results": new}))
    step = step_named(matrix_workflow()["jobs"]["merge"], "fetch the last published results")
    proc = run_step(step, tmp_path, {"BASE_URL": published.as_uri(), "FULL": "false"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "last.json").read_text())["results"] == new
    assert "partial run" in (tmp_path / "last-status.txt").read_text()


# The stand-in respmatrix for the summary: compare finds a regression (exit 1), diff a difference.
SUMMARY_STUB = """\
case "$1 $2" in
  "report compare") echo "WORSE (1 cells): $3 -> $4"; exit 1 ;;
  "diff redis-7.2") echo "cutover $*"; exit 1 ;;
esac
exit 9
"""


@pytest.mark.parametrize("published", [True, False])
def test_summary_shows_regressions_and_the_cutover_view_without_failing(
    tmp_path: Path, published: bool
) -> None:
    step = step_named(matrix_workflow()["jobs"]["merge"], "summary")
    (tmp_path / "merged").mkdir()
    (tmp_path / "shards-missing.txt").write_text("")
    if published:
        (tmp_path / "last.json").write_text("{}")
        (tmp_path / "last-status.txt").write_text("Compared with the last published results.\n")
    else:
        (tmp_path / "last-status.txt").write_text("No GitHub Pages site yet.\n")
    (tmp_path / "migrate-status.txt").write_text("Measured between redis-7.2 valkey-9.1.\n")
    summary = tmp_path / "summary.md"
    env = {
        "GITHUB_STEP_SUMMARY": str(summary), "ENGINE_IDS": "redis-7.2,valkey-9.1",
        "CLIENTS": "all", "FAMILIES": "", "FULL": "true", "PUBLISH": "true",
    }  # fmt: skip
    proc = run_step(step, tmp_path, env, {"respmatrix": SUMMARY_STUB})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = summary.read_text()
    assert "cutover diff redis-7.2 valkey-9.1 --results merged/results.json" in text
    assert "Migration paths: Measured between redis-7.2 valkey-9.1." in text
    if published:
        assert "WORSE (1 cells): last.json -> merged/results.json" in text
        assert "got worse" in text and "::warning" in proc.stdout
    else:
        assert "No GitHub Pages site yet." in text and "WORSE" not in text
    assert (tmp_path / "merged" / "cutover.txt").exists()


# -- matrix.yml: GitHub Pages ----------------------------------------------------------------------


def test_only_the_deploy_job_publishes_to_pages() -> None:
    workflow = matrix_workflow()
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == ["plan", "merge"]
    condition = deploy["if"]
    for part in ("!cancelled()", "needs.merge.result == 'success'",
                 "needs.plan.outputs.publish == 'true'", "github.ref == 'refs/heads/main'",
                 "github.event_name != 'pull_request'"):  # fmt: skip
        assert part in condition
    assert deploy["environment"]["name"] == "github-pages"
    assert deploy["concurrency"] == {"group": "pages", "cancel-in-progress": False}
    uses = [action(s) for s in deploy["steps"] if "uses" in s]
    assert uses == [
        "actions/download-artifact", "actions/upload-pages-artifact", "actions/deploy-pages"
    ]  # fmt: skip
    for name, job in workflow["jobs"].items():
        if name != "deploy":
            assert not {action(s) for s in job["steps"]} & {
                "actions/upload-pages-artifact", "actions/deploy-pages"
            }, name  # fmt: skip
            assert "environment" not in job, name
    assert workflow["concurrency"]["cancel-in-progress"] == (
        "${{ github.event_name == 'pull_request' }}"
    )


def test_the_site_is_the_page_the_matrix_and_the_results(tmp_path: Path) -> None:
    deploy = matrix_workflow()["jobs"]["deploy"]
    reports = tmp_path / "reports"
    reports.mkdir()
    for name in ("index.html", "matrix.md", "results.json", "compare.txt", "cutover.txt"):
        (reports / name).write_text(name)
    proc = run_step(next(s for s in deploy["steps"] if "run" in s), tmp_path, {})
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == [
        "index.html", "matrix.md", "results.json"
    ]  # fmt: skip
    upload = next(s for s in deploy["steps"] if action(s) == "actions/upload-pages-artifact")
    assert upload["with"]["path"] == "site"


# -- one test command everywhere -------------------------------------------------------------------


def _strip_comment(line: str) -> str:
    return re.sub(r"\s+#.*$", "", line).strip()


def readme_test_command() -> str | None:
    """The first ``python -m pytest`` line of a fenced block, the quick start's if it has one."""
    if not README.exists():
        return None
    text = README.read_text()
    quick = re.search(r"^#+\s*quick\s*start.*?(?=^#+\s|\Z)", text, re.I | re.M | re.S)
    for part in (quick.group(0) if quick else "", text):
        inside = False
        for line in part.splitlines():
            if line.lstrip().startswith(("```", "~~~")):
                inside = not inside
                continue
            command = _strip_comment(line).removeprefix("$ ")
            if inside and command.startswith(PYTEST_PREFIX):
                return command
    return None


def ci_run_test_command() -> str:
    for line in CI_RUN.read_text().splitlines():
        if line.lstrip().startswith("#"):
            continue
        index = line.find(PYTEST_PREFIX)
        if index >= 0:
            return _strip_comment(line[index:])
    raise AssertionError(f"{CI_RUN} runs no `{PYTEST_PREFIX}` command")


def test_ci_run_is_strict_bash_and_installs_everything() -> None:
    text = CI_RUN.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert "pip install --quiet -e '.[dev]'" in text
    assert "respmatrix engines install all" in text
    assert "ruff check ." in text and "ruff format --check ." in text
    proc = run("bash", "-n", str(CI_RUN))
    assert proc.returncode == 0, proc.stderr


def test_ci_run_uses_the_readme_test_command() -> None:
    expected = readme_test_command()
    if expected is None:
        pytest.skip(f"README.md has no fenced `{PYTEST_PREFIX}` line yet")
    assert ci_run_test_command() == expected


def test_workflow_tests_job_uses_the_ci_run_test_command() -> None:
    runs = [step.get("run", "") for step in load_workflow("ci.yml")["jobs"]["tests"]["steps"]]
    assert ci_run_test_command() in runs


def test_tox_envs() -> None:
    config = configparser.ConfigParser(interpolation=None)
    config.read(TOX_INI)
    assert config["testenv"]["extras"].split() == ["dev"]

    def commands(section: str) -> list[str]:
        return [c.strip() for c in config[section]["commands"].strip().splitlines()]

    assert commands("testenv") == ["pytest tests {posargs}"]
    lint = commands("testenv:lint")
    assert lint[:2] == ["ruff check .", "ruff format --check ."]
    assert any(c.startswith("check-jsonschema --builtin-schema vendor.github-workflows")
               for c in lint)  # fmt: skip
    assert any(c.startswith("zizmor --offline") for c in lint)
    assert commands("testenv:matrix") == ["respmatrix run --engines all {posargs}"]
    assert commands("testenv:bench") == ["python benchmarks/bench.py {posargs}"]
    envs = config["tox"]["env_list"].split()
    assert envs == ["py", "lint"]


# -- fuzz-nightly.yml ------------------------------------------------------------------------------


def test_fuzz_nightly_runs_the_long_fuzz_and_keeps_its_example_database(tmp_path: Path) -> None:
    workflow = load_workflow("fuzz-nightly.yml")
    on = triggers(workflow)
    assert on["schedule"] and "workflow_dispatch" in on
    job = workflow["jobs"]["fuzz"]
    runs = [s.get("run", "") for s in job["steps"]]
    assert "respmatrix engines install all" in runs
    caches = [s for s in job["steps"] if action(s).startswith("actions/cache/")]
    fuzz_db = [s for s in caches if s["with"]["path"] == "~/.respmatrix/fuzz"]
    assert [action(s) for s in fuzz_db] == ["actions/cache/restore", "actions/cache/save"]
    assert fuzz_db[0]["with"]["restore-keys"] == "fuzz-examples-"
    # No seed given: today's date; the exit status is kept and returned (1: findings).
    stub = 'printf "%s\\n" "$@" > "$HOME/args"\nexit 1\n'
    proc = run_step(step_named(job, "respmatrix fuzz"), tmp_path,
                    {"BUDGET": "60", "INPUT_SEED": ""}, {"respmatrix": stub})  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert (tmp_path / "fuzz" / "exit-status").read_text() == "1\n"
    args = (tmp_path / "args").read_text().split()
    assert args[:5] == ["fuzz", "--engines", "all", "--budget", "60"]
    assert re.fullmatch(r"20\d{6}", args[args.index("--seed") + 1])
    assert args[-4:] == ["--out", "fuzz", "--emit-case", "fuzz/cases"]
    proc = run_step(step_named(job, "respmatrix fuzz"), tmp_path,
                    {"BUDGET": "60", "INPUT_SEED": "42"}, {"respmatrix": stub})  # fmt: skip
    assert (tmp_path / "args").read_text().split()[6] == "42"
