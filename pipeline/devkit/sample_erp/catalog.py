"""What the sample ERP's invoices are drawn from (suppliers, companies, items) and row builders."""

from __future__ import annotations

import random
import uuid
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

STATUSES = ("PARKED", "APPROVED", "POSTED", "PAID")
"""The life cycle of an invoice in the ERP, in order."""
CENT = Decimal("0.01")


class Supplier(NamedTuple):
    """A supplier's name and postal address."""

    name: str
    country: str
    city: str
    postal_code: str
    street: str


class Company(NamedTuple):
    """A company code (AppZen entity) with its currency and VAT codes ``(code, rate %)``."""

    code: str
    name: str
    currency: str
    vat: tuple[tuple[str, str], ...]


class Item(NamedTuple):
    """Something bought: description, unit, GL account and the unit price range in cents."""

    description: str
    unit: str
    gl_account: str
    cents: tuple[int, int]


SUPPLIERS = (
    Supplier("Müller GmbH", "DE", "München", "80331", "Marienplatz 8"),
    Supplier("Société Générale de Fournitures SA", "FR", "Paris", "75008", "29 bd Haussmann"),
    Supplier("株式会社山田商事", "JP", "東京都千代田区", "100-0005", "丸の内1-1-1"),
    Supplier("Acme Office Supplies Ltd", "GB", "London", "EC1A 1BB", "1 King Street"),
    Supplier("Ørsted Kontorservice A/S", "DK", "København", "1050", "Kongens Nytorv 3"),
    Supplier("Northwind Traders Inc.", "US", "Seattle", "98101", "500 Pine St"),
    Supplier("Łódź Logistyka Sp. z o.o.", "PL", "Łódź", "90-001", "ul. Piotrkowska 12"),
    Supplier("Contoso Facilities LLC", "US", "Austin", "78701", "200 Congress Ave"),
    Supplier("Café Olé SARL", "FR", "Lyon", "69002", "4 rue de la République"),
    Supplier("Fabrikam Hardware BV", "NL", "Amsterdam", "1012 AB", "Damrak 70"),
    Supplier("Zürcher Druckerei AG", "CH", "Zürich", "8001", "Bahnhofstrasse 10"),
    Supplier("Globex Cloud Services Ltd", "GB", "Manchester", "M1 1AE", "12 Piccadilly"),
    Supplier("Αθηναϊκή Εμπορική ΑΕ", "GR", "Αθήνα", "105 57", "Ερμού 20"),  # noqa: RUF001
    Supplier("Wide World Importers", "US", "Chicago", "60601", "77 W Wacker Dr"),
    Supplier("Señor Limpio Servicios SL", "ES", "Madrid", "28013", "Gran Vía 28"),
    Supplier("Tailspin Travel GmbH", "AT", "Wien", "1010", "Graben 15"),
)
COMPANIES = (
    Company("DE01", "Nordlicht Handels GmbH", "EUR", (("V19", "19.00"), ("V7", "7.00"))),
    Company("FR01", "Société Exemple SAS", "EUR", (("TVA20", "20.00"), ("TVA55", "5.50"))),
    Company("GB01", "Example Trading Ltd", "GBP", (("S20", "20.00"), ("Z0", "0.00"))),
    Company("US01", "Example Corp", "USD", (("EX0", "0.00"),)),
    Company("CH01", "Beispiel AG Zürich", "CHF", (("M81", "8.10"), ("M26", "2.60"))),
)
ITEMS = (
    Item("Kopierpapier A4, 500 Blatt", "BOX", "6815", (350, 2_500)),
    Item("Bürostuhl ergonomisch", "EA", "0690", (12_000, 59_000)),
    Item("Cloud hosting subscription", "MON", "6835", (4_900, 250_000)),
    Item("Consulting services", "HUR", "6780", (9_000, 22_000)),
    Item("Café-Service & Catering", "EA", "6640", (1_200, 45_000)),
    Item("Frais de déplacement", "EA", "6650", (2_000, 90_000)),
    Item("研修費 (training course)", "EA", "6780", (30_000, 180_000)),
    Item("Laptop 14 inch", "EA", "0650", (89_000, 240_000)),
    Item("Freight / Fracht", "EA", "6740", (1_500, 60_000)),
    Item("Électricité, relevé mensuel", "KWH", "6325", (12, 40)),
    Item("Reinigung Büroflächen", "HUR", "6330", (2_800, 4_500)),
)
TERMS = (("NET30", 30), ("NET14", 14), ("NET60", 60), ("2/10N30", 30))
COST_CENTERS = ("CC1000", "CC2100", "CC3300", "CC4100")
ERP_ERRORS = (
    ("Posting period is not open", "F5 201", "BAPI_INCOMINGINVOICE_CREATE: RETURN TYPE=E F5 201"),
    (
        "Vendor is blocked for posting",
        "F5 351",
        "BAPI_INCOMINGINVOICE_CREATE: RETURN TYPE=E F5 351",
    ),
    ("Tax code is not defined for the country", "FF 704", "TaxCodeNotFound: FF 704"),
)
FIRST_SUPPLIER_ID = 1001


