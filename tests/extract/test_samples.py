"""The shipped sample exports read as documented in samples/README.md: totals exact, dirty rows
exactly the documented ones."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path

import pandas as pd

from pipeline.extract.csv import CsvSource
from tests.extract.conftest import REPO

CENT = Decimal("0.01")


def _european(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(".", "").replace(",", "."))
    except InvalidOperation:
        return None


def _date_ok(text: str) -> bool:
    try:
        datetime.strptime(text, "%d.%m.%Y")
    except ValueError:
        return False
    return True


def _flat_export() -> tuple[pd.DataFrame, list[str]]:
    source = CsvSource("samples/flat_ap_export.csv", base_dir=REPO, delimiter=";")
    chunks = list(source.chunks({}))
    frame = pd.concat([pd.DataFrame(dict(chunk.columns)) for chunk in chunks], ignore_index=True)
    locations = [chunk.location(i) for chunk in chunks for i in range(len(chunk))]
    return frame, locations


def _problems(lines: pd.DataFrame) -> list[str]:
    """What is wrong with one invoice's rows (empty when it is clean and its totals add up)."""
    first = lines.iloc[0]
    if not _date_ok(first["invoice_date"]):
        return ["invoice_date"]
    amounts = [(_european(r["quantity"]), _european(r["unit_price"])) for _, r in lines.iterrows()]
    if any(price is None or quantity is None for quantity, price in amounts):
        return ["unit_price"]
    net = vat = Decimal(0)
    for _, row in lines.iterrows():
        line_net = _european(row["quantity"]) * _european(row["unit_price"])  # type: ignore[operator]
        assert line_net == _european(row["line_net"])
        net += line_net
        rate = _european(row["vat_rate"])
        vat += (line_net * rate / 100).quantize(CENT, ROUND_HALF_UP)  # type: ignore[operator]
    assert net == _european(first["net_total"])
    assert vat == _european(first["vat_total"])
    assert net + vat == _european(first["gross_total"])
    return []


def test_the_flat_export_is_as_documented() -> None:
    frame, locations = _flat_export()

    assert frame["invoice_no"].nunique() == 20
    assert len(frame) == 50
    problems = {
        str(number): found
        for number, lines in frame.groupby("invoice_no")
        if (found := _problems(lines))
    }
    assert problems == {"AP-2024-0107": ["invoice_date"], "AP-2024-0113": ["unit_price"]}
    at = dict(zip(frame["invoice_no"] + "/" + frame["line_no"], locations, strict=True))
    assert at["AP-2024-0107/1"] == "samples/flat_ap_export.csv:21"
    assert at["AP-2024-0113/1"] == "samples/flat_ap_export.csv:33"
    assert any("\n" in text for text in frame["line_text"])
    assert "Łódź Logistyka Sp. z o.o." in set(frame["supplier_name"])


def test_the_merchant_export_has_the_documented_shape() -> None:
    path = Path(REPO / "samples/merchant_invoices.json")
    document = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    invoice_keys = {
        "id",
        "supplierId",
        "storeId",
        "supplierStoreId",
        "reference",
        "completeDate",
        "note",
        "invoiceItems",
    }
    item_keys = {
        "barcode",
        "note",
        "name",
        "price",
        "vatPercentage",
        "quantity",
        "productId",
        "accountId",
    }
    bad_dates = []
    for invoice in document["invoices"]:
        assert set(invoice) == invoice_keys
        assert invoice["invoiceItems"]
        for item in invoice["invoiceItems"]:
            assert set(item) == item_keys
            assert isinstance(item["price"], str)
            assert Decimal(item["price"]) > 0
            assert isinstance(item["quantity"], int)
        try:
            datetime.strptime(invoice["completeDate"], "%Y-%m-%d")
        except ValueError:
            bad_dates.append(invoice["id"])
    assert len(document["invoices"]) == 10
    assert bad_dates == [880106]
