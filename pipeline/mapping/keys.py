"""Invoice keys are identities: read exactly, normalised only as the mapping declares, and checked
once per run for keys that merely look alike or come back after other invoices.

A key cell is compared as the source gives it: ``5100000020`` and ``5100000020 `` are two keys,
so two documents, never one invoice with both documents' lines. Numbers are written as text
(``12``, ``Decimal('12')`` and ``12.0`` give ``"12"``: a type, not a spelling). A mapping may
declare ``key_normalisation:`` steps (``strip``, ``upper`` …); the normalised key is then the
identity, and the ``invoice_id`` sent.

Two keys that still differ only by whitespace, case or control/format characters (their
:func:`look_alike` forms are equal) are a ``key_collision``; an exact key seen again after other
invoices is a ``contiguity`` failure. Both need, per run, the look-alike form of every key seen:
:class:`pipeline.mapping.seen.FirstSeen` holds it compactly (about 12 bytes an invoice in memory,
the texts in a temporary file), not as a dictionary of strings (~150 MB at a million invoices).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Literal

from pipeline.extract.base import Chunk
from pipeline.mapping.transforms import TRANSFORMS, ConversionError, is_blank, to_text

KeyStep = Literal["strip", "collapse_spaces", "remove_spaces", "remove_control", "upper", "lower"]
"""A declared key normalisation step (``key_normalisation:`` in a mapping)."""


def _remove_control(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


STEPS: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "collapse_spaces": TRANSFORMS["collapse_spaces"],
    "remove_spaces": TRANSFORMS["remove_spaces"],
    "remove_control": _remove_control,
    "upper": TRANSFORMS["upper"],
    "lower": TRANSFORMS["lower"],
}


def invoice_key(value: object) -> str | None:
    """The exact text of a key cell, or None when blank (empty or whitespace only). Text is kept
    as the source spells it; numbers are written as text (``Decimal('12.00')`` gives ``"12"``)."""
    if value.__class__ is str:
        return None if not value or value.isspace() else value
    if is_blank(value):
        return None
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    try:
        return to_text(value) or None
    except ConversionError:
        return str(value)


def key_reader(steps: Sequence[str]) -> Callable[[object], str | None]:
    """A key cell → its key: :func:`invoice_key`, then the declared steps in order (a key the
    steps leave empty is blank)."""
    if not steps:
        return invoice_key
    functions = [STEPS[step] for step in steps]

    def read(value: object) -> str | None:
        key = invoice_key(value)
        if key is None:
            return None
        for function in functions:
            key = function(key)
        return key or None

    return read


def look_alike(key: str) -> str:
    """``key`` case-folded, without whitespace and control or format characters: two keys with
    the same look-alike form differ only in what a person reading a report cannot tell apart."""
    folded = key.casefold()
    if folded.isprintable() and " " not in folded:
        return folded
    return "".join(
        ch for ch in folded if not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf")
    )


ROW_BITS = 40


class Locations:
    """Source locations as integers (chunk number, row), named again on demand: the locators of
    the run's chunks are kept (no rows: origin and first row only), one per chunk."""

    def __init__(self) -> None:
        self._chunks: list[Chunk] = []

    def code(self, chunk: Chunk, row: int) -> int:
        """The code of row ``row`` of ``chunk`` (chunks come in order: only a new one is added)."""
        if not self._chunks or self._chunks[-1] is not chunk:
            self._chunks.append(chunk)
        return ((len(self._chunks) - 1) << ROW_BITS) | row

    def location(self, code: int) -> str:
        """The location ``code`` stands for (``x.csv:17``)."""
        return self._chunks[code >> ROW_BITS].location(code & ((1 << ROW_BITS) - 1))
