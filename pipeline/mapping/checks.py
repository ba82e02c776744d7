"""AP pre-flight checks: what an accounts-payable clerk would refuse before AppZen ever sees it.

Declared per mapping under ``checks:`` (:mod:`pipeline.mapping.checkspec`; each ``error``,
``warning`` or ``off``; every check is on by default). They run on each invoice that mapped
and validated, on the plain data that is about to be sent:

``header_total``      total_amount = Σ line totals (+ tax, + freight), within the tolerance
``line_amount``       quantity * unit price = line total, within the tolerance
``one_currency``      every amount of the invoice in one currency
``minor_units``       amounts fit the currency's ISO 4217 minor units (JPY 0, EUR 2, BHD 3)
``sign``              INVOICE / DEBIT_NOTE total ≥ 0 and quantities ≥ 0; CREDIT_NOTE total ≤ 0
                      (``credit_notes: positive``: ≥ 0 and quantities ≥ 0, as printed)
``invoice_date``      not after today + ``max_days_ahead``, not before ``not_before``
``duplicate_number``  one supplier's invoice number once per run (and in staging history: the
                      sync job asks staging, :mod:`pipeline.load.sync`)
``supplier``          a supplier reference with no supplier row: "absent", not "blank"

An ``error`` refuses the invoice (stage ``check``, like a mapping failure); a ``warning`` travels
with the sent invoice into the run's report (stage ``warning``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from pipeline.failures import RowFailure, shorten
from pipeline.mapping.checkspec import ChecksSpec
from pipeline.mapping.currencies import minor_units
from pipeline.mapping.keys import Locations
from pipeline.mapping.results import MappedInvoice
from pipeline.mapping.seen import FirstSeen

Data = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Found:
    """One check's finding before it becomes a RowFailure."""

    check: str
    message: str
    path: str | None = None
    value: object = None
    line: int = -1


_HINTS = {
    "header_total": "fix the totals in the ERP, or say what the header total holds "
    "(checks.header_total.includes: [tax, freight])",
    "line_amount": "fix the line in the ERP (quantity, unit price or line amount)",
    "one_currency": "an invoice has one currency: fix the document, or map one currency column",
    "minor_units": "round the amount to the currency's minor unit in the ERP, or check the "
    "currency code",
    "sign": "map invoice_type to the document's real type (a return is a CREDIT_NOTE), or fix "
    "the amounts' signs",
    "invoice_date": "fix the invoice date in the ERP (a typo in the year?)",
    "duplicate_number": "check for a duplicate payment: the same supplier invoice number is "
    "already there",
}
_NUMBER_NOISE = re.compile(r"[\W_]+")
_LEADING_ZEROS = re.compile(r"(?<!\d)0+(?=\d)")


def invoice_number_key(number: str) -> str:
    """The supplier invoice number as duplicate checks compare it: case, punctuation, spaces
    and the leading zeros of a number ignored (``INV-0042`` = ``inv 42``)."""
    folded = number.casefold()
    if not folded.isalnum():
        folded = _NUMBER_NOISE.sub("", folded)
    return _LEADING_ZEROS.sub("", folded) if "0" in folded else folded


def supplier_invoice_key(supplier: str, number: str) -> str | None:
    """``supplier`` and the normalised ``number`` as one text (staging stores it with each sent
    invoice); None without a number. Long ones are hashed to stay within 200 characters."""
    normalised = invoice_number_key(number)
    if not normalised:
        return None
    text = f"{supplier}\x1f{normalised}"
    return text if len(text) <= 200 else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def sent_before(invoice: MappedInvoice, earlier: str, *, error: bool) -> RowFailure:
    """The ``duplicate_number`` finding against staging history: ``invoice``'s supplier sent
    the same invoice number before, as the invoice with key ``earlier``."""
    return RowFailure(
        source_key=invoice.key,
        source_location=invoice.location,
        stage="check" if error else "warning",
        rule="check:duplicate_number",
        message=f"the same supplier invoice number was sent before as invoice {earlier!r} "
        "(staging history, another key): a duplicate payment?",
        field_path="invoice_number",
        hint=_HINTS["duplicate_number"],
    )


