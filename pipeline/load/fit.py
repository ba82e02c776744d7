"""Mapped invoices staging cannot hold become failed rows, before anything is staged or sent.

AppZen sets no bound on ``invoice_id``, but staging keeps keys of at most ``KEY_CHARS`` and ERP
statuses of at most ``STATUS_CHARS`` characters: such an invoice is reported (stage ``mapping``,
rule ``key_too_long`` / ``status_too_long``) and the run goes on with the others.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.failures import RowFailure, shorten
from pipeline.mapping.engine import MappedInvoice, RejectedInvoice
from pipeline.mapping.spec import MappingSpec
from pipeline.staging.tables import KEY_CHARS, STATUS_CHARS

Result = MappedInvoice | RejectedInvoice


def fit_staging(batch: Sequence[Result], spec: MappingSpec) -> list[Result]:
    """``batch`` with every mapped invoice staging cannot hold turned into a rejected one."""
    return [_fit(r, spec) if isinstance(r, MappedInvoice) else r for r in batch]


def _fit(mapped: MappedInvoice, spec: MappingSpec) -> Result:
    failures = []
    if len(mapped.key) > KEY_CHARS:
        failures.append(_failure(mapped, "key_too_long", spec.invoice_key, mapped.key, KEY_CHARS))
    status = mapped.erp_status
    if status is not None and len(status) > STATUS_CHARS and spec.status is not None:
        column = spec.status.column
        failures.append(_failure(mapped, "status_too_long", column, status, STATUS_CHARS))
    if not failures:
        return mapped
    return RejectedInvoice(mapped.key, mapped.location, tuple(failures))


def _failure(mapped: MappedInvoice, rule: str, column: str, value: str, limit: int) -> RowFailure:
    key = rule == "key_too_long"
    what = "invoice key" if key else "ERP status"
    return RowFailure(
        source_key=mapped.key,
        source_location=mapped.location,
        stage="mapping",
        rule=rule,
        message=f"the {what} is {len(value):,} characters long; staging keeps at most {limit}",
        field_path="invoice_id" if key else "invoice_status",
        source_column=column,
        value=shorten(value),
        hint=f"shorten column {column} in the source (or map a shorter value), then sync again",
    )
