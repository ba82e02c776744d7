"""The hostile-input table: each case is what an operator's files hold and exactly what
``appzen-etl`` must say about it (exit code, the error line, the failed-row report, what AppZen
receives). test_hostile_input.py runs every case through the command line."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.cli.support import FLAT_COLUMNS, invoice_row
from tests.reliability.operator import EXPORT, MAPPING

SYNC = ("sync", "-m", MAPPING)
INVALID_MAPPINGS = Path(__file__).resolve().parents[1] / "mapping" / "invalid"
HEADER = ";".join(FLAT_COLUMNS)
SEPARATORS = "(decimal separator ',', thousands separator '.')"


@dataclass(frozen=True, slots=True)
class Failed:
    """One row the failed-row report must hold."""

    key: str
    row: int
    rule: str
    message: str


@dataclass(frozen=True)
class Case:
    """Files to write, the command, and everything the operator must see."""

    files: Mapping[str, bytes]
    args: tuple[str, ...] = SYNC
    code: int = 0
    error: str | Callable[[Path], str] | None = None
    """The whole of stderr (fatal cases), or a function of the project folder giving it."""
    failed: tuple[Failed, ...] = ()
    """Report rows that must be there; no other invoice key may be in the report."""
    sent: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """invoice_id → fields (dotted paths) AppZen must hold; AppZen holds no other invoice."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Settings the command runs with, on top of the project's."""


def line(row: Mapping[str, str]) -> str:
    """One row of the flat export."""
    return ";".join(row[column] for column in FLAT_COLUMNS)


def export(*rows: Mapping[str, str] | str, end: str = "\n", encoding: str = "utf-8") -> bytes:
    """The flat export with the header and ``rows`` (dicts, or raw lines)."""
    lines = [HEADER, *(r if isinstance(r, str) else line(r) for r in rows)]
    return (end.join(lines) + end).encode(encoding)


def rows(*invoices: Mapping[str, str]) -> dict[str, bytes]:
    """The project files for an export of ``invoices`` (CSV-quoted where needed)."""
    quoted = [{k: _quote(v) for k, v in invoice.items()} for invoice in invoices]
    return {EXPORT: export(*quoted)}