class Checks:
    """The checks of one mapping for one run (the duplicate check remembers the run's numbers).

    Speed matters (they run on every invoice, inside the 20,000 invoices/s budget): one pass over
    the lines does the line checks, the header total needs the tax only when the lines alone do
    not add up, dates compare as ISO text, and a finding is built only when there is one."""

    def __init__(
        self, spec: ChecksSpec, columns_by_path: dict[str, str], today: date | None = None
    ) -> None:
        self.spec = spec
        self._columns = columns_by_path
        self._numbers = FirstSeen()
        self._where = Locations()
        self._on = {name for name in _ORDER if getattr(spec, name).level != "off"}
        self._currencies: dict[str, tuple[int | None, Decimal, Decimal]] = {}
        day = today or date.today()
        dates = spec.invoice_date
        self._latest = (day + timedelta(days=dates.max_days_ahead)).isoformat()
        self._earliest = dates.not_before.isoformat()
        self._credit_negative = spec.sign.credit_notes == "negative"

    def run(
        self,
        body: Data,
        key: str,
        locate: Callable[[int], str],
        at: tuple[Any, int],
        supplier_invoice: str | None,
    ) -> list[RowFailure]:
        """Every finding on ``body`` (the invoice about to be sent; ``supplier_invoice`` its
        :func:`supplier_invoice_key`) as RowFailures: stage ``check`` for errors, ``warning`` for
        warnings; ``[]`` for a clean invoice."""
        on = self._on
        found: list[Found] = []
        money = body["total_amount"]
        places, line_tolerance, total_tolerance = self._rules(money["currency"])
        line_sum = self._lines(body, places, line_tolerance, found)
        if "header_total" in on:
            self._header_total(body, line_sum, total_tolerance, found)
        if "sign" in on:
            self._sign(body, found)
        if "invoice_date" in on:
            self._invoice_date(body, found)
        if (
            len(body) > _PLAIN_HEADER
            and ("minor_units" in on or "one_currency" in on)
            and not body.keys().isdisjoint(_HEADER_MONEY)
        ):  # else the total is the header's only money: the branch below is the same check
            self._header_money(body, found)
        elif "minor_units" in on and places is not None:
            money = body["total_amount"]
            if not _fits(money["amount"], _QUANTA[places]):
                found.append(_unit("total_amount", money, money["currency"]))
        if supplier_invoice is not None and "duplicate_number" in on:
            self._duplicate(body, key, at, supplier_invoice, found)
        if not found:
            return []
        order = {name: index for index, name in enumerate(_ORDER)}
        found.sort(key=lambda item: (order[item.check], item.line))
        return [self._failure(item, key, locate) for item in found]

    def _rules(self, currency: str) -> tuple[int | None, Decimal, Decimal]:
        rules = self._currencies.get(currency)
        if rules is None:
            places = minor_units(currency)
            unit = Decimal(1).scaleb(-(2 if places is None else places))
            rules = (
                places,
                unit * self.spec.line_amount.tolerance,
                unit * self.spec.header_total.tolerance,
            )
            self._currencies[currency] = rules
        return rules

    def _failure(self, item: Found, key: str, locate: Callable[[int], str]) -> RowFailure:
        level = getattr(self.spec, item.check).level
        pattern = re.sub(r"^invoice_lines\.\d+\.", "invoice_lines.*.", item.path or "")
        return RowFailure(
            source_key=key,
            source_location=locate(item.line),
            stage="check" if level == "error" else "warning",
            rule=f"check:{item.check}",
            message=item.message,
            field_path=item.path,
            source_column=self._columns.get(pattern),
            value=None if item.value is None else shorten(str(item.value)),
            hint=_HINTS.get(item.check),
        )

    # --- one pass over the lines ---------------------------------------------------------------
    def _lines(
        self, body: Data, places: int | None, tolerance: Decimal, found: list[Found]
    ) -> Decimal:
        """The sum of the line totals; line_amount, one_currency, minor_units and the quantity
        signs of every line on the way."""
        on = self._on
        currency = body["total_amount"]["currency"]
        amounts = "line_amount" in on
        currencies = "one_currency" in on
        units = places if "minor_units" in on else None
        quantum = None if units is None else _QUANTA[units]
        kind = body.get("invoice_type")
        signs = "sign" in on and (
            kind in _DEBITS or (kind == "CREDIT_NOTE" and not self._credit_negative)
        )
        line_sum = Decimal(0)
        for index, line in enumerate(body["invoice_lines"]):
            total_money, price_money = line["total_amount"], line["unit_price"]
            total, quantity = total_money["amount"], line["quantity"]
            line_sum += total
            if amounts:
                product = quantity * price_money["amount"]
                if product != total and abs(product - total) > tolerance:
                    found.append(_line_amount(index, quantity, price_money["amount"], total))
            if currencies and (
                total_money["currency"] != currency or price_money["currency"] != currency
            ):
                self._currencies_of(index, line, currency, found)
                currencies = False  # one finding says it
            if quantum is not None:
                try:
                    fits = not total % quantum  # _fits inlined
                except InvalidOperation:
                    fits = _fits(total, quantum)
                if not fits:
                    path = f"invoice_lines.{index}.total_amount"
                    found.append(_unit(path, total_money, currency))
            if signs and quantity < 0:
                found.append(
                    Found(
                        "sign",
                        f"invoice_lines.{index}: a negative quantity ({quantity}) on an {kind}",
                        f"invoice_lines.{index}.quantity",
                        quantity,
                        index,
                    )
                )
            if (units is not None or currencies) and (
                "tax_amount" in line or "line_vat_amount" in line
            ):
                self._line_extras(
                    index, line, currency, units=units, currencies=currencies, found=found
                )
        return line_sum

    def _currencies_of(self, index: int, line: Data, currency: str, found: list[Found]) -> None:
        for name in ("unit_price", "total_amount"):
            other = line[name]["currency"]
            if other != currency:
                path = f"invoice_lines.{index}.{name}"
                found.append(_mixed(path, currency, other, index))
                return

    def _line_extras(
        self,
        index: int,
        line: Data,
        currency: str,
        *,
        units: int | None,
        currencies: bool,
        found: list[Found],
    ) -> None:
        """The optional money of a line (tax, VAT): its currency and minor units."""
        for name in _LINE_MONEY:
            money = line.get(name)
            if not money:
                continue
            path = f"invoice_lines.{index}.{name}"
            other = money.get("currency")
            if currencies and other is not None and other != currency:
                found.append(_mixed(path, currency, other, index))
            amount = money.get("amount")
            if units is not None and amount is not None and not _fits(amount, _QUANTA[units]):
                found.append(_unit(path, money, currency))

    # --- the header ----------------------------------------------------------------------------
    def _header_total(
        self, body: Data, line_sum: Decimal, tolerance: Decimal, found: list[Found]
    ) -> None:
        includes = self.spec.header_total.includes
        total = body["total_amount"]["amount"]
        freight = _amount(body.get("shipping_handling_amount"))
        base = line_sum if freight is None else line_sum + freight
        if includes is None and abs(total - base) <= tolerance:
            return  # the lines alone (gross lines) add up
        tax = _header_tax(body)
        if tax is None:  # the lines' own tax, summed only now: most invoices add up without it
            tax = _lines_tax(body["invoice_lines"])
        if includes is None:
            if tax is not None and abs(total - (base + tax)) <= tolerance:
                return
        else:
            expected = (
                line_sum
                + (tax or 0 if "tax" in includes else 0)
                + (freight or 0 if "freight" in includes else 0)
            )
            if abs(total - expected) <= tolerance:
                return
        parts = [f"the lines sum to {line_sum}"]
        if tax is not None:
            parts.append(f"tax {tax}")
        if freight is not None:
            parts.append(f"freight {freight}")
        currency = body["total_amount"]["currency"]
        message = f"total_amount {total} {currency} does not add up: {', '.join(parts)}"
        found.append(Found("header_total", message, "total_amount.amount", total))

    def _sign(self, body: Data, found: list[Found]) -> None:
        kind = body.get("invoice_type")
        total = body["total_amount"]["amount"]
        if kind == "CREDIT_NOTE" and self._credit_negative:
            if total > 0:
                message = f"a CREDIT_NOTE with a positive total_amount ({total})"
                found.append(Found("sign", message, "total_amount.amount", total))
        elif (kind in _DEBITS or kind == "CREDIT_NOTE") and total < 0:
            message = f"an {kind} with a negative total_amount ({total})"
            found.append(Found("sign", message, "total_amount.amount", total))

    def _invoice_date(self, body: Data, found: list[Found]) -> None:
        text = body["invoice_date"]
        day = text[:10]  # ISO text: compared as text
        if day > self._latest:
            ahead = self.spec.invoice_date.max_days_ahead
            problem = f"is more than {ahead} days ahead (after {self._latest})"
        elif day < self._earliest:
            problem = f"is before {self._earliest} (checks.invoice_date.not_before)"
        else:
            return
        found.append(Found("invoice_date", f"invoice_date {day} {problem}", "invoice_date", text))

    def _header_money(self, body: Data, found: list[Found]) -> None:
        """The header's money (total, tax, VAT, freight, net): minor units and currencies."""
        currency = body["total_amount"]["currency"]
        units = "minor_units" in self._on
        currencies = "one_currency" in self._on and not any(
            f.check == "one_currency" for f in found
        )
        for name in ("total_amount", *_HEADER_MONEY):
            money = body.get(name)
            if not money:
                continue
            other = money.get("currency")
            if currencies and other is not None and other != currency:
                found.append(_mixed(name, currency, other, -1))
                currencies = False
            places = minor_units(other or currency) if units else None
            amount = money.get("amount")
            if places is not None and amount is not None and not _fits(amount, _QUANTA[places]):
                found.append(_unit(name, money, currency))

    def _duplicate(
        self,
        body: Data,
        key: str,
        at: tuple[Any, int],
        supplier_invoice: str,
        found: list[Found],
    ) -> None:
        first = self._numbers.first(supplier_invoice, key, self._where.code(*at))
        if first is None or first[0] == key:
            return
        supplier = body["supplier_id"]
        found.append(
            Found(
                "duplicate_number",
                f"supplier {supplier}'s invoice number {body['invoice_number']} is also the "
                f"invoice at {self._where.location(first[1])} (another key): a duplicate payment?",
                "invoice_number",
                body["invoice_number"],
            )
        )


