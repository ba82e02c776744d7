"""How the column names a mapping file writes meet the source's: exactly, or ignoring case.

ERPs and their drivers disagree on case: Oracle and SAP HANA keep unquoted names upper case
(``INVOICE_NUM``) but SQLAlchemy hands Oracle's back lower case, a PostgreSQL replica folds them to
lower case, a Dynamics 365 data-management export writes ``INVOICENUMBER`` and its OData feed
``InvoiceNumber``. A mapping that declares ``column_case: insensitive`` reads all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

ColumnCase = Literal["exact", "insensitive"]


class ColumnLookup:
    """The source's columns, looked up by the spelling a mapping file uses."""

    def __init__(self, columns: Iterable[str], case: ColumnCase = "exact") -> None:
        self.columns = list(columns)
        self.case = case
        self._folded: dict[str, list[str]] = {}
        for column in self.columns:
            self._folded.setdefault(self._key(column), []).append(column)

    def _key(self, name: str) -> str:
        return name.casefold() if self.case == "insensitive" else name

    def find(self, name: str) -> str | None:
        """The source column ``name`` means (None: none, or several that differ only in case)."""
        found = self._folded.get(self._key(name), [])
        if name in found:
            return name
        return found[0] if len(found) == 1 else None

    def candidates(self, name: str) -> list[str]:
        """Every source column that ``name`` could mean (two or more: ambiguous)."""
        return list(self._folded.get(self._key(name), []))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.find(name) is not None


def case_hint(name: str, columns: Iterable[str]) -> str:
    """``"; did you mean 'INV'? …"`` when a column differs from ``name`` only in case, or ``""``."""
    folded = name.casefold()
    for column in columns:
        if column.casefold() == folded:
            return f"; did you mean {column!r}? (or set `column_case: insensitive`)"
    return ""
