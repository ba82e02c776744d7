"""A mapping may be named instead of pathed: ``--mapping sample_erp`` finds the file in
APPZEN_MAPPINGS_DIR, then among the shipped mappings; a path that exists is always itself."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.mapping import MappingFileError, load_mapping
from pipeline.mapping.loader import locate_mapping
from pipeline.resources import shipped_path, shipped_root

SHIPPED = shipped_path("mappings", "sample_erp.yaml")


@pytest.fixture(autouse=True)
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory that is not the checkout, and no APPZEN_MAPPINGS_DIR set."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("APPZEN_MAPPINGS_DIR", raising=False)
    return work


def test_a_name_finds_the_shipped_mapping_and_its_query() -> None:
    assert locate_mapping(Path("sample_erp")) == SHIPPED
    assert locate_mapping(Path("sample_erp.yaml")) == SHIPPED
    spec = load_mapping(Path("sample_erp"))
    assert spec.name == "sample_erp"
    assert spec._project_dir == shipped_root()  # its sql/sample_erp/extract.sql is shipped too
    assert (spec._project_dir / spec.source.query).is_file()  # type: ignore[union-attr]


def test_the_checkout_relative_path_finds_the_shipped_mapping_elsewhere() -> None:
    assert locate_mapping(Path("mappings/sample_erp.yaml")) == SHIPPED


def test_an_existing_path_wins(elsewhere: Path) -> None:
    own = elsewhere / "sample_erp.yaml"
    shutil.copy(SHIPPED, own)
    assert locate_mapping(Path("sample_erp.yaml")) == Path("sample_erp.yaml")
    assert locate_mapping(Path("sample_erp")) == own


def test_the_configured_folder_is_searched_before_the_shipped_mappings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "configured"
    folder.mkdir()
    shutil.copy(SHIPPED, folder / "sample_erp.yaml")
    monkeypatch.setenv("APPZEN_MAPPINGS_DIR", str(folder))
    assert locate_mapping(Path("sample_erp"), folder) == folder / "sample_erp.yaml"
    spec = load_mapping(Path("sample_erp"))
    assert spec._project_dir == tmp_path, "relative paths resolve beside the configured folder"


def test_an_unknown_name_says_where_it_looked(tmp_path: Path, elsewhere: Path) -> None:
    with pytest.raises(MappingFileError) as caught:
        locate_mapping(Path("nightly_ap"), tmp_path / "configured")
    assert caught.value.errors == [
        f"nightly_ap: no such mapping file; looked for nightly_ap and nightly_ap.yaml in the "
        f"working directory {elsewhere}, APPZEN_MAPPINGS_DIR {tmp_path / 'configured'}, the "
        f"shipped mappings {shipped_root() / 'mappings'}, the shipped files {shipped_root()}; "
        "give the file's path, or set APPZEN_MAPPINGS_DIR to the folder that holds it "
        "(shipped: flat_csv, merchant, merchant_api, sample_erp)"
    ]


def test_a_missing_absolute_path_is_not_searched(tmp_path: Path) -> None:
    missing = tmp_path / "sample_erp.yaml"
    assert locate_mapping(missing) == missing
    with pytest.raises(MappingFileError, match="cannot read the mapping file"):
        load_mapping(missing)