_ORDER = (
    "one_currency",
    "minor_units",
    "line_amount",
    "header_total",
    "sign",
    "invoice_date",
    "duplicate_number",
)
_DEBITS = ("INVOICE", "DEBIT_NOTE")
_HEADER_MONEY = (
    "tax_amount",
    "vat_amount",
    "shipping_handling_amount",
    "total_amount_excluding_vat",
)
_LINE_MONEY = ("tax_amount", "line_vat_amount")
_PLAIN_LINE = 5  # line_number, line_description, quantity, unit_price, total_amount
_PLAIN_HEADER = 7  # the 7 fields AppZen requires: no optional money when there are no more


def _line_amount(index: int, quantity: Decimal, price: Decimal, total: Decimal) -> Found:
    return Found(
        "line_amount",
        f"invoice_lines.{index}: quantity {quantity} * unit price {price} = "
        f"{quantity * price}, but the line total is {total}",
        f"invoice_lines.{index}.total_amount.amount",
        total,
        index,
    )


def _mixed(path: str, currency: str, other: str, line: int) -> Found:
    return Found(
        "one_currency",
        f"the invoice mixes currencies: {currency} (total_amount) and {other} ({path})",
        f"{path}.currency",
        other,
        line,
    )


def _unit(path: str, money: Data, default: str) -> Found:
    amount, currency = money["amount"], money.get("currency") or default
    return Found(
        "minor_units",
        f"{path}: {amount} {currency} has more decimal places than {currency} has "
        f"({minor_units(currency)}, ISO 4217)",
        f"{path}.amount",
        amount,
        _line_of(path),
    )


