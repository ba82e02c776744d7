"""The AppZen models against the vendor samples, and our decisions where the pages disagree."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.appzen.models import (
    CreateResponse,
    ErrorBody,
    Invoice,
    InvoiceDetails,
    StatusSyncRequest,
    payload_json,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text(), parse_float=Decimal)
    return data


@pytest.fixture
def sample() -> dict[str, Any]:
    """The create page's sample request with its one typo (``"rate": "10a"``) corrected."""
    data = load("create_sample_request.json")
    data["invoice_lines"][0]["line_vat_breakdown"][0]["rate"] = 10
    return data


def error_locs(error: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in error.errors()}


def test_sample_rate_typo_is_rejected_at_its_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Invoice.model_validate(load("create_sample_request.json"))
    assert error_locs(caught.value) == {"invoice_lines.0.line_vat_breakdown.0.rate"}


def test_sample_request_round_trips_without_losing_a_field(sample: dict[str, Any]) -> None:
    invoice = Invoice.model_validate(sample)
    assert json.loads(payload_json(invoice), parse_float=Decimal) == sample


def test_unknown_keys_of_the_sample_pass_through(sample: dict[str, Any]) -> None:
    invoice = Invoice.model_validate(sample)
    out = json.loads(payload_json(invoice))
    for key in ("accounting_date_override", "payment_type_override", "default_tax_option"):
        assert out[key] == sample[key]
    assert out["invoice_lines"][0]["tax_applicability_id"] == "2A3BAtLine"


def test_money_is_an_exact_json_number_keeping_its_scale(sample: dict[str, Any]) -> None:
    sample["total_amount"]["amount"] = Decimal("1234567890123.10")
    body = payload_json(Invoice.model_validate(sample))
    assert b'"total_amount":{"amount":1234567890123.10,"currency":"USD"}' in body
    assert b'"amount":200.00' in body


def test_text_that_looks_like_a_number_stays_text(sample: dict[str, Any]) -> None:
    sample["invoice_description"] = "123.45"
    sample["custom_json"] = {"ratio": Decimal("0.50"), "label": "0.50"}
    out = payload_json(Invoice.model_validate(sample))
    assert b'"invoice_description":"123.45"' in out
    assert b'"custom_json":{"ratio":0.50,"label":"0.50"}' in out


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_amounts_are_rejected(sample: dict[str, Any], value: str) -> None:
    sample["total_amount"]["amount"] = Decimal(value)
    with pytest.raises(ValidationError) as caught:
        Invoice.model_validate(sample)
    assert error_locs(caught.value) == {"total_amount.amount"}


@pytest.mark.parametrize(
    "field",
    ["invoice_id", "invoice_number", "invoice_date", "entity_id", "supplier_id", "total_amount"],
)
def test_required_header_fields(sample: dict[str, Any], field: str) -> None:
    del sample[field]
    with pytest.raises(ValidationError) as caught:
        Invoice.model_validate(sample)
    assert error_locs(caught.value) == {field}


@pytest.mark.parametrize(
    "field", ["line_number", "line_description", "quantity", "unit_price", "total_amount"]
)
def test_required_line_fields(sample: dict[str, Any], field: str) -> None:
    del sample["invoice_lines"][0][field]
    with pytest.raises(ValidationError) as caught:
        Invoice.model_validate(sample)
    assert error_locs(caught.value) == {f"invoice_lines.0.{field}"}


@pytest.mark.parametrize("field", ["address_line1", "country", "zip"])
def test_required_address_fields(sample: dict[str, Any], field: str) -> None:
    del sample["shipping_address"][field]
    with pytest.raises(ValidationError) as caught:
        Invoice.model_validate(sample)
    assert error_locs(caught.value) == {f"shipping_address.{field}"}


