"""Run-wide "seen before?" tables: a form (a key's look-alike form, a supplier invoice number) →
the first exact key seen with it and where, kept compactly for a run of millions of invoices.

Every invoice of a run passes here (twice: its key, its supplier number), so the table must stay
small and quick. :class:`FirstSeen` keeps, per form:

* the newest forms (up to ``recent``, 16,384 by default) in a dictionary of their texts;
* older ones as 8-byte digests in a sorted numpy array, with a 4-byte entry number each (about 12
  bytes an invoice: ~12 MB a table at a million invoices, where hash tables over flat arrays took
  ~40 MB, and dictionaries of strings ~150 MB);
* their texts and location codes in two unlinked temporary files (``tempfile``'s directory; some
  50 bytes an invoice on disk), read back only when a digest is found again.

Detection is exact: a digest found again is confirmed against the stored form (two different forms
with one digest are two forms, the later one kept in a small dictionary of its own), so a digest
collision can neither merge two invoices nor refuse one. Files are created only once ``recent``
forms have been seen (a small run never writes one) and closed when the table is collected.
"""

from __future__ import annotations

import os
import struct
import tempfile
import weakref
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from pipeline.mapping.errors import MappingError

RECENT = 16_384
"""Forms kept as text before they are moved to the sorted digests and the files."""

_INDEX = struct.Struct("<qqII")  # offset in the data file, location code, form and key lengths
_ENCODING, _ERRORS = "utf-8", "surrogatepass"  # any str round-trips (lone surrogates included)


class _Spill:
    """The texts and location codes of older entries: a fixed-size index record an entry (its
    number times 24 bytes) pointing into a data file of UTF-8 texts. Two unlinked temporary files,
    closed when the owner is collected."""

    def __init__(self, owner: object) -> None:
        try:
            self._index = tempfile.TemporaryFile(prefix="appzen-etl-seen-")  # noqa: SIM115
        except OSError as error:
            raise _unwritable(error) from None
        try:
            self._data = tempfile.TemporaryFile(prefix="appzen-etl-seen-")  # noqa: SIM115
        except OSError as error:
            self._index.close()
            raise _unwritable(error) from None
        self._size = 0
        weakref.finalize(owner, _close, self._index, self._data)

    def append(self, records: list[tuple[str, str, int]]) -> None:
        """Write ``(form, key, where)`` records as the next entries (numbered in order)."""
        index, data = bytearray(), bytearray()
        offset = self._size
        for form, key, where in records:
            form_bytes, key_bytes = form.encode(_ENCODING, _ERRORS), key.encode(_ENCODING, _ERRORS)
            index += _INDEX.pack(offset + len(data), where, len(form_bytes), len(key_bytes))
            data += form_bytes
            data += key_bytes
        try:
            self._index.write(index)
            self._data.write(data)
            self._index.flush()
            self._data.flush()
        except OSError as error:
            raise _unwritable(error) from None
        self._size += len(data)

    def read(self, entry: int) -> tuple[str, str, int]:
        """Entry ``entry``'s ``(form, key, where)``."""
        record = os.pread(self._index.fileno(), _INDEX.size, entry * _INDEX.size)
        offset, where, form_length, key_length = _INDEX.unpack(record)
        text = os.pread(self._data.fileno(), form_length + key_length, offset)
        form = text[:form_length].decode(_ENCODING, _ERRORS)
        return form, text[form_length:].decode(_ENCODING, _ERRORS), where


def _unwritable(error: OSError) -> MappingError:
    return MappingError(
        f"the run's table of keys seen cannot be written to the temporary directory "
        f"{tempfile.gettempdir()} ({error.strerror or error}); it takes ~50 bytes an invoice "
        "past the first 16,384: free space there, or point TMPDIR at a writable directory"
    )


def _close(*files: object) -> None:
    for file in files:
        file.close()  # type: ignore[attr-defined]


class FirstSeen:
    """Per run: a form → the first exact key recorded with it and its location code (an integer:
    :class:`pipeline.mapping.keys.Locations`). ``digest`` hashes a form to a signed 64-bit
    integer (tests pass a colliding one); ``recent`` forms (:data:`RECENT`) are kept as text before
    they move."""

    def __init__(self, *, recent: int | None = None, digest: Callable[[str], int] = hash) -> None:
        self._recent_limit = max(1, RECENT if recent is None else recent)
        self._digest = digest
        self._recent: dict[str, tuple[str, int]] = {}
        self._digests: npt.NDArray[np.int64] = np.empty(0, np.int64)
        """The older forms' digests, sorted."""
        self._entries: npt.NDArray[np.uint32] = np.empty(0, np.uint32)
        """The entry number (in the spill files) of each digest."""
        self._others: dict[str, tuple[str, int]] = {}
        """Forms whose digest an older, different form holds (a digest collision)."""
        self._spill: _Spill | None = None
        self._spilled = 0

    def __len__(self) -> int:
        return len(self._recent) + self._spilled + len(self._others)

    def first(self, form: str, key: str, where: int) -> tuple[str, int] | None:
        """The ``(key, where)`` first recorded for ``form``; when there is none, record these and
        return None."""
        found = self._recent.get(form)
        if found is not None:
            return found
        if self._spilled:
            digest = self._digest(form)
            at = int(self._digests.searchsorted(digest))
            if at < self._spilled and self._digests[at] == digest:
                return self._older(int(self._entries[at]), form, key, where)
        self._recent[form] = (key, where)
        if len(self._recent) >= self._recent_limit:
            self._move_recent()
        return None

    def _older(self, entry: int, form: str, key: str, where: int) -> tuple[str, int] | None:
        """``form``'s first ``(key, where)`` when the older entry with its digest is ``form``'s
        (else a collision: the dictionary of others answers, or records ``form`` there)."""
        assert self._spill is not None
        stored_form, stored_key, stored_where = self._spill.read(entry)
        if stored_form == form:
            return stored_key, stored_where
        found = self._others.get(form)
        if found is None:
            self._others[form] = (key, where)
        return found

    def _move_recent(self) -> None:
        """Move the recent forms to the spill files and their digests into the sorted array (a
        form whose digest another recent form already takes goes to the others instead)."""
        if self._spill is None:
            self._spill = _Spill(self)
        records: list[tuple[str, str, int]] = []
        digests: dict[int, None] = {}
        for form, (key, where) in self._recent.items():
            digest = self._digest(form)
            if digest in digests:
                self._others[form] = (key, where)
                continue
            digests[digest] = None
            records.append((form, key, where))
        self._spill.append(records)
        new = np.fromiter(digests, np.int64, len(digests))
        order = np.argsort(new, kind="stable")
        new = new[order]
        entries = (np.arange(len(new), dtype=np.uint32) + np.uint32(self._spilled))[order]
        at = self._digests.searchsorted(new)
        self._digests = np.insert(self._digests, at, new)
        self._entries = np.insert(self._entries, at, entries)
        self._spilled += len(new)
        self._recent = {}
