"""Shipped files are found through the installed package; in a checkout (editable install) the
repository's top-level folders serve, and pyproject ships exactly those folders in the wheel."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

import pipeline
from pipeline.resources import (
    SHIPPED,
    SHIPPED_FOLDERS,
    ResourceError,
    package_dir,
    shipped_path,
    shipped_root,
)

REPO = Path(__file__).resolve().parents[1]


def test_a_checkout_serves_its_own_top_level_folders() -> None:
    assert not (Path(pipeline.__file__).parent / SHIPPED).exists(), "editable: nothing copied"
    assert shipped_root() == REPO
    assert shipped_path("sql", "sample_erp", "extract.sql") == REPO / "sql/sample_erp/extract.sql"


def test_the_wheel_ships_the_folders_the_code_reads() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    included = project["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert included == {folder: f"pipeline/{SHIPPED}/{folder}" for folder in SHIPPED_FOLDERS}
    assert all((REPO / folder).is_dir() for folder in SHIPPED_FOLDERS)


def test_package_data_is_found_inside_the_package() -> None:
    found = package_dir("pipeline.staging", "alembic")
    assert found == Path(pipeline.__file__).parent / "staging" / "alembic"


def test_a_missing_file_names_itself_and_the_fix() -> None:
    with pytest.raises(ResourceError, match=r"nowhere\.yaml: not shipped .*; reinstall it"):
        shipped_path("mappings", "nowhere.yaml")
    with pytest.raises(ResourceError, match=r"missing from the installed pipeline\.staging"):
        package_dir("pipeline.staging", "nowhere")
