"""The AppZen wire contract: the invoice schema and every request and response body.

Where the vendor pages (../shared/api-docs) contradict themselves, we decided (tests/appzen):

* Unknown keys pass through untouched (``extra="allow"`` everywhere): the create sample sends
  keys its own table does not list (``accounting_date_override``, ``payment_type_override``,
  ``tax_applicability_id``, ``default_tax_option``, ``payment_due_date``); they are kept.
* Named addresses are *flat* (``address_line1`` … ``zip`` directly in ``shipping_address``), as the
  create sample sends them; the get-details response nests them twice and has its own model.
* ``invoice_type`` may be the empty string: the create sample sends ``""`` meaning "not given".
* ``rate`` in VAT breakdowns is a number > 0 as the table says; the sample's ``"rate": "10a"`` is a
  typo in the page and is rejected with a field-level error.
* Status-sync keys use underscores (the sample and AppZen's public spec); the hyphenated
  spellings of the page's table are accepted on input and always written with underscores.
* Money is :class:`~decimal.Decimal` end to end and is written to JSON as a *number* with its scale
  (``200.00`` stays ``200.00``), never a float and never a string: see :func:`payload_json`.
"""

from __future__ import annotations

import re
import secrets
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Self, Union

import orjson
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from typing_extensions import TypeAliasType

# --- JSON numbers with exact scale ------------------------------------------------------------
# pydantic writes Decimal as a JSON string. AppZen wants numbers. In JSON mode each Decimal is
# written as a string tagged with a per-process random token, and payload_json() turns exactly
# those strings back into bare numbers. Source text cannot forge the token (128 random bits).
_TOKEN = "dec" + secrets.token_hex(16) + ":"
_OPEN_TAG = b'"' + _TOKEN.encode()


def _decimal_to_tagged(value: Decimal) -> str:
    return f"{_TOKEN}{value:f}"


Amount = Annotated[
    Decimal,
    Field(allow_inf_nan=False),
    PlainSerializer(_decimal_to_tagged, return_type=str, when_used="json"),
]
"""An exact decimal amount; finite; serialized as a JSON number keeping its scale."""

PositiveRate = Annotated[
    Decimal,
    Field(gt=0, allow_inf_nan=False),
    PlainSerializer(_decimal_to_tagged, return_type=str, when_used="json"),
]


def _check_iso_date(value: str) -> str:
    """Accept ``YYYY-MM-DD`` or an ISO-8601 date-time (``Z`` or offset); keep the text as given."""
    text = value.replace("Z", "+00:00") if value.endswith("Z") else value
    try:
        if len(text) == 10:
            date.fromisoformat(text)
        else:
            datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO-8601 date (YYYY-MM-DD) or date-time (2019-07-21T17:32:28Z)"
        ) from None
    return value


IsoDate = Annotated[str, AfterValidator(_check_iso_date)]

# Free-form JSON (custom_json, unknown keys): numbers that are not integers stay exact decimals.
JsonValue = TypeAliasType(  # type: ignore[misc]
    "JsonValue",
    Union[  # noqa: UP007 - a recursive alias needs the Union spelling
        bool, int, Amount, str, list["JsonValue"], dict[str, "JsonValue"], None  # type: ignore[misc]
    ],
)

InvoiceType = Literal["INVOICE", "CREDIT_NOTE", "DEBIT_NOTE", "PROFORMA", "TAX_ONLY", ""]
PoMatchType = Literal["PO_NONE_MATCH_TYPE", "PO_POLICY_TWO_WAY_MATCH", "PO_POLICY_THREE_WAY_MATCH"]
AddressType = Literal["OFFICE", "REMIT_TO", "SUPPLIER_SITE"]
# The segment types the pages name; OTHER_SEGMENT is AppZen's catch-all for anything else.
AppZenSegmentType = Literal[
    "ACCOUNT_SEGMENT", "DEPARTMENT_SEGMENT", "COST_CENTER_SEGMENT", "OTHER_SEGMENT"
]


