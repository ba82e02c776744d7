"""Mapping files → MappingSpec: the invalid-file table, column checks, safe YAML, sources."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.extract.base import SourceConfigError
from pipeline.extract.csv import CsvSource
from pipeline.extract.json import JsonSource
from pipeline.extract.sql import SqlSource
from pipeline.mapping import MappingFileError, load_mapping
from pipeline.mapping.leaves import ValueSpec
from pipeline.mapping.yamlread import MAX_BYTES, YamlRefused, parse_yaml
from tests.mapping.conftest import MINIMAL, Load, Write

INVALID = Path(__file__).parent / "invalid"
CASES = sorted(INVALID.glob("*.yaml"))


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_invalid_file_reports_exactly_the_expected_messages(path: Path) -> None:
    expected = path.with_suffix(".txt").read_text(encoding="utf-8").replace("{file}", str(path))
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    assert caught.value.errors == expected.splitlines()
    assert str(caught.value) == expected.rstrip("\n")


def test_the_invalid_table_covers_every_required_case() -> None:
    names = {path.stem for path in CASES}
    required = {
        "unknown_keys", "wrong_types", "unknown_appzen_field", "unknown_transform",
        "bad_date_format", "billion_laughs", "python_tag", "alias", "cycle", "not_a_mapping",
        "empty", "duplicate_keys",
    }  # fmt: skip
    assert required <= names
    assert all(path.with_suffix(".txt").exists() for path in CASES)


def test_a_minimal_mapping_loads_with_its_file_name_as_name(load: Load) -> None:
    spec = load(MINIMAL)
    assert spec.name == "m"
    assert spec.invoice_key == "inv"
    assert spec.watermark_column is None
    assert spec.file.endswith("m.yaml")


def test_columns_are_checked_with_did_you_mean(write: Write) -> None:
    text = MINIMAL.replace(
        "source: {kind: csv, path: x.csv}", "source: {kind: sql, query: sql/sample_erp/extract.sql}"
    )
    text = text.replace("supplier_id: sup", "supplier_id: suplier_no")
    path = write(text)
    columns = ["inv", "date", "supplier_no", "total", "cur", "desc", "qty", "price", "amount"]
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path, columns=columns)
    assert caught.value.errors == [
        f"{path}:8 header.supplier_id.column: no column 'suplier_no' in "
        "sql/sample_erp/extract.sql; did you mean 'supplier_no'?"
    ]


def test_every_missing_column_is_reported_at_once(write: Write) -> None:
    path = write(MINIMAL)
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path, columns=["inv", "date"])
    messages = caught.value.errors
    assert len(messages) == 9  # sup, total, desc, qty, price, amount and cur three times
    assert messages[0] == f"{path}:8 header.supplier_id.column: no column 'sup' in x.csv"
    assert any("invoice_lines.unit_price.currency.column" in message for message in messages)


def test_template_and_custom_json_columns_are_checked(load: Load) -> None:
    text = MINIMAL + "  custom_json: {columns: [colour]}\n"
    text = text.replace("supplier_id: sup", 'supplier_id: {template: "{sup}-{site}"}')
    with pytest.raises(MappingFileError) as caught:
        load(text, columns=["inv", "date", "sup", "total", "cur", "desc", "qty", "price", "amount"])
    assert [message.split(" ", 1)[1] for message in caught.value.errors] == [
        "header.supplier_id.template: no column 'site' in x.csv",
        "invoice_lines.custom_json.columns.0: no column 'colour' in x.csv; did you mean 'cur'?",
    ]


def test_lines_source_columns_are_checked_per_source(load: Load) -> None:
    text = MINIMAL.replace(
        "invoice_key: inv",
        "invoice_key: inv\nlines_source: {kind: csv, path: lines.csv}\nlines_key: line_inv",
    )
    header_columns = ["inv", "date", "sup", "total", "cur"]
    spec = load(
        text, columns=header_columns, line_columns=["line_inv", "desc", "qty", "price", "amount"]
    )
    assert spec.line_key == "line_inv"
    with pytest.raises(MappingFileError) as caught:
        load(text, columns=header_columns, line_columns=["inv", "desc", "qty", "price", "amount"])
    assert caught.value.errors[0].endswith("lines_key: no column 'line_inv' in x.csv or lines.csv")


def test_a_file_over_the_size_cap_is_refused(write: Write) -> None:
    path = write("# " + "x" * MAX_BYTES + "\n")
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    assert caught.value.errors == [
        f"{path}: {MAX_BYTES + 3} bytes is more than the {MAX_BYTES} a mapping may have"
    ]


def test_a_file_not_in_utf8_is_refused_with_its_line(write: Write) -> None:
    path = write("x")
    path.write_bytes(b"source: {kind: csv}\nname: M\xfcller\n")
    with pytest.raises(MappingFileError) as caught:
        load_mapping(path)
    assert caught.value.errors == [f"{path}:2: not UTF-8 (byte offset 27): save the file as UTF-8"]


def test_a_missing_file_is_a_mapping_file_error(tmp_path: Path) -> None:
    with pytest.raises(MappingFileError, match="cannot read the mapping file"):
        load_mapping(tmp_path / "nope.yaml")


def test_yaml_scalars_follow_the_core_schema_and_keep_lines() -> None:
    document = parse_yaml(
        "a: NO\nb: yes\nc: 1.50\nd: 2024-01-31\ne: true\nf: ~\ng: 007\nlist:\n  - x: 1\n", "f.yaml"
    )
    assert document.data == {
        "a": "NO", "b": "yes", "c": Decimal("1.50"), "d": "2024-01-31", "e": True, "f": None,
        "g": 7, "list": [{"x": 1}],
    }  # fmt: skip
    assert str(document.data["c"]) == "1.50"
    assert document.line_of(("list", 0, "x")) == 9
    assert document.line_of(("list", 0, "nope")) == 9
    assert document.line_of(("zzz",)) == 1


def test_nothing_in_a_mapping_executes(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'a: !!python/object/apply:os.system ["touch {marker}"]\n'
    with pytest.raises(YamlRefused):
        parse_yaml(text, "f.yaml")
    assert not marker.exists()


def test_the_shorthand_string_means_column() -> None:
    assert ValueSpec.model_validate("supplier_no").column == "supplier_no"


def test_open_source_builds_each_source_kind(load: Load, tmp_path: Path) -> None:
    csv_spec = load(MINIMAL.replace("path: x.csv}", 'path: "exports/*.csv", delimiter: ";"}'))
    assert isinstance(csv_spec.open_source(tmp_path), CsvSource)
    json_spec = load(
        MINIMAL.replace("{kind: csv, path: x.csv}", "{kind: json, path: x.json, records: invoices}")
    )
    assert isinstance(json_spec.open_source(), JsonSource)
    sql_spec = load(MINIMAL.replace("{kind: csv, path: x.csv}", "{kind: sql, query: sql/x.sql}"))
    source = sql_spec.open_source(tmp_path, "sqlite:///erp.db")
    assert isinstance(source, SqlSource)
    assert sql_spec.open_lines_source(tmp_path, "sqlite://") is None


def test_a_sql_source_without_a_database_url_stops_with_the_fix(load: Load) -> None:
    spec = load(MINIMAL.replace("{kind: csv, path: x.csv}", "{kind: sql, query: sql/x.sql}"))
    with pytest.raises(SourceConfigError) as caught:
        spec.open_source(None, None)
    assert str(caught.value) == (
        f"{spec.file}:2 source: no database URL: set ERP_DATABASE_URL "
        "(or `url:` without a password)"
    )


def test_relative_paths_resolve_against_the_project_directory(load: Load, tmp_path: Path) -> None:
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "x.csv").write_text(",".join(["inv", "date"]) + "\n", encoding="utf-8")
    spec = load(MINIMAL.replace("path: x.csv", "path: samples/x.csv"))
    assert spec.open_source().columns() == ["inv", "date"]
