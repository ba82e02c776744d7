"""The layer check: the import contracts in pyproject.toml ([tool.importlinter]) hold, cover every
package, and break when a module imports upward."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"

# What a flow may import besides the job API: the shared modules at the bottom and the report.
FLOWS_MAY_IMPORT = {
    "pipeline.jobs",
    "pipeline.settings",
    "pipeline.errors",
    "pipeline.redact",
    "pipeline.report",
    "pipeline.summary",
    "pipeline.runtime",
    "pipeline.resources",
}

# A throwaway module per contract, each importing the way that contract forbids, and the line of
# lint-imports' report that must name it.
PLANTED = {
    "pipeline/runtime/probe_upward.py": (
        "import pipeline.load.sync",
        "pipeline.runtime.probe_upward -> pipeline.load.sync",
    ),
    "pipeline/load/probe_stage.py": (
        "import pipeline.status.push",
        "pipeline.load.probe_stage -> pipeline.status.push",
    ),
    "pipeline/staging/probe_client.py": (
        "import pipeline.appzen.client",
        "pipeline.staging.probe_client -> pipeline.appzen.client",
    ),
    "pipeline/load/probe_devkit.py": (
        "import pipeline.devkit.sandbox",
        "pipeline.load.probe_devkit -> pipeline.devkit.sandbox",
    ),
    "pipeline/devkit/probe_pipeline.py": (
        "import pipeline.load.sync",
        "pipeline.devkit.probe_pipeline -> pipeline.load.sync",
    ),
    "pipeline/staging/probe_flows.py": (
        "import flows.common",
        "pipeline.staging.probe_flows -> flows.common",
    ),
    "flows/probe_stage.py": ("import pipeline.staging", "flows.probe_stage -> pipeline.staging"),
    "pipeline/extract/probe_cycle.py": ("import pipeline.mapping.engine", ".extract -> .mapping"),
    "pipeline/probe_unplaced.py": ("import pipeline.settings", "- pipeline.probe_unplaced"),
}


def _contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    return {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}


def _top_level_packages() -> set[str]:
    root = REPO / "pipeline"
    modules = {p.stem for p in root.glob("*.py") if p.name != "__init__.py"}
    packages = {p.parent.name for p in root.glob("*/__init__.py")}
    return {f"pipeline.{name}" for name in modules | packages}


def _lint_imports(house: Path) -> tuple[int, str]:
    """Run import-linter's ``lint-imports`` on the ``pipeline`` and ``flows`` in ``house``."""
    env = {**os.environ, "PYTHONPATH": str(house), "COLUMNS": "200", "NO_COLOR": "1"}
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-cache", "pyproject.toml"],
        cwd=house,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout + result.stderr


def test_the_import_contracts_hold() -> None:
    returncode, text = _lint_imports(REPO)
    assert returncode == 0, text


def test_every_package_is_placed_for_the_flows() -> None:
    forbidden = set(_contracts()["flows-thin"]["forbidden_modules"])
    packages = _top_level_packages()
    assert not forbidden & FLOWS_MAY_IMPORT
    unplaced = packages - forbidden - FLOWS_MAY_IMPORT
    assert not unplaced, (
        f"{sorted(unplaced)}: add each to forbidden_modules of the 'flows-thin' contract in "
        "pyproject.toml, or to FLOWS_MAY_IMPORT in tests/test_layers.py if flows may use it"
    )


def _copy_of_the_house(tmp_path: Path) -> Path:
    house = tmp_path / "house"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("pipeline", "flows"):
        shutil.copytree(REPO / package, house / package, ignore=ignore)
    shutil.copy(PYPROJECT, house / "pyproject.toml")
    for path, (line, _) in PLANTED.items():
        (house / path).write_text(f'"""Throwaway."""\n\n{line}\n', encoding="utf-8")
    return house


def test_an_upward_import_breaks_every_contract(tmp_path: Path) -> None:
    returncode, text = _lint_imports(_copy_of_the_house(tmp_path))
    assert returncode == 1, text
    contracts = _contracts().values()
    assert f"Contracts: 0 kept, {len(contracts)} broken." in text, text
    missing = [named for _, named in PLANTED.values() if named not in text]
    assert not missing, text


@pytest.mark.parametrize("contract", sorted(_contracts()))
def test_each_contract_says_how_to_mend_it(contract: str) -> None:
    assert _contracts()[contract].get("broken_contract_guidance"), contract