class WireModel(BaseModel):
    """Base of every AppZen body: unknown keys are kept and sent back as received."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    __pydantic_extra__: dict[str, JsonValue] = Field(init=False)


# --- invoice ---------------------------------------------------------------------------------
class Money(WireModel):
    """An amount with its currency, both required (``total_amount``, ``unit_price`` …)."""

    amount: Amount
    currency: str


class OptionalMoney(WireModel):
    """A money object whose parts the page marks optional (``tax_amount``, ``vat_amount`` …)."""

    amount: Amount | None = None
    currency: str | None = None


class Address(WireModel):
    """A postal address; ``address_line1``, ``country`` and ``zip`` are required."""

    address_type: AddressType | None = None
    address_line1: str
    address_line2: str | None = None
    address_line3: str | None = None
    area_code: str | None = None
    city: str | None = None
    company: str | None = None
    contact: str | None = None
    country: str
    country_iso3: str | None = None
    email: str | None = None
    phone: str | None = None
    province: str | None = None
    state: str | None = None
    zip: str


class OtherAddress(Address):
    """An entry of ``other_addresses``: an address plus its site."""

    site_id: str | None = None
    site_name: str | None = None
    custom_json: dict[str, JsonValue] | None = None


class Segment(WireModel):
    """An accounting segment (header or line); every field is required."""

    code: str
    name: str
    segment_type: str
    appzen_segment_type: AppZenSegmentType
    segment_name_id: str


class Document(WireModel):
    """A document uploaded beforehand through generate-upload-url."""

    uuid: str


class VatBreakdown(WireModel):
    """One VAT code and rate with its amount."""

    code: str | None = None
    rate: PositiveRate | None = None
    vat_amount: OptionalMoney | None = None


class LineAllocation(WireModel):
    """A split of one invoice line across GL codes."""

    external_allocation_id: str | None = None
    amount: Amount | None = None
    tax: Amount | None = None
    percentage: Amount | None = None
    gl_code: str | None = None


class PoPolicy(WireModel):
    """Whether the invoice is PO-backed and how it is matched."""

    po_backed: bool | None = None
    po_match_type: PoMatchType | None = None


class RemitToBankInfo(WireModel):
    """Where payment goes, last digits only."""

    bank_acct_last4: str | None = None
    routing_number_last4: str | None = None
    bank_account_name: str | None = None
    bank_account_type: str | None = None


class InvoiceOptions(WireModel):
    """Processing options."""

    strict_invoice_number: Literal["0", "1"] | None = None


class InvoiceLine(WireModel):
    """One line of an invoice."""

    line_number: Annotated[int, Field(ge=0)]
    line_description: str
    quantity: Amount
    unit_price: Money
    total_amount: Money
    tax_amount: Money | None = None
    line_vat_amount: OptionalMoney | None = None
    line_vat_breakdown: list[VatBreakdown] | None = None
    line_allocations: list[LineAllocation] | None = None
    purchase_order_number: str | None = None
    purchase_order_line_number: str | None = None
    po_match_type: PoMatchType | None = None
    line_item_code: str | None = None
    unit_of_measure: str | None = None
    model_number: str | None = None
    currency: str | None = None
    gl_code: str | None = None
    segments: list[Segment] | None = None
    custom_json: dict[str, JsonValue] | None = None


class Invoice(WireModel):
    """The body of ``POST /invoice`` (create or update, keyed by ``invoice_id``)."""

    invoice_id: Annotated[str, Field(min_length=1)]
    invoice_number: Annotated[str, Field(min_length=1)]
    invoice_date: IsoDate
    entity_id: Annotated[str, Field(min_length=1)]
    supplier_id: Annotated[str, Field(min_length=1)]
    total_amount: Money
    invoice_lines: list[InvoiceLine]
    invoice_status: str | None = None
    invoice_type: InvoiceType | None = None
    entity_name: str | None = None
    purchase_order_number: str | None = None
    po_policy: PoPolicy | None = None
    site_id: str | None = None
    original_invoice_id: str | None = None
    original_invoice_date: IsoDate | None = None
    payment_term_id: str | None = None
    payment_date: IsoDate | None = None
    remit_to_bank_info: RemitToBankInfo | None = None
    requestor: str | None = None
    documents: list[Document] | None = None
    shipping_handling_amount: OptionalMoney | None = None
    submission_date: IsoDate | None = None
    submitter: str | None = None
    supplier_name: str | None = None
    supplier_number: str | None = None
    tax_amount: OptionalMoney | None = None
    vat_amount: OptionalMoney | None = None
    vat_breakdown: list[VatBreakdown] | None = None
    # A string on the create page, a list in get-details: either is passed through as given.
    vat_registration_numbers: str | list[str] | None = None
    total_amount_excluding_vat: OptionalMoney | None = None
    supplier_address: Address | None = None
    billing_address: Address | None = None
    shipping_address: Address | None = None
    remit_to_address: Address | None = None
    other_addresses: list[OtherAddress] | None = None
    gl_code: str | None = None
    segments: list[Segment] | None = None
    invoice_description: str | None = None
    custom_json: dict[str, JsonValue] | None = None
    options: InvoiceOptions | None = None


def payload_json(model: BaseModel) -> bytes:
    """Serialize a body for the wire: fields never set are omitted, money is an exact JSON number.

    The same bytes are hashed for change detection, so this is also the canonical form.
    """
    return json_bytes(model.model_dump(mode="python", exclude_unset=True, by_alias=True))


def json_bytes(value: object) -> bytes:
    """Compact UTF-8 JSON of plain data; every :class:`~decimal.Decimal` becomes a JSON number
    written exactly as ``format(d, "f")`` (scale kept, never a float, never an exponent)."""
    try:
        return orjson.dumps(value, default=_exact_number)
    except orjson.JSONEncodeError as error:  # a lone surrogate, a non-finite number …
        raise ValueError(f"cannot write as JSON: {error}") from None


def _exact_number(
    value: Any, _decimal: type = Decimal, _fragment: type[orjson.Fragment] = orjson.Fragment
) -> orjson.Fragment:
    """orjson's ``default``: called once per Decimal of a payload (26 per five-line invoice), so
    the common case is a few C calls with names bound at definition (no global look-ups)."""
    if value.__class__ is _decimal and value.is_finite():  # type: ignore[attr-defined]
        text = str(value)  # C speed; the same text as format(value, "f") unless it has "E"
        if "E" not in text:
            return _fragment(text)
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as JSON")


def untag_decimals(raw: bytes) -> bytes:
    """Turn each ``"<token>123.40"`` string that :data:`Amount` wrote into the number ``123.40``."""
    pieces = raw.split(_OPEN_TAG)
    out = [pieces[0]]
    for piece in pieces[1:]:
        end = piece.index(b'"')
        out.append(piece[:end])
        out.append(piece[end + 1 :])
    return b"".join(out)


# --- responses and other bodies --------------------------------------------------------------
class CreateResponse(WireModel):
    """Answer of ``POST /invoice``: 201 CREATED for a new ``invoice_id``, 200 UPDATED otherwise."""

    uuid: Annotated[str, Field(min_length=1)]
    status: Literal["CREATED", "UPDATED"]


class ErrorData(WireModel):
    """Why the ERP could not take an invoice (status-sync with state ERROR)."""

    message: str
    status: str | None = None
    exception: str | None = None


class StatusSyncRequest(WireModel):
    """Body of ``POST /invoice/{uuid}/status-sync``.

    ``CREATED`` (the ERP has the invoice) needs ``invoice_id`` and ``invoice_status``; ``ERROR``
    (the ERP could not take it) needs ``error_data``. ``timestamp`` is ISO-8601 UTC.
    """

    appzen_invoice_state: Literal["CREATED", "ERROR"] = Field(
        validation_alias=AliasChoices("appzen_invoice_state", "appzen-invoice-state")
    )
    invoice_id: str | None = Field(
        default=None, validation_alias=AliasChoices("invoice_id", "invoice-id")
    )
    invoice_status: str | None = Field(
        default=None, validation_alias=AliasChoices("invoice_status", "invoice-status")
    )
    timestamp: IsoDate
    error_data: ErrorData | None = None

    @model_validator(mode="after")
    def _state_needs_its_fields(self) -> Self:
        if self.appzen_invoice_state == "CREATED" and not (self.invoice_id and self.invoice_status):
            raise ValueError("state CREATED needs invoice_id and invoice_status")
        if self.appzen_invoice_state == "ERROR" and self.error_data is None:
            raise ValueError("state ERROR needs error_data {message, status, exception}")
        return self


_ERROR_CODE = re.compile(r"^\s*Error code\s*:\s*([0-9A-Za-z-]+)\s*-\s*(.*)$", re.DOTALL)


class ErrorBody(WireModel):
    """AppZen's error body ``{timestamp, status, error, message: "Error code : X - text"}``."""

    timestamp: str | None = None
    status: int | None = None
    error: str | None = None
    message: str | None = None

    @property
    def error_code(self) -> str | None:
        """The code inside ``message`` (``17e3338d``), if the message carries one."""
        match = _ERROR_CODE.match(self.message or "")
        return match.group(1) if match else None

    @property
    def detail(self) -> str:
        """The human part of ``message``, without the code prefix."""
        match = _ERROR_CODE.match(self.message or "")
        return match.group(2).strip() if match else (self.message or self.error or "")


