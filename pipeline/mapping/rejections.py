"""RowFailures for whole invoices: schema errors traced back to columns, text that is not
Unicode, too many lines, orphan and blank-key rows (keys seen before: :mod:`identities`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from pydantic import ValidationError

from pipeline.failures import RowFailure, shorten
from pipeline.mapping.grouping import Group, Orphan
from pipeline.mapping.results import RejectedInvoice
from pipeline.mapping.transforms import is_blank, to_text

if TYPE_CHECKING:
    from pipeline.mapping.spec import MappingSpec

_LINE_INDEX = re.compile(r"^invoice_lines\.\d+\.")


def path_pattern(path: str) -> str:
    """``invoice_lines.3.unit_price.amount`` → ``invoice_lines.*.unit_price.amount``."""
    return _LINE_INDEX.sub("invoice_lines.*.", path)


def unencodable(data: object, group: Group, columns_by_path: dict[str, str]) -> list[RowFailure]:
    """A failure for each text value that is not valid Unicode (lone surrogates)."""
    out = []
    for path, value in _strings(data, ""):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            column = columns_by_path.get(path_pattern(path))
            row = int(path.split(".")[1]) if path.startswith("invoice_lines.") else -1
            out.append(
                RowFailure(
                    source_key=group.key,
                    source_location=group.locate(row),
                    stage="mapping",
                    rule="text_encoding",
                    message=f"{path}: the text holds a lone surrogate (not valid Unicode)",
                    field_path=path,
                    source_column=column,
                    value=shorten(value.encode("utf-8", "backslashreplace").decode()),
                    hint="fix the text in the source (a broken character encoding?)",
                )
            )
    return out


def validation_failures(
    error: ValidationError, group: Group, columns_by_path: dict[str, str], mapped: list[RowFailure]
) -> list[RowFailure]:
    """pydantic's errors as RowFailures (stage ``validation``), traced back to source columns;
    errors at or under a path that already failed mapping are left out."""
    failed = [failure.field_path or "" for failure in mapped]
    out = []
    for item in error.errors(include_url=False):
        path = ".".join(str(part) for part in item["loc"])
        if any(_related(path, other) for other in failed):
            continue
        loc = item["loc"]
        row = loc[1] if len(loc) > 1 and loc[0] == "invoice_lines" else -1
        column = columns_by_path.get(path_pattern(path))
        value = item.get("input")
        shown = None if isinstance(value, dict | list) else shorten(value)
        hint = f"map a source column to {path}" if item["type"] == "missing" else None
        if column and not hint:
            hint = f"check column {column} in the source (or the mapping's map/type)"
        out.append(
            RowFailure(
                source_key=group.key,
                source_location=group.locate(row if isinstance(row, int) else -1),
                stage="validation",
                rule=f"schema:{item['type']}",
                message=f"{path}: {item['msg']}",
                field_path=path,
                source_column=column,
                value=shown,
                hint=hint,
            )
        )
    return out


def too_many_lines(group: Group, *, limit: int, key_column: str) -> RejectedInvoice:
    """The invoice refused whole: more line rows than ``max_lines_per_invoice``."""
    failure = invoice_failure(
        group,
        "too_many_lines",
        f"invoice {group.key} has {len(group.rows) + group.dropped} lines, more than "
        f"max_lines_per_invoice ({limit})",
        "raise max_lines_per_invoice in the mapping if the invoice is real",
        key_column,
    )
    return RejectedInvoice(group.key, group.locate(-1), (failure,))


def invoice_failure(
    group: Group, rule: str, message: str, hint: str | None, key_column: str
) -> RowFailure:
    """A failure of the invoice as a whole, at its first row."""
    return key_failure(
        group.key, group.locate(-1), rule=rule, message=message, hint=hint, key_column=key_column
    )


def key_failure(
    key: str | None,
    location: str,
    *,
    rule: str,
    message: str,
    hint: str | None,
    key_column: str,
    value: str | None = None,
) -> RowFailure:
    """A failure of the invoice with key ``key`` whose first row is at ``location``."""
    return RowFailure(
        source_key=key,
        source_location=location,
        stage="mapping",
        rule=rule,
        message=message,
        source_column=key_column,
        value=shorten(value),
        hint=hint,
    )


def orphan_rejection(orphan: Orphan, *, key_column: str, line_key: str) -> RejectedInvoice:
    """Rows that make no invoice: a blank key, or line rows with no header row."""
    if orphan.kind == "no_header":
        message = (
            f"{orphan.rows} line row(s) of invoice {orphan.key} have no header row "
            "(or the two sources list invoices in different orders)"
        )
        hint = "ORDER BY the invoice key in both sources, with the same collation"
        column = line_key
    else:
        column = line_key if orphan.kind == "blank_line_key" else key_column
        message = f"the invoice key column {column} is blank"
        hint = f"fill {column} in the source (every row needs its invoice key)"
    failure = RowFailure(
        source_key=orphan.key,
        source_location=orphan.location,
        stage="mapping",
        rule="join" if orphan.kind == "no_header" else "required",
        message=message,
        field_path=None if orphan.kind == "no_header" else "invoice_id",
        source_column=column,
        value=orphan.key,
        hint=hint,
    )
    return RejectedInvoice(orphan.key, orphan.location, (failure,))


def absent_supplier(
    failures: list[RowFailure], reference: object, spec: MappingSpec
) -> list[RowFailure]:
    """``supplier_id`` blank while the invoice's own supplier reference is not: the supplier
    the invoice points at is absent (no row joined), which a "blank" message would hide."""
    if is_blank(reference):
        return failures
    column = spec.checks.supplier.reference
    out = []
    for found in failures:
        failure = found
        if found.field_path == "supplier_id" and found.rule == "required":
            failure = replace(
                found,
                stage="check",
                rule="check:supplier",
                message=f"supplier {to_text(reference)!r} (column {column}) is absent: the "
                "invoice points at a supplier the source has no supplier row for",
                source_column=column,
                value=shorten(to_text(reference)),
                hint="add the supplier to the ERP's supplier master, or fix the invoice's "
                f"supplier reference ({column})",
            )
        out.append(failure)
    return out


def _strings(data: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(data, str):
        yield path, data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _strings(value, f"{path}.{index}")


def _related(path: str, other: str) -> bool:
    return bool(other) and (
        path == other or path.startswith(other + ".") or other.startswith(path + ".")
    )
