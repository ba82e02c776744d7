"""``mapping check``'s query rounds: the query run once as an incremental run and once as a
backfill window bind it, so a failure of night 2 shows on day 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipeline.devkit.sample_erp import GenerationReport
from pipeline.extract.base import ExtractError
from pipeline.jobs.preview import mapped_results, query_rounds
from pipeline.mapping.engine import MappedInvoice
from pipeline.mapping.errors import MappingError
from pipeline.mapping.loader import load_mapping
from pipeline.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
ROUNDS = ["an incremental run (:since bound)", "a backfill window (:since and :until bound)"]


def _project(tmp_path: Path, where: str) -> Path:
    """The sample ERP mapping in a project of its own, its query's WHERE clause replaced."""
    (tmp_path / "mappings").mkdir()
    (tmp_path / "sql" / "sample_erp").mkdir(parents=True)
    mapping = tmp_path / "mappings" / "sample_erp.yaml"
    shutil.copy(REPO / "mappings" / "sample_erp.yaml", mapping)
    query = (REPO / "sql" / "sample_erp" / "extract.sql").read_text(encoding="utf-8")
    head, _, _ = query.partition("WHERE (:since")
    (tmp_path / "sql" / "sample_erp" / "extract.sql").write_text(
        head + where + "\nORDER BY h.invoice_key, l.line_number\n", encoding="utf-8"
    )
    return mapping


def test_a_good_query_runs_both_rounds(tmp_path: Path, erp: tuple[str, GenerationReport]) -> None:
    mapping = _project(tmp_path, "WHERE (:since IS NULL OR h.updated_at > :since) -- :until")
    settings = load_settings(erp_database_url=erp[0])
    assert query_rounds(load_mapping(mapping), settings) == ROUNDS


def test_a_query_failing_only_with_since_bound_fails_the_check(
    tmp_path: Path, erp: tuple[str, GenerationReport]
) -> None:
    where = "WHERE (:since IS NULL OR json(:since) IS NOT NULL)"
    mapping = _project(tmp_path, where)
    spec, settings = load_mapping(mapping), load_settings(erp_database_url=erp[0])
    first_night = list(mapped_results(spec, settings))  # the first (full) run works
    assert sum(isinstance(r, MappedInvoice) for r in first_night) > 0
    with pytest.raises(ExtractError) as caught:
        query_rounds(spec, settings)
    message = str(caught.value)
    assert message.startswith(f"{spec.file}: sql/sample_erp/extract.sql on sqlite:///")
    assert "fails on an incremental run (:since bound): malformed JSON" in message


def test_a_file_source_has_no_rounds() -> None:
    spec = load_mapping(REPO / "mappings" / "flat_csv.yaml")
    assert query_rounds(spec, load_settings()) == []


def test_a_text_watermark_a_timestamp_cannot_compare_with_fails_the_check_with_its_fix(
    tmp_path: Path, erp: tuple[str, GenerationReport]
) -> None:
    """A watermark column holding ``2021-12-31T09:30:00`` text on SQLite: a bound timestamp
    compares as ``2021-12-31 ...`` text and a backfill loses a day; the check names the fix."""
    mapping = _project(tmp_path, "WHERE (:since IS NULL OR h.updated_at > :since)")
    spec, settings = load_mapping(mapping), load_settings(erp_database_url=erp[0])
    with pytest.raises(MappingError) as caught:
        query_rounds(spec, settings, sample="2021-12-31T09:30:00")
    assert str(caught.value) == (
        f"{spec.file}:16 watermark_column: the watermark column updated_at holds text "
        "('2021-12-31T09:30:00'), which a bound timestamp does not compare with correctly on "
        'sqlite; declare  watermark_format: "%Y-%m-%dT%H:%M:%S"  in the mapping, so :since '
        "and :until are bound as text of the same shape"
    )
    assert query_rounds(spec, settings, sample="2021-12-31 09:30:00") == ROUNDS  # SQLite's own


def test_a_declared_watermark_format_binds_the_rounds_as_text(
    tmp_path: Path, erp: tuple[str, GenerationReport]
) -> None:
    mapping = _project(tmp_path, "WHERE (:since IS NULL OR h.updated_at > :since)")
    text = mapping.read_text(encoding="utf-8").replace(
        "watermark_column: updated_at", 'watermark_column: updated_at\nwatermark_format: "%Y%m%d"'
    )
    mapping.write_text(text, encoding="utf-8")
    spec, settings = load_mapping(mapping), load_settings(erp_database_url=erp[0])
    assert query_rounds(spec, settings, sample="20211231") == ROUNDS