# --- get-details (deprecated endpoint) -------------------------------------------------------
class SiteAddress(WireModel):
    """The inner object of a get-details address: an address with its site."""

    address_type: str | None = None
    address: dict[str, JsonValue] | None = None
    site_id: str | None = None
    site_name: str | None = None
    custom_json: dict[str, JsonValue] | None = None
    is_active: bool | None = None
    valid_start_date: str | None = None
    valid_end_date: str | None = None


class DetailsAddress(WireModel):
    """A get-details address: ``{address_type, address: {address_type, address: {...}, site…}}``."""

    address_type: str | None = None
    address: SiteAddress | None = None


class InvoiceDetails(WireModel):
    """Answer of the deprecated ``GET /invoice/{uuid}``; lenient: only read for reconciliation."""

    invoice_id: str | None = None
    total_amount: OptionalMoney | None = None
    supplier_address: DetailsAddress | None = None
    billing_address: DetailsAddress | None = None
    shipping_address: DetailsAddress | None = None
    remit_to_address: DetailsAddress | None = None
    invoice_lines: list[dict[str, JsonValue]] | None = None


# --- audit outcomes: search and audit results ------------------------------------------------
class SearchRequest(WireModel):
    """Body of ``POST /invoice/search``: the window of last AppZen update time (both required,
    ISO-8601 UTC) and optional filters. The keys are hyphenated on the wire."""

    from_time: IsoDate = Field(alias="from-last-appzen-update-time")
    to_time: IsoDate = Field(alias="to-last-appzen-update-time")
    appzen_invoice_status: str | None = Field(default=None, alias="appzen-invoice-status")
    erp_invoice_status: str | None = Field(default=None, alias="erp-invoice-status")
    invoice_id: str | None = Field(default=None, alias="invoice-id")
    invoice_number: str | None = Field(default=None, alias="invoice-number")
    supplier_id: str | None = Field(default=None, alias="supplier-id")