def _quote(value: str) -> str:
    if any(c in value for c in ';"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def fatal(message: str) -> str:
    """stderr of a command refused before it started a run: ``message`` (one line)."""
    return f"error: {message}\n"


def stopped(message: str) -> str:
    """stderr of a run the source stopped (the run is recorded failed with ``message``)."""
    return f"stopped: {message}\n"


def bad_value(column: str, value: str, row: int = 2) -> Case:
    """INV-1 with ``column`` set to ``value``: one failed row naming the field."""
    return Case(rows(invoice_row("INV-1", **{column: value})), code=1)


def not_decimal(value: str, shown: str | None = None) -> Case:
    """A unit price that is not a decimal number in the export's European format."""
    message = (
        f"invoice_lines.0.unit_price.amount: {shown or value} is not a decimal number {SEPARATORS}"
    )
    return Case(
        rows(invoice_row("INV-1", unit_price=value)),
        code=1,
        failed=(Failed("INV-1", 2, "decimal", message),),
    )


def not_a_date(value: str) -> Case:
    """An invoice date that is not a ``%d.%m.%Y`` date."""
    message = f"invoice_date: {value} is not a date in the format %d.%m.%Y"
    return Case(
        rows(invoice_row("INV-1", invoice_date=value)),
        code=1,
        failed=(Failed("INV-1", 2, "date_format", message),),
    )


def kept_as_text(value: str) -> Case:
    """A supplier name that looks like code: sent as data, exactly, executed nowhere."""
    return Case(
        rows(invoice_row("INV-1", supplier_name=value)), sent={"INV-1": {"supplier_name": value}}
    )


def _cp1252_error(project: Path) -> str:
    offset = (project / EXPORT).read_bytes().index("ü".encode("cp1252"))
    return stopped(
        f"{EXPORT}:2: not valid utf-8-sig at byte offset {offset} (invalid start "
        "byte); set `encoding:` for this source to the export's encoding (often cp1252 or latin-1)"
    )


def _missing_export(project: Path) -> str:
    return stopped(
        f"CSV source '{EXPORT}': {project / EXPORT} does not exist; check the source path "
        f"(relative to {project}) and that the export has run"
    )


INV1, INV2 = invoice_row("INV-1"), invoice_row("INV-2")
TEN_MB = "x" * 10_000_000

CSV_CASES: dict[str, Case] = {
    "ragged: a row with an extra cell": Case(
        {EXPORT: export(INV1, line(INV2) + ";surplus")},
        code=2,
        error=stopped(
            f"{EXPORT}:3: row has 24 cells but the header has 23; check the delimiter (';') and "
            "quoting ('\"') of that row, or set `delimiter:` / `quotechar:` for this source"
        ),
    ),
    "ragged: a row cut short is padded, then fails its required fields": Case(
        {EXPORT: export(INV1, ";".join(list(INV2.values())[:10]))},
        code=1,
        failed=(
            Failed(
                "INV-2",
                3,
                "required",
                "invoice_lines.0.quantity: required by AppZen, but column quantity is blank",
            ),
            Failed(
                "INV-2",
                3,
                "required",
                "total_amount.amount: required by AppZen, but column gross_total is blank",
            ),
        ),
        sent={"INV-1": {}},
    ),
    "wrong encoding: cp1252 read as utf-8": Case(
        {EXPORT: export(INV1, encoding="cp1252")}, code=2, error=_cp1252_error
    ),
    "wrong encoding: utf-16 read as utf-8": Case(
        {EXPORT: export(INV1, encoding="utf-16")},
        code=2,
        error=stopped(
            f"{EXPORT}:1: not valid utf-8-sig at byte offset 0 (invalid start byte); set "
            "`encoding:` for this source to the export's encoding (often cp1252 or latin-1)"
        ),
    ),
    "a UTF-8 byte-order mark is skipped": Case(
        {EXPORT: export(INV1, encoding="utf-8-sig")},
        sent={"INV-1": {"invoice_number": "INV-1", "supplier_name": "Acme Bürobedarf GmbH"}},
    ),
    "a NUL byte is refused, not stripped": Case(
        {EXPORT: export(INV1, invoice_row("INV-2", line_text="To\x00ner"))},
        code=2,
        error=stopped(
            f"{EXPORT}:3: the file contains a NUL byte (\\0); the export is probably truncated, "
            "binary or UTF-16 (then set `encoding: utf-16`). The pipeline refuses it rather than "
            "change finance data silently: fix or re-run the export"
        ),
    ),
    "an unclosed quote": Case(
        {EXPORT: export(INV1, invoice_row("INV-2", line_text='"Toner'))},
        code=2,
        error=stopped(
            f"{EXPORT}:3: a quoted cell ('\"') starting in this row is never closed; fix the "
            "quoting in the export or set `quotechar:`"
        ),
    ),
    "an embedded newline is one cell, and rows after it keep their numbers": Case(
        rows(invoice_row("INV-1", line_text="Toner\nHP 26A"), invoice_row("INV-2", net_total="x")),
        code=1,
        failed=(
            Failed(
                "INV-2",
                3,
                "decimal",
                f"total_amount_excluding_vat.amount: x is not a decimal number {SEPARATORS}",
            ),
        ),
        sent={"INV-1": {"invoice_lines.0.line_description": "Toner\nHP 26A"}},
    ),
    "blank lines keep the row numbers after them": Case(
        {EXPORT: export(INV1, "", "", invoice_row("INV-2", net_total="x"))},
        code=1,
        failed=(
            Failed(
                "INV-2",
                5,
                "decimal",
                f"total_amount_excluding_vat.amount: x is not a decimal number {SEPARATORS}",
            ),
        ),
        sent={"INV-1": {}},
    ),
    "CRLF line ends": Case({EXPORT: export(INV1, end="\r\n")}, sent={"INV-1": {}}),
    "a delimiter inside a quoted cell": Case(
        rows(invoice_row("INV-1", line_text="Toner; black")),
        sent={"INV-1": {"invoice_lines.0.line_description": "Toner; black"}},
    ),
    "a 10 MB cell: AppZen refuses that invoice (413), the others go": Case(
        rows(invoice_row("INV-1", line_text=TEN_MB), INV2),
        code=1,
        failed=(
            Failed(
                "INV-1",
                2,
                "appzen_413",
                "AppZen rejected the invoice: body over 5242880 bytes: send one smaller invoice",
            ),
        ),
        sent={"INV-2": {}},
    ),
    "an empty file": Case(
        {EXPORT: b""},
        code=2,
        error=stopped(
            f"{EXPORT}:1: the file is empty or starts with a blank line; a CSV export needs a "
            "header line naming its columns"
        ),
    ),
    "a header and no rows": Case({EXPORT: export()}),
    "a column named twice": Case(
        {EXPORT: export().replace(b";unit;", b";status;")},
        code=2,
        error=stopped(
            f"{EXPORT}:1: column name(s) ['status'] appear more than once in the header; rename "
            "them in the export so each column can be mapped"
        ),
    ),
    "a column the mapping needs is missing": Case(
        {EXPORT: export(";".join(list(INV1.values())[:-1])).replace(b";cost_center", b"")},
        code=2,
        error=fatal(
            f"{MAPPING}:63 invoice_lines.segments.1.code.column: no column 'cost_center' in CSV "
            f"{EXPORT}"
        ),
    ),
    "the export is missing": Case({}, code=2, error=_missing_export),
    "rows of one invoice apart": Case(
        rows(INV1, INV2, invoice_row("INV-1", line_no="2")),
        code=1,
        failed=(  # neither part is sent: AppZen would hold INV-1 without its second line
            Failed(
                "INV-1",
                2,
                "contiguity",
                f"more rows of invoice 'INV-1' come later in the source, at {EXPORT}:4, after "
                "other invoices; neither part is sent",
            ),
            Failed(
                "INV-1",
                4,
                "contiguity",
                f"rows of invoice 'INV-1' are not together in the source: its first rows are at "
                f"{EXPORT}:2; neither part is sent",
            ),
        ),
        sent={"INV-2": {}},
    ),
}

_IN_90_DAYS = (date.today() + timedelta(days=90)).isoformat()
"""The latest invoice date the default ``checks.invoice_date`` accepts (today + 90 days)."""

VALUE_CASES: dict[str, Case] = {
    "number 1,234.56 in a 1.234,56 export": not_decimal("1,234.56"),
    "number 1e309": not_decimal("1e309"),
    "number NaN": not_decimal("NaN"),
    "number Infinity": not_decimal("Infinity"),
    "number -inf": not_decimal("-inf"),
    "number with a space as thousands separator": not_decimal("1 234,56"),
    "number in accounting parentheses": not_decimal("(100,00)"),
    "number in hex": not_decimal("0x10"),
    "number with two decimal separators": not_decimal("12.34.56"),
    "number in Arabic-Indic digits": not_decimal("١٢٣"),
    "number with 400 digits": not_decimal("1" * 400, shown="1" * 200 + "… (400 chars)"),
    "number 1.234,56 is read as 1234.56": Case(
        rows(  # amounts consistent, so the AP checks (#15) pass and only the parsing is tried
            invoice_row(
                "INV-1",
                unit_price="1.234,56",
                line_net="1.234,56",
                net_total="1.234,56",
                vat_total="234,57",
                gross_total="1.469,13",
            )
        ),
        sent={"INV-1": {"invoice_lines.0.unit_price.amount": Decimal("1234.56")}},
    ),
    "a blank required number": Case(
        rows(invoice_row("INV-1", unit_price="")),
        code=1,
        failed=(
            Failed(
                "INV-1",
                2,
                "required",
                "invoice_lines.0.unit_price.amount: required by AppZen, but column unit_price is "
                "blank",
            ),
        ),
    ),
    "date 31.02.2024": not_a_date("31.02.2024"),
    "date 32.01.2024": not_a_date("32.01.2024"),
    "date in year 10000": not_a_date("01.01.10000"),
    "date 00.00.0000": not_a_date("00.00.0000"),
    "date in ISO format in a dd.mm.yyyy export": not_a_date("2024-01-01"),
    "date with a two-digit year": not_a_date("1.1.24"),
    "date 31.12.9999 is a date": Case(
        rows(invoice_row("INV-1", invoice_date="31.12.9999")),
        code=1,
        failed=(  # read as the date 9999-12-31, then refused by the AP date check (#15)
            Failed(
                "INV-1",
                2,
                "check:invoice_date",
                f"invoice_date 9999-12-31 is more than 90 days ahead (after {_IN_90_DAYS})",
            ),
        ),
    ),
    "currency EURO": Case(
        rows(invoice_row("INV-1", currency="EURO")),
        code=1,
        failed=(
            Failed(
                "INV-1",
                2,
                "currency",
                "total_amount.currency: EURO is not an ISO-4217 currency code",
            ),
        ),
    ),
    "formula =1+1": kept_as_text("=1+1"),
    "formula +cmd|' /C calc'!A0": kept_as_text("+cmd|' /C calc'!A0"),
    "formula @SUM(1)": kept_as_text("@SUM(1)"),
    "formula -2+3": kept_as_text("-2+3"),
    "HTML script": kept_as_text("<script>alert(1)</script>"),
    "HTML img onerror": kept_as_text('<img src=x onerror="alert(1)">'),
    "SQL fragment": kept_as_text("'; DROP TABLE invoices; --"),
    "SQL fragment with a comment": kept_as_text("Robert'); DROP TABLE runs;/*"),
    "terminal escape": kept_as_text("\x1b[31mred\x1b[0m"),
    "right-to-left override": kept_as_text("\u202egnp.exe"),
    "template placeholders": kept_as_text("{invoice_no.__class__} ${jndi:ldap://x/a} %s%n"),
    "an invoice key of 300 characters": Case(
        rows(invoice_row("K" * 300)),
        code=1,
        failed=(
            Failed(
                "K" * 255,
                2,
                "key_too_long",
                "the invoice key is 300 characters long; staging keeps at most 255",
            ),
        ),
    ),
    "a blank invoice key": Case(
        rows(invoice_row("")),
        code=1,
        failed=(Failed("", 2, "required", "the invoice key column invoice_no is blank"),),
    ),
    "an ERP status of 300 characters": Case(
        rows(invoice_row("INV-1", status="S" * 300), INV2),
        code=1,
        failed=(
            Failed(
                "INV-1",
                2,
                "status_too_long",
                "the ERP status is 300 characters long; staging keeps at most 255",
            ),
        ),
        sent={"INV-2": {}},
    ),
    "a header total that does not add up (issue 15)": Case(
        rows(invoice_row("INV-1", gross_total="1,00"), INV2),
        code=1,
        failed=(
            Failed(
                "INV-1",
                2,
                "check:header_total",
                "total_amount 1.00 EUR does not add up: the lines sum to 100.00, tax 19.00",
            ),
        ),
        sent={"INV-2": {}},
    ),
    "JPY with cents (issue 15)": Case(
        rows(
            invoice_row(
                "INV-1",
                currency="JPY",
                unit_price="687,82",
                line_net="687,82",
                net_total="687,82",
                vat_total="0,00",
                gross_total="687,82",
            ),
            INV2,
        ),
        code=1,
        failed=(
            Failed(
                "INV-1",
                2,
                "check:minor_units",
                "total_amount: 687.82 JPY has more decimal places than JPY has (0, ISO 4217)",
            ),
        ),
        sent={"INV-2": {}},
    ),
    "an invoice key that is SQL": Case(
        rows(invoice_row("'; DROP TABLE invoices; --")),
        sent={"'; DROP TABLE invoices; --": {"invoice_number": "'; DROP TABLE invoices; --"}},
    ),
}


def _invalid_mapping(name: str) -> Case:
    """A file of tests/mapping/invalid through ``appzen-etl mapping check``."""
    text = (INVALID_MAPPINGS / f"{name}.txt").read_text(encoding="utf-8")
    shown = f"mappings/{name}.yaml"
    return Case(
        {shown: (INVALID_MAPPINGS / f"{name}.yaml").read_bytes()},
        args=("mapping", "check", shown),
        code=2,
        error=fatal(text.replace("{file}", shown).rstrip("\n")),
    )


def _mapping(text: str, expected: str, *, command: str = "check") -> Case:
    """A mapping file of ours, checked (``check``) or used by a sync (``sync``)."""
    args = ("mapping", "check", "m.yaml") if command == "check" else ("sync", "-m", "m.yaml")
    args = (*args[:-1], "mappings/m.yaml")
    return Case({"mappings/m.yaml": text.encode()}, args=args, code=2, error=fatal(expected))


SETTING_CASES: dict[str, Case] = {
    "setting: a staging busy timeout that is not a number": Case(
        {EXPORT: export(INV1)},
        env={"STAGING_DATABASE_URL": "sqlite:///staging.db?timeout=soon"},
        code=2,
        error=fatal(
            "staging database sqlite:///staging.db?timeout=soon: ?timeout=soon is not a number "
            "of seconds; write e.g. sqlite:///.state/staging.db?timeout=30"
        ),
    ),
    "setting: a rate limit that is not a number": Case(
        {EXPORT: export(INV1)},
        env={"APPZEN_RATE_LIMIT": "fast"},
        code=2,
        error=fatal(
            "invalid settings (environment or .env):\n  APPZEN_RATE_LIMIT: Input should be a valid "
            "number, unable to parse string as a number"
        ),
    ),
}

MAPPING_CASES: dict[str, Case] = {
    f"mapping: {path.stem}": _invalid_mapping(path.stem)
    for path in sorted(INVALID_MAPPINGS.glob("*.yaml"))
}
MAPPING_CASES |= {
    "mapping: a python tag that would run a command": _mapping(
        'source: !!python/object/apply:os.system ["touch PWNED"]\n',
        "mappings/m.yaml:1 source: YAML tag '!!python/object/apply:os.system' is not allowed: "
        "a mapping file holds data only",
        command="sync",
    ),
    "mapping: a python/name tag": _mapping(
        "invoice_key: !!python/name:os.system\n",
        "mappings/m.yaml:1 invoice_key: YAML tag '!!python/name:os.system' is not allowed: a "
        "mapping file holds data only",
    ),
    "mapping: a merge key": _mapping(
        "base: &b {kind: csv}\nsource:\n  <<: *b\n",
        "mappings/m.yaml:1: YAML anchors (&name) are not allowed: write the value out in full",
    ),
    "mapping: not UTF-8": Case(
        {"mappings/m.yaml": b"name: caf\xe9\n"},
        args=("mapping", "check", "mappings/m.yaml"),
        code=2,
        error=fatal("mappings/m.yaml:1: not UTF-8 (byte offset 9): save the file as UTF-8"),
    ),
}
