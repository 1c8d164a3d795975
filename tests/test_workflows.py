"""The CI definitions: the GitHub workflow is valid and passes zizmor, and the three ways of running
CI (``.ci/run``, ``tox.ini``, the workflow) run the same commands as the README says.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from respmatrix.catalog import EngineCatalog

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
CI_RUN = ROOT / ".ci" / "run"
TOX_INI = ROOT / "tox.ini"
README = ROOT / "README.md"
PYTEST_PREFIX = "python -m pytest"


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


def load_workflow() -> dict:
    return yaml.safe_load((WORKFLOWS / "ci.yml").read_text())


# -- the workflow, checked by the tools CI uses ----------------------------------------------------


def test_workflows_match_the_github_workflow_schema() -> None:
    exe = tool("check-jsonschema")
    files = [str(p.relative_to(ROOT)) for p in workflow_files()]
    proc = run(exe, "--builtin-schema", "vendor.github-workflows", *files)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_zizmor_finds_nothing_in_the_workflows() -> None:
    exe = tool("zizmor")
    proc = run(exe, "--offline", "--no-progress", str(WORKFLOWS.relative_to(ROOT)))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_action_is_pinned_by_full_commit_sha() -> None:
    for path in workflow_files():
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(?:-\s+)?uses:\s*(\S+)", line)
            if match and not match.group(1).startswith("./"):
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", match.group(1)), line


def test_matrix_job_covers_exactly_the_catalog_engines() -> None:
    engines = load_workflow()["jobs"]["matrix"]["strategy"]["matrix"]["engine"]
    assert engines == [spec.id for spec in EngineCatalog.load()]


def test_workflow_steps_take_matrix_values_from_env_only() -> None:
    # Template injection: no ${{ }} expansion inside a shell script.
    for name, job in load_workflow()["jobs"].items():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"job {name}: {step['run']}"


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
    runs = [step.get("run", "") for step in load_workflow()["jobs"]["tests"]["steps"]]
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
