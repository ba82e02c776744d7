"""Report cell text: secrets scrubbed, invisible controls made visible, long values cut.

Every text that goes into a report (CSV, HTML, markdown) passes :func:`cell` first:

1. a value is first trimmed to a working length (so the scrubber never scans megabytes),
2. :func:`pipeline.redact.scrub` replaces registered secrets and database URL passwords,
3. :func:`visible` shows what a reader could otherwise not see: C0 controls as their Unicode
   Control Pictures (NUL → ``␀``, TAB → ``␉``, LF → ``␊``), DEL as ``␡``, and C1 controls, bidi
   controls (``U+202A``-``U+202E``, ``U+2066``-``U+2069``, ``U+200E``/``U+200F``, ``U+061C``),
   line/paragraph separators, the BOM and lone surrogates as ``<U+202E>``,
4. what is longer than the display limit is cut, saying how long the original was.

:func:`neutralise_formula` is the CSV-only step on top (OWASP: a leading ``'``).
"""

from __future__ import annotations

from typing import Final

from pipeline.redact import scrub

MAX_CELL_CHARS: Final = 1000
"""Longest text a report shows in one cell (the original length is reported when cut)."""

_SCRUB_MARGIN: Final = 4096
"""Extra characters kept before scrubbing, so a secret that straddles the display cut is
still seen whole by the scrubber (secrets are far shorter than this)."""

FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make Excel / LibreOffice read a cell as a formula (OWASP CSV injection)."""

_BIDI: Final = (
    *range(0x202A, 0x202F),  # LRE, RLE, PDF, LRO, RLO
    *range(0x2066, 0x206A),  # LRI, RLI, FSI, PDI
    0x200E,  # LRM
    0x200F,  # RLM
    0x061C,  # ALM
)
_INVISIBLE: Final = (0x2028, 0x2029, 0xFEFF)  # line / paragraph separator, BOM / ZWNBSP


def _code(point: int) -> str:
    return f"<U+{point:04X}>"


def _table() -> dict[int, str]:
    table = {point: chr(0x2400 + point) for point in range(0x20)}
    table[0x7F] = "\u2421"  # ␡
    table.update({point: _code(point) for point in range(0x80, 0xA0)})
    table.update({point: _code(point) for point in (*_BIDI, *_INVISIBLE)})
    table.update({point: _code(point) for point in range(0xD800, 0xE000)})  # lone surrogates
    return table


_VISIBLE: Final = _table()


def visible(text: str) -> str:
    """``text`` with control, bidi and other invisible characters shown (``␀``, ``<U+202E>``)."""
    return text.translate(_VISIBLE)


def cut(text: str, original_length: int, limit: int = MAX_CELL_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how long the original was."""
    if len(text) <= limit and original_length <= limit:
        return text
    return f"{text[:limit]}… [cut: {original_length:,} characters in all]"


def cell(value: object, limit: int = MAX_CELL_CHARS) -> str:
    """One report cell: ``""`` for ``None``, else scrubbed, made visible and cut to ``limit``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    length = len(text)
    head = text[: limit + _SCRUB_MARGIN]
    return cut(visible(scrub(head)), length, limit)


def neutralise_formula(text: str) -> str:
    """``text`` prefixed with ``'`` when a spreadsheet would run it as a formula."""
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