def _amount(money: Data | None) -> Decimal | None:
    return None if not money else money.get("amount")


def _header_tax(body: Data) -> Decimal | None:
    """The header's tax (or VAT) amount, when it states one."""
    for name in ("tax_amount", "vat_amount"):
        amount = _amount(body.get(name))
        if amount is not None:
            return amount
    return None


def _lines_tax(lines: list[Data]) -> Decimal | None:
    """The tax of all ``lines`` (None when no line states one): ``sum()`` from ``Decimal(0)``
    over the lines' :func:`_line_tax` that are not None, with the usual line (one VAT entry,
    no tax or VAT amount) read in place."""
    total: Decimal | None = None
    for line in lines:
        if "tax_amount" in line or "line_vat_amount" in line:
            tax = _line_tax(line)
        else:
            breakdown = line.get("line_vat_breakdown")
            if breakdown and len(breakdown) == 1:
                vat = breakdown[0].get("vat_amount")
                tax = vat.get("amount") if vat else None
            else:
                tax = _line_tax(line)
        if tax is not None:
            total = _ZERO + tax if total is None else total + tax
    return total


_ZERO = Decimal(0)


def _line_tax(line: Data) -> Decimal | None:
    """A line's tax: its tax amount, its VAT amount, or the sum of its VAT breakdown."""
    amount = _amount(line.get("tax_amount")) or _amount(line.get("line_vat_amount"))
    if amount is None:
        breakdown: list[Data] = line.get("line_vat_breakdown") or []
        if len(breakdown) == 1:  # the usual: one VAT code a line
            return _amount(breakdown[0].get("vat_amount"))
        amounts = [a for e in breakdown if (a := _amount(e.get("vat_amount"))) is not None]
        amount = sum(amounts, Decimal(0)) if amounts else None
    return amount


_QUANTA = [Decimal(1).scaleb(-places) for places in range(10)]


def _fits(amount: Decimal, quantum: Decimal) -> bool:
    """Whether ``amount`` is a whole number of ``quantum`` (``100.000`` is of 0.01): its
    remainder is zero (a remainder is ~5x faster than ``as_tuple``)."""
    try:
        return not amount % quantum
    except InvalidOperation:  # more digits than the context holds: compare the exponents
        exponent, unit = amount.normalize().as_tuple().exponent, quantum.as_tuple().exponent
        return isinstance(exponent, int) and isinstance(unit, int) and exponent >= unit


def _line_of(path: str) -> int:
    return int(path.split(".")[1]) if path.startswith("invoice_lines.") else -1
