"""Report cells: controls and bidi marks made visible, long values cut, secrets scrubbed."""

from __future__ import annotations

import secrets

import pytest

from pipeline import redact
from pipeline.report.cells import MAX_CELL_CHARS, cell, neutralise_formula, visible


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\x00b", "a\u2400b"),
        ("tab\there", "tab\u2409here"),
        ("line1\nline2\r\n", "line1\u240aline2\u240d\u240a"),
        ("\x1b[31mred", "\u241b[31mred"),
        ("del\x7f", "del\u2421"),
        ("c1\x85\x9b", "c1<U+0085><U+009B>"),
        ("invoice\u202egnp.exe", "invoice<U+202E>gnp.exe"),
        ("\u202a\u202b\u202c\u202d", "<U+202A><U+202B><U+202C><U+202D>"),
        ("\u2066\u2067\u2068\u2069", "<U+2066><U+2067><U+2068><U+2069>"),
        ("\u200e\u200f\u061c", "<U+200E><U+200F><U+061C>"),
        ("a\u2028b\u2029c\ufeff", "a<U+2028>b<U+2029>c<U+FEFF>"),
        ("lone \udcff surrogate", "lone <U+DCFF> surrogate"),
    ],
)
def test_invisible_characters_are_shown(raw: str, shown: str) -> None:
    assert visible(raw) == shown
    assert cell(raw) == shown


@pytest.mark.parametrize(
    "text",
    ["Müller & Söhne GmbH", "東京都 請求書", "Ελληνικά", "עברית ועربية", "✓ 🚀 👩‍💻", "café\u0301"],
)
def test_non_ascii_text_is_kept(text: str) -> None:
    assert cell(text) == text


def test_none_is_empty_and_numbers_are_text() -> None:
    assert cell(None) == ""
    assert cell(400) == "400"


def test_a_long_value_is_cut_saying_how_long_it_was() -> None:
    huge = "A" * 10_000_000
    shown = cell(huge)
    assert shown.startswith("A" * MAX_CELL_CHARS)
    assert shown.endswith("… [cut: 10,000,000 characters in all]")
    assert len(shown) < MAX_CELL_CHARS + 60


def test_a_value_at_the_limit_is_not_cut() -> None:
    assert cell("B" * MAX_CELL_CHARS) == "B" * MAX_CELL_CHARS
    assert "cut" in cell("B" * (MAX_CELL_CHARS + 1))


def test_controls_are_shown_before_the_cut() -> None:
    shown = cell("\u202e" * 5000)
    assert "\u202e" not in shown
    assert shown.endswith("[cut: 5,000 characters in all]")


def test_a_registered_secret_is_scrubbed_even_where_the_value_is_cut() -> None:
    secret = f"sk-{secrets.token_hex(16)}"
    redact.register(secret)
    for at in (0, MAX_CELL_CHARS - 10, MAX_CELL_CHARS + 100):
        shown = cell("x" * at + secret + "y" * 20)
        assert secret not in shown
        assert secret[:12] not in shown  # no prefix survives the cut either
    assert cell(f"key={secret}") == "key=***"


def test_a_database_url_password_is_masked() -> None:
    assert cell("postgresql://etl:hunter2@db/erp") == "postgresql://etl:***@db/erp"


@pytest.mark.parametrize("first", ["=", "+", "-", "@", "\t", "\r"])
def test_formula_starts_are_neutralised(first: str) -> None:
    assert neutralise_formula(f"{first}1+1") == f"'{first}1+1"


@pytest.mark.parametrize("text", ["", "INV-1", "1-2", " =1", "'=already", "x=1"])
def test_other_text_is_left_alone(text: str) -> None:
    assert neutralise_formula(text) == text