class SearchHit(WireModel):
    """One invoice of a search answer (a JSON list of these)."""

    appzen_uuid: Annotated[str, Field(min_length=1, alias="appzen-uuid")]
    erp_invoice_id: str | None = Field(default=None, alias="erp-invoice-id")
    erp_invoice_status: str | None = Field(default=None, alias="erp-invoice-status")
    appzen_invoice_status: str | None = Field(default=None, alias="appzen-invoice-status")
    last_appzen_update_time: str | None = Field(default=None, alias="last-appzen-update-time")


class RiskResults(WireModel):
    """A rule's risk: ``LOW``, ``MEDIUM``, ``HIGH``."""

    risk_level: str | None = None


class AuditRule(WireModel):
    """One audit rule's result: its code, message and risk."""

    rule_code: str | None = None
    risk_message: str | None = None
    risk_results: RiskResults | None = None

    @property
    def risk_level(self) -> str | None:
        """The rule's risk level, if AppZen gave one."""
        return None if self.risk_results is None else self.risk_results.risk_level


class AuditSummary(WireModel):
    """The audit of one invoice: header risk, ``Approved`` / ``Rejected`` and the rules."""

    rules: list[AuditRule] = Field(default_factory=list)
    risk_level: str | None = None
    status: str | None = None


class AuditResultsResponse(WireModel):
    """Answer of ``GET /invoice/{uuid}/audit-results``."""

    audit_results: AuditSummary
