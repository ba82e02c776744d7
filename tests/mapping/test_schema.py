"""The committed JSON Schema is the generated one, and shipped mappings follow it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.mapping import load_mapping
from pipeline.mapping.schema import SCHEMA_PATH, main, schema_text
from pipeline.mapping.yamlread import read_yaml

MAPPINGS = SCHEMA_PATH.parent
NOT_MAPPINGS = {"connectors.yaml"}  # the connectors file (mappings/CONNECTORS.md)
SHIPPED = sorted(path for path in MAPPINGS.glob("*.yaml") if path.name not in NOT_MAPPINGS)


def test_the_committed_schema_is_up_to_date() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), (
        "mappings/mapping.schema.json is stale: run python -m pipeline.mapping.schema"
    )
    assert main(["--check"]) == 0


def test_the_schema_offers_appzen_fields_and_the_column_shorthand() -> None:
    schema = json.loads(schema_text())
    definitions = schema["$defs"]
    assert "supplier_id" in definitions["InvoiceFields"]["properties"]
    assert "supplier_id" in definitions["InvoiceFields"]["required"]
    assert "invoice_id" not in definitions["InvoiceFields"].get("required", [])
    assert definitions["InvoiceFields"]["additionalProperties"] is False
    assert definitions["ValueSpec"]["anyOf"][0]["type"] == "string"
    assert set(schema["required"]) == {"source", "invoice_key", "header", "invoice_lines"}


def test_shipped_mappings_are_found() -> None:
    assert {path.stem for path in SHIPPED} >= {"sample_erp", "flat_csv", "merchant"}


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_mappings_point_editors_at_the_schema_and_load(path: Path) -> None:
    assert path.read_text(encoding="utf-8").startswith(
        "# yaml-language-server: $schema=mapping.schema.json\n"
    )
    spec = load_mapping(path)
    assert spec.name == path.stem


@pytest.mark.parametrize("path", SHIPPED, ids=[path.stem for path in SHIPPED])
def test_shipped_mappings_validate_against_the_json_schema(path: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = read_yaml(path, str(path)).data
    plain = json.loads(
        json.dumps(
            data, default=lambda value: float(value) if isinstance(value, Decimal) else str(value)
        )
    )
    jsonschema.Draft202012Validator(json.loads(schema_text())).validate(plain)


def test_the_schema_rejects_what_the_model_rejects() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(json.loads(schema_text()))
    bad = {
        "source": {"kind": "csv", "path": "x.csv"},
        "invoice_key": "k",
        "header": {"invoice_numbr": "k"},
        "invoice_lines": {},
    }
    messages = [error.message for error in validator.iter_errors(bad)]
    assert any("invoice_numbr" in message for message in messages)
