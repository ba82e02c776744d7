"""The AppZen fields ``mapping init`` looks for, with the column names ERPs and exports give them.

Names are compared in a normal form (:func:`words`): lower case, split at ``_``, spaces, dots and
camel case, so ``INVOICE_NUM``, ``InvoiceNum``, ``invoice num`` and ``Invoice Num.`` are alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Want = Literal["text", "date", "amount", "currency", "integer", "timestamp"]
Level = Literal["header", "lines", "key", "watermark"]


@dataclass(frozen=True)
class Target:
    """One value a draft mapping needs: where it goes, what it holds, what it may be called."""

    path: tuple[str, ...]
    want: Want
    required: bool
    synonyms: tuple[str, ...]
    level: Level = "header"
    hint: str = ""

    @property
    def dotted(self) -> str:
        """``header.total_amount.amount``."""
        return ".".join(self.path)

    @property
    def label(self) -> str:
        """How messages name it: ``total_amount.amount`` (lines: ``line total_amount.amount``)."""
        name = ".".join(self.path[1:]) or self.path[0]
        return f"line {name}" if self.level == "lines" else name


def _t(path: str, want: Want, required: bool, synonyms: str, *, level: Level = "header",
       hint: str = "") -> Target:  # fmt: skip
    return Target(tuple(path.split(".")), want, required, tuple(synonyms.split()), level, hint)


KEY = _t("invoice_key", "text", True,
         "invoice_id document_no document_number doc_no document_id invoice_key internal_id "
         "voucher headerreference transaction_id id", level="key",
         hint="the column that identifies an invoice (its rows share it)")  # fmt: skip
WATERMARK = _t("watermark_column", "timestamp", False,
               "updated_at last_update_date last_updated modified_at last_modified "
               "lastmodifieddate changed_at modified update_date updated changed_on",
               level="watermark")  # fmt: skip
STATUS = _t("header.invoice_status", "text", False,
            "invoice_status status state approval_status document_status")  # fmt: skip

HEADER = (
    _t("header.invoice_number", "text", True,
       "invoice_number invoice_no invoice_num inv_no inv_number supplier_invoice_no "
       "supplier_invoice_number vendor_invoice_no vendor_invoice_number reference_no "
       "reference_number bill_number bill_no xblnr tranid invoicenumber reference",
       hint="the supplier's invoice number"),
    _t("header.invoice_date", "date", True,
       "invoice_date inv_date document_date doc_date bill_date invoice_date_text bldat trandate "
       "date", hint="the invoice date"),
    _t("header.entity_id", "text", True,
       "entity_id company_code company_id company bukrs org_id organization_id operating_unit "
       "legal_entity dataareaid subsidiary_id subsidiary business_unit entity",
       hint="the company (legal entity, operating unit) the invoice is booked in; "
            "a single-company export can use a fixed value: {const: DE01}"),
    _t("header.supplier_id", "text", True,
       "supplier_id vendor_id supplier_no supplier_number vendor_no vendor_number vendor_num "
       "supplier_code vendor_code lifnr invoice_account creditor_id vendor_account supplier vendor",
       hint="the supplier's id in the ERP"),
    _t("header.total_amount.amount", "amount", True,
       "total_amount gross_total gross_amount invoice_amount invoice_total total_gross "
       "amount_total grand_total rmwwr foreigntotal total amount",
       hint="the invoice's total (gross) amount"),
    _t("header.total_amount.currency", "currency", True,
       "currency currency_code invoice_currency_code invoice_currency curr waers currency_id cur",
       hint="the invoice currency (ISO code); a single-currency export can use {const: EUR}"),
    STATUS,
    _t("header.supplier_number", "text", False,
       "supplier_number vendor_number supplier_no vendor_no vendor_num"),
    _t("header.supplier_name", "text", False,
       "supplier_name vendor_name supplier vendor name1 companyname vendorname name"),
    _t("header.entity_name", "text", False,
       "entity_name company_name organization_name butxt subsidiary_name operating_unit_name"),
    _t("header.vat_registration_numbers", "text", False,
       "supplier_vat_id supplier_vat_number vat_number vat_id vat_registration_number "
       "vat_registration_num tax_id stceg"),
    _t("header.purchase_order_number", "text", False,
       "purchase_order_number purchase_order_no po_number po_no purchase_order ebeln"),
    _t("header.payment_term_id", "text", False,
       "payment_term_id payment_terms payment_term terms_id terms zterm termsofpayment"),
    _t("header.invoice_description", "text", False,
       "invoice_description header_text description memo remarks bktxt"),
    _t("header.total_amount_excluding_vat.amount", "amount", False,
       "net_total net_amount total_net amount_excluding_vat subtotal total_excluding_vat"),
    _t("header.vat_amount.amount", "amount", False,
       "vat_total vat_amount tax_total tax_amount total_tax_amount wmwst1"),
    _t("header.extra.payment_due_date", "date", False,
       "due_date payment_due_date duedate net_due_date"),
)  # fmt: skip

LINES = (
    _t("invoice_lines.line_description", "text", True,
       "line_description line_text description item_description text memo line_memo "
       "item_text sgtxt name item_name", level="lines", hint="what the line is for"),
    _t("invoice_lines.quantity", "amount", True,
       "quantity qty quantity_invoiced invoiced_quantity menge receivenow units_invoiced",
       level="lines", hint="the quantity invoiced"),
    _t("invoice_lines.unit_price.amount", "amount", True,
       "unit_price price rate unit_cost price_per_unit net_price unitprice", level="lines",
       hint="the price of one unit"),
    _t("invoice_lines.total_amount.amount", "amount", True,
       "line_amount line_total line_net line_net_amount net_amount extended_amount "
       "foreignamount netamount wrbtr amount total", level="lines", hint="the line's amount"),
    _t("invoice_lines.line_number", "integer", False,
       "line_number line_no line_num linenum line position pos line_id buzei "
       "linesequencenumber invoicelinenumber item_no", level="lines"),
    _t("invoice_lines.unit_of_measure", "text", False,
       "unit_of_measure uom unit units unit_meas_lookup_code bstme meins", level="lines"),
    _t("invoice_lines.line_item_code", "text", False,
       "item_code item_number item sku material matnr product_code article_no itemnumber",
       level="lines"),
    _t("invoice_lines.gl_code", "text", False,
       "gl_account gl_code account expense_account main_account sakto", level="lines"),
)  # fmt: skip

SHARED = (
    frozenset({"header.supplier_id", "header.supplier_number"}),
    frozenset({"invoice_key", "header.invoice_number"}),
)
"""Targets that may read the same column (every other column feeds one target)."""

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^A-Za-z0-9]+")


def words(name: str) -> tuple[str, ...]:
    """A column or synonym name's words: ``InvoiceNum`` → ``("invoice", "num")``."""
    spaced = _CAMEL.sub(" ", name)
    return tuple(part.lower() for part in _SPLIT.split(spaced) if part)


def name_score(column: str, synonyms: tuple[str, ...]) -> float:
    """How well ``column`` is named for a target (1: exactly a synonym, 0: not at all). A
    synonym of two words or more also fits at the end (``supplier_invoice_no`` for
    ``invoice_no``) or the start (``invoice_date_text``) of a longer name; one word must match
    whole (``invoice`` does not name ``invoice_items_barcode``)."""
    found = words(column)
    compact = "".join(found)
    best = 0.0
    for rank, synonym in enumerate(synonyms):
        wanted = words(synonym)
        penalty = 0.002 * rank  # earlier synonyms are the likelier ones
        if found == wanted:
            best = max(best, 1.0 - penalty)
        elif compact == "".join(wanted):
            best = max(best, 0.95 - penalty)
        elif len(wanted) < 2 or len(wanted) >= len(found):
            continue
        elif found[-len(wanted) :] == wanted:
            best = max(best, 0.8 - penalty)
        elif found[: len(wanted)] == wanted:
            best = max(best, 0.7 - penalty)
    return best
