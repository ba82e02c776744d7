"""ISO-4217 currency codes accepted by the ``currency`` conversion.

The active list (ISO 4217 amendment 179, 2025) plus codes withdrawn since 2000, because a historical
backfill meets invoices in lats, litas or kuna. ``XXX`` (no currency) and ``XTS`` (testing) are
left out on purpose: an invoice in them is a data error.
"""

from __future__ import annotations

# fmt: off
ACTIVE = frozenset({
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BHD",
    "BIF", "BMD", "BND", "BOB", "BOV", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHE", "CHF", "CHW", "CLF", "CLP", "CNY", "COP", "COU", "CRC", "CUP", "CVE", "CZK", "DJF",
    "DKK", "DOP", "DZD", "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP",
    "GMD", "GNF", "GTQ", "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR",
    "ISK", "JMD", "JOD", "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT",
    "LAK", "LBP", "LKR", "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP",
    "MRU", "MUR", "MVR", "MWK", "MXN", "MXV", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR",
    "NZD", "OMR", "PAB", "PEN", "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB",
    "RWF", "SAR", "SBD", "SCR", "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN",
    "SVC", "SYP", "SZL", "THB", "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH",
    "UGX", "USD", "USN", "UYI", "UYU", "UYW", "UZS", "VED", "VES", "VND", "VUV", "WST", "XAF",
    "XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XCD", "XCG", "XDR", "XOF", "XPD", "XPF", "XPT",
    "XSU", "XUA", "YER", "ZAR", "ZMW", "ZWG"
})
# fmt: on

# fmt: off
WITHDRAWN_SINCE_2000 = frozenset({
    "ANG", "BGN", "BYR", "CUC", "CYP", "EEK", "GHC", "HRK", "LTL", "LVL", "MRO", "MTL", "MZM",
    "ROL", "SDD", "SIT", "SKK", "SLL", "SRG", "STD", "TMM", "TRL", "VEB", "VEF", "YUM", "ZMK",
    "ZWD", "ZWL", "ZWR"
})
# fmt: on

ISO_4217 = ACTIVE | WITHDRAWN_SINCE_2000
"""Every code the ``currency`` conversion accepts."""

# ISO 4217 minor units (decimal places) of the codes above that do not have 2; codes with no
# minor unit in ISO's table (N.A.: gold, silver, SDR, bond units …) are None: not checked.
# fmt: off
MINOR_UNITS: dict[str, int | None] = {
    "BIF": 0, "BYR": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "TRL": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
    "XAG": None, "XAU": None, "XBA": None, "XBB": None, "XBC": None, "XBD": None, "XDR": None,
    "XPD": None, "XPT": None, "XSU": None, "XUA": None,
}
# fmt: on


def minor_units(code: str) -> int | None:
    """Decimal places of an amount in ``code`` (ISO 4217: JPY 0, EUR 2, BHD 3; None: no unit)."""
    return MINOR_UNITS.get(code, 2)
