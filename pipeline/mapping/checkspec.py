"""The ``checks:`` section of a mapping file: which AP pre-flight checks run, at which level
(``error``, ``warning`` or ``off``), with their options. What each check finds:
:mod:`pipeline.mapping.checks`."""

from __future__ import annotations

from datetime import date
from typing import Literal, Self

from pydantic import Field, model_validator

from pipeline.mapping.leaves import ColumnName, Strict

Level = Literal["error", "warning", "off"]


class _Check(Strict):
    """A check: its level, given as a bare word (``sign: warning``) or ``{level: …, …}``."""

    level: Level = "error"

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, value: object) -> object:
        return {"level": value} if isinstance(value, str) else value


class TotalsCheck(_Check):
    """``header_total`` / ``line_amount``: equal within ``tolerance`` minor units."""

    tolerance: int = Field(1, ge=0, le=1_000_000, description="In minor units (1: 0.01 EUR).")
    includes: list[Literal["tax", "freight"]] | None = Field(
        None,
        description="header_total only: what the header total holds besides the lines. Default: "
        "either the lines alone or the lines plus tax, each plus freight when mapped.",
    )


class DateCheck(_Check):
    """``invoice_date``: a window around today."""

    max_days_ahead: int = Field(90, ge=0, le=36_600)
    not_before: date = date(1990, 1, 1)


class SignCheck(_Check):
    """``sign``: which way the amounts of a credit note go in this ERP's data."""

    credit_notes: Literal["negative", "positive"] = Field(
        "negative",
        description="negative: a CREDIT_NOTE's total is <= 0; positive: amounts as the document "
        "prints them (>= 0, quantities too), invoice_type says which way the money goes.",
    )


class DuplicateCheck(_Check):
    """``duplicate_number``: warned by default (AppZen audits duplicates too)."""

    level: Level = "warning"


class SupplierCheck(_Check):
    """``supplier``: ``reference`` is the invoice's own supplier column (before the join)."""

    level: Literal["error", "off"] = "error"
    reference: ColumnName | None = None


class ChecksSpec(Strict):
    """The ``checks:`` section of a mapping."""

    header_total: TotalsCheck = Field(default_factory=TotalsCheck)
    line_amount: TotalsCheck = Field(default_factory=TotalsCheck)
    one_currency: _Check = Field(default_factory=_Check)
    minor_units: _Check = Field(default_factory=_Check)
    sign: SignCheck = Field(default_factory=SignCheck)
    invoice_date: DateCheck = Field(default_factory=DateCheck)
    duplicate_number: DuplicateCheck = Field(default_factory=DuplicateCheck)
    supplier: SupplierCheck = Field(default_factory=SupplierCheck)

    @model_validator(mode="after")
    def _includes_header_only(self) -> Self:
        if self.line_amount.includes is not None:
            raise ValueError("line_amount takes no `includes:` (only header_total does)")
        return self
