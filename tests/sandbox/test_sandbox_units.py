"""The sandbox's pure parts: token bucket, exact JSON, error bodies, get-details shape, paths."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from pipeline.appzen.models import ErrorBody, Invoice
from pipeline.devkit.sandbox import Knobs, PathError, SandboxConfigError, SandboxState
from pipeline.devkit.sandbox.knobs import TokenBucket, parse_knobs, retry_after_header
from pipeline.devkit.sandbox.wire import (
    BodyError,
    describe_validation,
    details_view,
    dumps_exact,
    error_body,
    error_timestamp,
    loads_exact,
    with_path_set,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_starts_full_and_refills_continuously() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, clock)

    assert [bucket.take() for _ in range(2)] == [None, None]
    assert bucket.take() == pytest.approx(0.5)
    clock.now += 0.25
    assert bucket.take() == pytest.approx(0.25)
    clock.now += 0.25
    assert bucket.take() is None
    clock.now += 60
    assert [bucket.take() for _ in range(3)] == [None, None, pytest.approx(0.5)]


def test_a_slow_bucket_holds_one_token() -> None:
    clock = FakeClock()
    bucket = TokenBucket(0.5, clock)

    assert bucket.capacity == 1.0
    assert bucket.take() is None
    assert bucket.take() == pytest.approx(2.0)


@pytest.mark.parametrize(("wait", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2")])
def test_retry_after_is_whole_seconds_at_least_one(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header


def test_seeded_rolls_repeat() -> None:
    def rolls(seed: int) -> list[bool]:
        state = SandboxState(Knobs(seed=seed))
        return [state.roll(0.5) for _ in range(32)]

    assert rolls(1) == rolls(1)
    assert rolls(1) != rolls(2)
    assert SandboxState().roll(0.0) is False
    assert SandboxState().roll(1.0) is True


def test_knobs_refuse_nonsense_naming_every_bad_knob() -> None:
    with pytest.raises(ValidationError):
        Knobs(fail_rate=1.5)
    with pytest.raises(SandboxConfigError) as caught:
        parse_knobs({"rate": -1, "seed": "x", "latency": 5})

    message = str(caught.value)
    assert message.startswith("invalid sandbox knobs: rate: Input should be greater than 0; ")
    assert "seed: Input should be a valid integer" in message
    assert "latency: Extra inputs are not permitted" in message


def test_dumps_exact_keeps_the_scale_of_every_decimal() -> None:
    value = {
        "a": Decimal("200.00"),
        "b": [Decimal("-0.10"), Decimal("1E+2"), Decimal("3")],
        "c": "200.00",
        "d": 1,
        "e": True,
        "f": None,
        "g": "caf\u00e9",
    }

    text = dumps_exact(value)

    assert text == (
        b'{"a": 200.00, "b": [-0.10, 100, 3], "c": "200.00", "d": 1, "e": true, '
        b'"f": null, "g": "caf\xc3\xa9"}'
    )
    assert json.loads(text, parse_float=Decimal)["a"] == Decimal("200.00")


def test_dumps_exact_refuses_what_is_not_json() -> None:
    with pytest.raises(TypeError):
        dumps_exact({"a": Decimal("NaN")})
    with pytest.raises(ValueError):
        dumps_exact({"a": float("inf")})
    with pytest.raises(TypeError):
        dumps_exact({"a": object()})


def test_loads_exact_reads_decimals_and_refuses_constants() -> None:
    assert loads_exact(b'{"a": 1.50, "b": 2}') == {"a": Decimal("1.50"), "b": 2}
    for raw in (b"[NaN]", b"[Infinity]", b"[-Infinity]"):
        with pytest.raises(BodyError, match="not a JSON number"):
            loads_exact(raw)
    with pytest.raises(BodyError, match="line 2 column 1"):
        loads_exact(b'{"a": 1,\n}')
    with pytest.raises(BodyError, match="not valid JSON"):
        loads_exact(b"[" * 100_000)


def test_error_body_is_appzens_shape() -> None:
    parsed = ErrorBody.model_validate_json(error_body(429, "slow down"))

    assert parsed.status == 429
    assert parsed.error == "Too Many Requests"
    assert parsed.detail == "slow down"
    assert parsed.error_code is not None
    assert len(parsed.error_code) == 8
    moment = datetime(2019, 1, 17, 16, 12, 45, 977_123, tzinfo=UTC)
    assert error_timestamp(moment) == "2019-01-17T16:12:45.977+0000"


def test_describe_validation_caps_the_list() -> None:
    with pytest.raises(ValidationError) as caught:
        Invoice.model_validate({"invoice_lines": [{}] * 20})

    text = describe_validation(caught.value, limit=3)

    assert text.startswith("invoice_id: Field required; invoice_number: Field required; ")
    assert text.count("; ") == 3
    assert text.endswith("more errors")


def test_describe_validation_shortens_a_huge_message() -> None:
    with pytest.raises(ValidationError) as caught:
        Invoice.model_validate({"invoice_date": "x" * 10_000})

    parts = describe_validation(caught.value).split("; ")

    assert parts[0].startswith("invoice_id: Field required")
    (date_error,) = [part for part in parts if part.startswith("invoice_date: ")]
    assert len(date_error) < 400


def test_details_view_nests_only_the_four_named_addresses() -> None:
    flat = {"address_line1": "1 Main", "zip": "1", "country": "US", "site_name": "HQ"}
    other = [{"address_line1": "2 Side", "zip": "2", "country": "US"}]
    payload: dict[str, Any] = {
        "invoice_id": "1",
        "remit_to_address": flat,
        "other_addresses": other,
    }

    view = details_view(payload)

    assert view["remit_to_address"] == {
        "address_type": None,
        "address": {
            "address_type": None,
            "address": {"address_line1": "1 Main", "zip": "1", "country": "US"},
            "site_id": None,
            "site_name": "HQ",
            "custom_json": None,
        },
    }
    assert view["other_addresses"] is other
    assert payload["remit_to_address"] is flat


def test_with_path_set_copies_and_walks_lists() -> None:
    payload: dict[str, Any] = {"lines": [{"q": 1}, {"q": 2}], "name": "a"}

    changed = with_path_set(payload, "lines.1.q", Decimal("5.0"))
    removed = with_path_set(payload, "lines.0", None, delete=True)

    assert changed["lines"][1]["q"] == Decimal("5.0")
    assert removed["lines"] == [{"q": 2}]
    assert payload == {"lines": [{"q": 1}, {"q": 2}], "name": "a"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("", "empty"),
        ("lines.", "empty segment"),
        ("lines.2.q", "lines.2: '2' is not an index of a list of 2 items"),
        ("lines.-1", "not an index"),
        ("name.first", "name.first: name is a str, not an object or list"),
        ("name.first.x", "name.first: name is a str"),
        ("lines.0.q.r", "lines.0.q.r: lines.0.q is a int"),
    ],
)
def test_with_path_set_names_where_a_path_fails(path: str, message: str) -> None:
    payload = {"lines": [{"q": 1}, {"q": 2}], "name": "a"}

    with pytest.raises(PathError, match=message):
        with_path_set(payload, path, 1)