def supplier_rows() -> list[dict[str, object]]:
    """The ``erp_supplier`` rows (fixed, not drawn)."""
    return [
        {
            "supplier_id": FIRST_SUPPLIER_ID + n,
            "supplier_number": f"V{100001 + n}",
            "name": s.name,
            "vat_number": None if s.country == "US" else f"{s.country}{(n * 7919 + 12345):09d}",
            "street": s.street,
            "city": s.city,
            "postal_code": s.postal_code,
            "country_code": s.country,
            "email": f"ap@supplier{n + 1}.example",
            "bank_account_last4": f"{(n * 37 + 1000) % 10_000:04d}",
        }
        for n, s in enumerate(SUPPLIERS)
    ]


def header_row(rng: random.Random, key: int, posting: date) -> dict[str, object]:
    """An ``erp_invoice`` row without its totals, drawn from ``rng``."""
    company = rng.choice(COMPANIES)
    supplier_n = rng.randrange(len(SUPPLIERS))
    issued = posting - timedelta(days=rng.randrange(10))
    terms, term_days = rng.choice(TERMS)
    created = datetime.combine(posting, time(8)) + timedelta(minutes=rng.randrange(600))
    prefix = rng.choice(("INV", "RE", "FA"))
    uuid_bits = rng.getrandbits(128)
    return {
        "invoice_key": key,
        "document_no": f"51{key:08d}",
        "supplier_invoice_no": f"{prefix}-{issued.year}-{rng.randrange(10**5):05d}",
        "company_code": company.code,
        "company_name": company.name,
        "supplier_id": FIRST_SUPPLIER_ID + supplier_n,
        "invoice_date_text": f"{issued:%d.%m.%Y}",
        "posting_date": posting,
        "due_date": issued + timedelta(days=term_days),
        "currency": company.currency if rng.random() < 0.9 else rng.choice(("EUR", "USD")),
        "status": rng.choices(STATUSES, weights=(15, 20, 40, 25))[0],
        "payment_terms": terms,
        "purchase_order_no": f"45{rng.randrange(10**8):08d}" if rng.random() < 0.4 else None,
        "cost_center": rng.choice(COST_CENTERS),
        "description": f"{SUPPLIERS[supplier_n].name} {issued:%m/%Y}",
        "document_uuid": str(uuid.UUID(int=uuid_bits, version=4)) if rng.random() < 0.3 else None,
        "erp_error_message": None,
        "erp_error_status": None,
        "erp_error_exception": None,
        "created_at": created,
        "updated_at": created + timedelta(hours=rng.randrange(72)),
    }


def line_row(rng: random.Random, header: dict[str, object], number: int) -> dict[str, object]:
    """An ``erp_invoice_line`` row of ``header``, drawn from ``rng``; amounts exact."""
    company = next(c for c in COMPANIES if c.code == header["company_code"])
    item = rng.choice(ITEMS)
    cents = rng.randint(*item.cents)
    if item.unit == "HUR":  # half hours: an even number of cents keeps the amount exact
        quantity, cents = Decimal(rng.randint(2, 80)) / 2, cents - cents % 2
    elif item.unit == "KWH":
        quantity = Decimal(rng.randint(100, 5_000))
    else:
        quantity = Decimal(rng.randint(1, 12))
    vat_code, rate = rng.choice(company.vat)
    price = Decimal(cents) / 100
    return {
        "invoice_key": header["invoice_key"],
        "line_number": number,
        "description": item.description,
        "item_code": f"M-{ITEMS.index(item) + 100:04d}",
        "quantity": quantity.quantize(CENT),
        "unit_of_measure": item.unit,
        "unit_price": price,
        "vat_code": vat_code,
        "vat_rate": Decimal(rate),
        "gl_account": item.gl_account,
        "cost_center": header["cost_center"] if rng.random() < 0.8 else rng.choice(COST_CENTERS),
        **line_amounts(quantity, price, Decimal(rate)),
    }


def line_amounts(quantity: Decimal, unit_price: Decimal, vat_rate: Decimal) -> dict[str, Decimal]:
    """``line_amount`` (exact: quantity times unit price) and ``vat_amount`` (half up, cents)."""
    amount = quantity * unit_price
    if amount != amount.quantize(CENT):
        raise ValueError(f"{quantity} x {unit_price} = {amount} is not a whole number of cents")
    vat = (amount * vat_rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    return {"line_amount": amount.quantize(CENT), "vat_amount": vat}


def header_totals(lines: list[dict[str, object]]) -> dict[str, Decimal]:
    """``net_amount``, ``vat_amount`` (sums of the lines) and ``total_amount`` (their sum)."""
    net = sum((_decimal(line["line_amount"]) for line in lines), Decimal("0.00"))
    vat = sum((_decimal(line["vat_amount"]) for line in lines), Decimal("0.00"))
    return {"net_amount": net, "vat_amount": vat, "total_amount": net + vat}


def _decimal(value: object) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"expected a Decimal amount, got {value!r}")
    return value
