"""The worklist in a real headless Chromium, used as an AP analyst would: with its script, the
groups, filters, search and sorting narrow and order the rows; without it, the whole table is
there to read. Screenshots of both land in ``test-artifacts/`` as evidence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.report.devtools import FLAGS, Chromium
from tests.report.worklist_data import write_worklist

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SHOWN_KEYS = (
    "Array.from(document.querySelectorAll('tr.invoice'))"
    ".filter(r => getComputedStyle(r).display !== 'none').map(r => r.dataset.key)"
)
SHOWN_GROUPS = (
    "Array.from(document.querySelectorAll('tr.reason'))"
    ".filter(r => getComputedStyle(r).display !== 'none')"
    ".map(r => r.textContent.replace(/\\s+/g, ' ').trim())"
)
CONTROLS_SHOWN = "getComputedStyle(document.getElementById('wl-controls')).display !== 'none'"
STATUS = "document.getElementById('wl-shown').textContent"
ALL_GROUPS = [
    "An unknown currency 4 invoices",
    "A required value is missing 3 invoices",
    "AppZen refused the invoice 3 invoices",
    "A date is not a date 2 invoices",
]


def _keys(*numbers: int) -> list[str]:
    return [f"51000001{n:02d}" for n in numbers]


@pytest.fixture
def browser(chromium: str, tmp_path: Path) -> Iterator[Chromium]:
    with Chromium(chromium, FLAGS, tmp_path / "profile") as opened:
        yield opened


def _shot(browser: Chromium, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    browser.screenshot(path, down_to="#worklist")
    assert path.stat().st_size > 20_000, f"{path} is suspiciously small (a blank page?)"
    return path


def test_with_scripts_the_worklist_groups_filters_searches_and_sorts(
    browser: Chromium, tmp_path: Path
) -> None:
    browser.open(write_worklist(tmp_path, "https://erp.example/ap/{invoice_id}").html)
    assert browser.complaints() == []  # the hashed script ran: no CSP refusal, no exception
    first_link = "document.querySelector('tr.invoice a.doc').href"
    assert browser.js(first_link) == "https://erp.example/ap/5100000101"
    assert browser.js(CONTROLS_SHOWN) is True
    assert browser.js(STATUS) == "Showing 12 of 12 invoices"
    assert browser.js(SHOWN_GROUPS) == ALL_GROUPS
    assert browser.js(SHOWN_KEYS) == _keys(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
    _shot(browser, "worklist-scripts-on.png")

    browser.type_into("wl-search", "gx-881")  # part of an invoice number, any case
    assert browser.js(SHOWN_KEYS) == _keys(3, 4, 11)
    assert browser.js(STATUS) == "Showing 3 of 12 invoices"
    assert browser.js(SHOWN_GROUPS) == [
        "An unknown currency 2 of 4 invoices",
        "A date is not a date 1 of 2 invoices",
    ]

    browser.choose("wl-search", "")
    browser.choose("wl-supplier", "V300")
    assert browser.js(SHOWN_KEYS) == _keys(5, 6, 9)
    browser.choose("wl-age", "7")  # failing for 7 days or more
    assert browser.js(SHOWN_KEYS) == _keys(9)
    browser.choose("wl-supplier", "")
    assert browser.js(SHOWN_KEYS) == _keys(3, 4, 7, 8, 9)
    browser.choose("wl-reason", "2")  # the third group: AppZen refused the invoice
    assert browser.js(SHOWN_KEYS) == _keys(8, 9)
    browser.choose("wl-reason", "")
    browser.choose("wl-age", "0")

    browser.choose("wl-sort", "amount")  # within each group, largest first
    assert browser.js(SHOWN_KEYS) == _keys(3, 1, 4, 2, 5, 7, 6, 8, 9, 10, 11, 12)
    browser.choose("wl-grouped", "off")  # one list, largest first across all groups
    assert browser.js(SHOWN_GROUPS) == []
    assert browser.js(SHOWN_KEYS) == _keys(3, 5, 11, 7, 1, 8, 12, 4, 9, 2, 6, 10)
    browser.choose("wl-sort", "age")  # oldest failures first, then as listed
    assert browser.js(SHOWN_KEYS) == _keys(4, 8, 9, 3, 7, 2, 6, 11, 1, 5, 10, 12)
    browser.choose("wl-sort", "supplier")
    assert browser.js(SHOWN_KEYS) == _keys(1, 2, 7, 10, 12, 3, 4, 8, 11, 5, 6, 9)
    browser.choose("wl-sort", "date")  # invoice date, oldest first
    assert browser.js(SHOWN_KEYS) == _keys(9, 8, 7, 3, 4, 1, 2, 5, 6, 10, 11, 12)
    browser.choose("wl-grouped", "on")  # back in groups, each in invoice-date order
    assert browser.js(SHOWN_GROUPS) == ALL_GROUPS
    assert browser.js(SHOWN_KEYS) == _keys(3, 4, 1, 2, 7, 5, 6, 9, 8, 10, 11, 12)

    browser.choose("wl-grouped", "off")
    browser.choose("wl-sort", "amount")
    browser.type_into("wl-search", "AC-2025")
    assert browser.js(SHOWN_KEYS) == _keys(7, 1, 12, 2, 10)
    assert browser.js(STATUS) == "Showing 5 of 12 invoices"
    assert browser.complaints() == []
    _shot(browser, "worklist-scripts-on-filtered.png")


def test_without_scripts_the_whole_table_is_there_to_read(
    browser: Chromium, tmp_path: Path
) -> None:
    browser.send("Emulation.setScriptExecutionDisabled", value=True)
    browser.open(write_worklist(tmp_path).html)
    assert browser.js(CONTROLS_SHOWN) is False  # inert controls are not shown at all
    assert browser.js(SHOWN_KEYS) == _keys(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
    assert browser.js(SHOWN_GROUPS) == ALL_GROUPS
    text = browser.js("document.body.innerText")
    assert "12 invoices not in AppZen" in text
    assert "Amount at risk: USD 22,310.44, GBP 7,965.00, EUR 4,288.40" in text
    assert "succeeded with 12 failed invoices" in text
    for number in ("AC-2025-0311", "GX-88001", "IN/0046", "Globex Supplies Ltd", "15400.00 USD"):
        assert number in text
    _shot(browser, "worklist-scripts-off.png")