@pytest.mark.parametrize(
    ("path", "good", "bad"),
    [
        (("invoice_type",), "CREDIT_NOTE", "CREDIT"),
        (("po_policy", "po_match_type"), "PO_POLICY_TWO_WAY_MATCH", "TWO_WAY"),
        (("billing_address", "address_type"), "REMIT_TO", "HOME"),
        (("segments", 0, "appzen_segment_type"), "OTHER_SEGMENT", "PROJECT"),
        (("options", "strict_invoice_number"), "1", "yes"),
    ],
)
def test_enums_are_checked(
    sample: dict[str, Any], path: tuple[str | int, ...], good: str, bad: str
) -> None:
    sample["po_policy"] = {"po_backed": True}
    sample["options"] = {}
    sample["segments"] = [
        {
            "code": "4000",
            "name": "Travel",
            "segment_type": "ACCOUNT",
            "segment_name_id": "1",
            "appzen_segment_type": "ACCOUNT_SEGMENT",
        }
    ]
    for value, ok in ((good, True), (bad, False)):
        data = copy.deepcopy(sample)
        target: Any = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        if ok:
            Invoice.model_validate(data)
        else:
            with pytest.raises(ValidationError) as caught:
                Invoice.model_validate(data)
            assert error_locs(caught.value) == {".".join(map(str, path))}


def test_empty_invoice_type_means_not_given(sample: dict[str, Any]) -> None:
    assert sample["invoice_type"] == ""
    assert Invoice.model_validate(sample).invoice_type == ""


@pytest.mark.parametrize("value", ["2021-02-30", "01/01/2021", "2021-01-01T25:00:00Z", "yesterday"])
def test_dates_must_be_iso(sample: dict[str, Any], value: str) -> None:
    sample["invoice_date"] = value
    with pytest.raises(ValidationError, match="not an ISO-8601 date"):
        Invoice.model_validate(sample)


def test_vat_rate_must_be_positive(sample: dict[str, Any]) -> None:
    sample["invoice_lines"][0]["line_vat_breakdown"][0]["rate"] = 0
    with pytest.raises(ValidationError) as caught:
        Invoice.model_validate(sample)
    assert error_locs(caught.value) == {"invoice_lines.0.line_vat_breakdown.0.rate"}


def test_get_details_sample_round_trips() -> None:
    data = load("get_details_sample_response.json")
    details = InvoiceDetails.model_validate(data)
    assert json.loads(payload_json(details), parse_float=Decimal) == data
    assert details.supplier_address is not None
    assert details.supplier_address.address is not None
    assert details.supplier_address.address.site_id == "913838"


def test_create_response() -> None:
    parsed = CreateResponse.model_validate({"uuid": "5fc0", "status": "UPDATED"})
    assert parsed.status == "UPDATED"
    with pytest.raises(ValidationError):
        CreateResponse.model_validate({"uuid": "5fc0", "status": "DONE"})


def test_status_sync_created_needs_invoice_id_and_status() -> None:
    with pytest.raises(ValidationError, match="CREATED needs invoice_id and invoice_status"):
        StatusSyncRequest.model_validate(
            {"appzen_invoice_state": "CREATED", "timestamp": "2020-11-01T11:01:00Z"}
        )


def test_status_sync_error_needs_error_data() -> None:
    with pytest.raises(ValidationError, match="ERROR needs error_data"):
        StatusSyncRequest.model_validate(
            {"appzen_invoice_state": "ERROR", "timestamp": "2020-11-01T11:01:00Z"}
        )


def test_status_sync_hyphenated_keys_are_read_and_written_with_underscores() -> None:
    body = StatusSyncRequest.model_validate(
        {
            "appzen-invoice-state": "CREATED",
            "invoice-id": "794441",
            "invoice-status": "POSTED",
            "timestamp": "2020-11-01T11:01:00Z",
        }
    )
    assert json.loads(payload_json(body)) == {
        "appzen_invoice_state": "CREATED",
        "invoice_id": "794441",
        "invoice_status": "POSTED",
        "timestamp": "2020-11-01T11:01:00Z",
    }


def test_status_sync_sample_of_the_page_parses() -> None:
    sample = {
        "invoice_id": "string",
        "invoice_status": "string",
        "appzen_invoice_state": "CREATED",
        "timestamp": "2020-11-01T11:01:00Z",
        "error_data": {"message": "string", "status": "string", "exception": "string"},
    }
    assert json.loads(payload_json(StatusSyncRequest.model_validate(sample))) == sample


def test_error_body_code_and_detail() -> None:
    body = ErrorBody.model_validate(
        {
            "timestamp": "2019-01-17T16:12:45.977+0000",
            "status": 404,
            "error": "Not Found",
            "message": "Error code : 17e3338d - The resource you specified cannot be not found",
        }
    )
    assert body.error_code == "17e3338d"
    assert body.detail == "The resource you specified cannot be not found"
    assert ErrorBody(message="plain text").error_code is None
    assert ErrorBody(message="plain text").detail == "plain text"
