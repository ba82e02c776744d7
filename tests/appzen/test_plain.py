"""Plain-data validation: the wire models' exact rules and bytes, without model instances."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError, model_validator

from pipeline.appzen.models import Invoice, StatusSyncRequest, json_bytes, payload_json
from pipeline.appzen.plain import plain_validator
from tests.appzen.test_models import load

PLAIN = plain_validator(Invoice)


@pytest.fixture
def sample() -> dict[str, Any]:
    """The create page's sample request, its ``"rate": "10a"`` typo corrected."""
    data = load("create_sample_request.json")
    data["invoice_lines"][0]["line_vat_breakdown"][0]["rate"] = 10
    return data


def _errors(error: ValidationError) -> list[tuple[str, str, str]]:
    return [(".".join(map(str, e["loc"])), e["type"], e["msg"]) for e in error.errors()]


def test_the_sample_gives_the_same_bytes_as_the_model(sample: dict[str, Any]) -> None:
    data = PLAIN.validate_python(sample)
    assert isinstance(data, dict)
    assert isinstance(data["invoice_lines"][0], dict)
    assert json_bytes(data) == payload_json(Invoice.model_validate(sample))


def test_fields_not_given_stay_absent_and_given_nulls_stay(sample: dict[str, Any]) -> None:
    sample.pop("supplier_name", None)
    sample["invoice_type"] = None
    data = PLAIN.validate_python(sample)
    assert "supplier_name" not in data
    assert "purchase_order_number" not in data["invoice_lines"][0] or (
        "purchase_order_number" in sample["invoice_lines"][0]
    )
    assert data["invoice_type"] is None


def test_values_are_coerced_as_the_model_coerces_them(sample: dict[str, Any]) -> None:
    sample["total_amount"]["amount"] = "12.50"
    sample["invoice_lines"][0]["line_number"] = "3"
    data = PLAIN.validate_python(sample)
    assert data["total_amount"]["amount"] == Decimal("12.50")
    assert data["invoice_lines"][0]["line_number"] == 3


@pytest.mark.parametrize(
    "spoil",
    [
        lambda d: d["invoice_lines"][0]["line_vat_breakdown"][0].update(rate="10a"),
        lambda d: d.pop("invoice_number"),
        lambda d: d["total_amount"].update(amount="NaN"),
        lambda d: d.update(invoice_date="31.12.2024"),
        lambda d: d.update(invoice_type="BILL"),
        lambda d: d["invoice_lines"][0]["unit_price"].pop("currency"),
        lambda d: d["invoice_lines"].append({"line_number": -1}),
        lambda d: d.update(custom_json={"x": object()}),
    ],
    ids=["rate", "missing", "nan", "date", "enum", "nested-missing", "bad-line", "custom-json"],
)
def test_errors_are_the_models_errors(sample: dict[str, Any], spoil: Any) -> None:
    spoil(sample)
    with pytest.raises(ValidationError) as model_error:
        Invoice.model_validate(copy.deepcopy(sample))
    with pytest.raises(ValidationError) as plain_error:
        PLAIN.validate_python(sample)
    assert _errors(plain_error.value) == _errors(model_error.value)


money = st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**9))


@given(
    amounts=st.lists(money, min_size=1, max_size=4),
    text=st.text(max_size=20),
    extra=st.one_of(st.integers(), money, st.text(max_size=5), st.none()),
)
def test_any_valid_invoice_gives_the_models_bytes(
    amounts: list[Decimal], text: str, extra: object
) -> None:
    data = {
        "invoice_id": "A1",
        "invoice_number": text or "N",
        "invoice_date": "2024-12-31",
        "entity_id": "E1",
        "supplier_id": "S1",
        "total_amount": {"amount": amounts[0], "currency": "EUR"},
        "invoice_lines": [
            {
                "line_number": n,
                "line_description": text,
                "quantity": amount,
                "unit_price": {"amount": amount, "currency": "EUR"},
                "total_amount": {"amount": amount, "currency": "EUR", "note": extra},
            }
            for n, amount in enumerate(amounts)
        ],
        "zz_unknown": extra,
    }
    try:
        expected = payload_json(Invoice.model_validate(copy.deepcopy(data)))
    except (ValidationError, ValueError):
        with pytest.raises((ValidationError, ValueError)):
            json_bytes(PLAIN.validate_python(data))
        return
    assert json_bytes(PLAIN.validate_python(data)) == expected


def test_a_model_validator_is_refused_not_skipped() -> None:
    with pytest.raises(TypeError, match="model-level validator"):
        plain_validator(StatusSyncRequest)

    class Checked(BaseModel):
        a: int

        @model_validator(mode="before")
        @classmethod
        def _before(cls, data: Any) -> Any:
            return data

    with pytest.raises(TypeError, match="Checked"):
        plain_validator(Checked)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimals_are_written_exactly_without_exponent(number: Decimal) -> None:
    assert json_bytes([number]) == f"[{number:f}]".encode()


CLOSED = plain_validator(Invoice, extras=False)
_values = st.one_of(
    st.none(), st.integers(-2, 3), money, st.text(max_size=4), st.sampled_from(["", "NaN", "EUR"])
)


@given(
    amounts=st.lists(st.one_of(money, _values), min_size=1, max_size=3),
    texts=st.lists(_values, min_size=4, max_size=4),
    drop=st.sets(st.sampled_from(["invoice_number", "currency", "unit_price", "invoice_date"])),
)
def test_without_extra_keys_the_closed_validator_is_the_full_one(
    amounts: list[object], texts: list[object], drop: set[str]
) -> None:
    """``extras=False`` on input with no key beyond the fields: the same output, the same
    errors (values of any type, missing fields, nested objects and lists)."""
    data: dict[str, Any] = {
        "invoice_id": "A1",
        "invoice_number": texts[0],
        "invoice_date": texts[1] if "invoice_date" in drop else "2024-12-31",
        "entity_id": "E1",
        "supplier_id": texts[2],
        "total_amount": {"amount": amounts[0], "currency": "EUR"},
        "invoice_lines": [
            {
                "line_number": n,
                "line_description": texts[3],
                "quantity": amount,
                "unit_price": {"amount": amount, "currency": texts[n % 4]},
                "total_amount": {"amount": amount, "currency": "EUR"},
                "line_vat_breakdown": [{"code": texts[0], "rate": amount}],
                "custom_json": {"k": amount},
            }
            for n, amount in enumerate(amounts)
        ],
        "vat_amount": {"amount": amounts[-1]},
    }
    if "invoice_number" in drop:
        del data["invoice_number"]
    if "unit_price" in drop:
        del data["invoice_lines"][0]["unit_price"]
    if "currency" in drop:
        del data["total_amount"]["currency"]
    try:
        expected: object = PLAIN.validate_python(copy.deepcopy(data))
    except ValidationError as error:
        expected = _errors(error)
    try:
        found: object = CLOSED.validate_python(data)
    except ValidationError as error:
        found = _errors(error)
    assert found == expected
    if isinstance(found, dict):
        assert json_bytes(found) == json_bytes(expected)
