"""The status read: every invoice's current ERP status from the mapping's ``status.source``.

A mapping declares where current statuses come from (``status.source``): its main source
(``main``: only the key, status and error columns are used) or a light query or file of its own
that returns the key and the same status and error columns. :class:`StatusReader` checks those
columns up front (every missing one named with the mapping file's line), then streams the source
in chunks, each turned into :class:`~pipeline.staging.statuses.StatusColumns` (keys, statuses,
errors: three lists, not an object per row) read exactly as sync reads the same cells
(:func:`~pipeline.mapping.transforms.text_or_none`), so an unchanged status never looks changed.
With ``status.watermark_column`` the read is incremental: the last successful
status read's maximum is bound as ``:since`` (:func:`since_params`); without it every status is
read (the main source is read with ``:since`` unbound, i.e. in full).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

from pipeline.extract.base import Chunk, Source
from pipeline.failures import RowFailure, shorten
from pipeline.mapping.errors import MappingError
from pipeline.mapping.keys import key_reader
from pipeline.mapping.names import ColumnLookup
from pipeline.mapping.refs import missing_status_columns, status_read_refs
from pipeline.mapping.spec import MappingSpec
from pipeline.mapping.transforms import text_or_none
from pipeline.runtime.prefetch import read_ahead
from pipeline.runtime.watermarks import Watermarks, bound_params
from pipeline.settings import Settings
from pipeline.staging import StagingStore, StatusCandidate
from pipeline.staging.records import ErpError
from pipeline.staging.statuses import StatusColumns
from pipeline.staging.tables import KEY_CHARS, STATUS_CHARS

ERROR_PARTS = ("message", "status", "exception")
STATUS_FLOW = "status_sync"
"""The flow of status-sync runs: the runs whose watermark is the status read's."""


@dataclass(slots=True)
class StatusBatch:
    """One chunk of the status read: its statuses by key (as columns), the rows that could not
    be read, and how many rows it had (blank or overlong keys are rows that match no staged
    invoice)."""

    reads: StatusColumns = field(default_factory=StatusColumns)
    failures: list[RowFailure] = field(default_factory=list)
    rows: int = 0


class StatusReader:
    """The status read of one mapping over its opened status source."""

    def __init__(self, spec: MappingSpec, source: Source) -> None:
        status = spec.status
        if status is None or status.source is None:
            raise ValueError(f"{spec.file}: the mapping declares no status read (status.source)")
        self.spec = spec
        self.source = source
        self.incremental = status.watermark_column is not None
        refs = status_read_refs(spec)
        self._key, self._status = refs[0].column, status.column
        self._error = {
            part: getattr(status.error, part) if status.error else None for part in ERROR_PARTS
        }
        self._watermark_column = status.watermark_column
        self._marks = Watermarks()

    def describe(self) -> str:
        """The status source in messages (``sql/sample_erp/status.sql on sqlite:///…``)."""
        return self.source.describe()

    def check(self) -> None:
        """Raise :class:`MappingError` naming every column of the read the source lacks."""
        errors = missing_status_columns(self.spec, self.source.columns(), self.describe())
        if errors:
            raise MappingError(errors)

    @property
    def watermark(self) -> str | None:
        """The largest watermark value read so far, as stored text (None: none read)."""
        return self._marks.value

    def batches(self, since: str | None) -> Generator[StatusBatch, None, None]:
        """The statuses, a chunk at a time (``since``: the last read's watermark, bound only
        when the read is incremental); closing the generator closes the source's stream."""
        chunks = self.source.chunks(bound_params(since if self.incremental else None, None))
        try:
            for chunk in chunks:
                yield self._batch(chunk)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _batch(self, chunk: Chunk) -> StatusBatch:
        lookup = ColumnLookup(chunk.names, self.spec.column_case)
        cells = {name: self._cells(chunk, lookup, name) for name in self._needed()}
        batch = StatusBatch(rows=chunk.row_count)
        # Whole columns at a time (map), then one pass that keeps the readable rows.
        keys = map(key_reader(self.spec.key_normalisation), cells[self._key])  # as sync does
        statuses = map(text_or_none, cells[self._status])
        message_column = self._error["message"]
        messages = map(text_or_none, cells[message_column]) if message_column else repeat(None)
        rows = zip(keys, statuses, messages, strict=False)  # messages may repeat None forever
        reads = batch.reads
        for index, (key, status, message) in enumerate(rows):
            if key is None or len(key) > KEY_CHARS:
                continue  # no staged invoice has it
            if status is not None and len(status) > STATUS_CHARS:
                batch.failures.append(self._too_long(key, status, chunk.location(index)))
                continue
            reads.append(key, status, self._error_of(message, cells, index) if message else None)
        if self._watermark_column is not None:
            marks = [mark for mark in cells[self._watermark_column] if mark is not None]
            self._marks.add(done=marks, still_open=())
        return batch

    def _error_of(self, message: str, cells: dict[str, list[object]], index: int) -> ErpError:
        """The ERP error of row ``index``: its message and the status and exception it has."""
        parts: dict[str, object] = {"message": message}
        for part in ("status", "exception"):
            column = self._error[part]
            value = text_or_none(cells[column][index]) if column else None
            if value is not None:
                parts[part] = value
        return parts

    def _needed(self) -> list[str]:
        columns = [self._key, self._status, *(c for c in self._error.values() if c)]
        if self._watermark_column is not None:
            columns.append(self._watermark_column)
        return list(dict.fromkeys(columns))

    def _cells(self, chunk: Chunk, lookup: ColumnLookup, name: str) -> list[object]:
        column = lookup.find(name)
        if column is None:
            raise MappingError(
                f"{self.spec.file}: {chunk.origin} has no column {name!r}, which the status "
                "read needs (a file of the source differs from the first one?)"
            )
        return list(chunk.columns[column])

    def _too_long(self, key: str, status: str, location: str) -> RowFailure:
        return RowFailure(
            source_key=key,
            source_location=location,
            stage="status_sync",
            rule="status_too_long",
            message=f"the ERP status is {len(status):,} characters long; staging keeps at most "
            f"{STATUS_CHARS}",
            field_path="invoice_status",
            source_column=self._status,
            value=shorten(status),
            hint=f"shorten column {self._status} in the status source (or map a shorter value)",
        )


def open_status_reader(
    spec: MappingSpec, settings: Settings, base_dir: Path | None = None
) -> StatusReader | None:
    """The mapping's status read over its opened source, columns checked; None when the mapping
    declares no status read (status-sync then pushes what the last sync staged)."""
    erp_url = settings.erp_database_url
    source = spec.open_status_source(
        base_dir,
        erp_url.get_secret_value() if erp_url is not None else None,
        settings=settings,
    )
    if source is None:
        return None
    reader = StatusReader(spec, source)
    reader.check()
    return reader


@dataclass(slots=True)
class ReadOutcome:
    """What one status read did: counts (``status_read`` rows, ``status_changed`` ERP statuses
    that differ from staging's, ``status_not_staged`` keys never synced), the rows it could not
    read, the watermark to store, and for a dry run (which records nothing) the pushes the read
    implies (``would_push`` by key) and the pending keys whose read status AppZen already has
    (``settled``)."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[RowFailure] = field(default_factory=list)
    watermark: str | None = None
    would_push: dict[str, StatusCandidate] = field(default_factory=dict)
    settled: set[str] = field(default_factory=set)


def refresh_statuses(
    store: StagingStore, mapping: str, reader: StatusReader, *, dry_run: bool = False
) -> ReadOutcome:
    """Read every status (since the last read's watermark), compare each chunk with staging and
    record the changed ones (pending a push where AppZen was told otherwise); a dry run only
    compares. Blocking: run it in a worker thread."""
    since = store.last_watermark(mapping, STATUS_FLOW) if reader.incremental else None
    outcome = ReadOutcome()
    for batch in read_ahead(reader.batches(since)):  # the ERP's next chunk while staging answers
        outcome.counts["status_read"] += batch.rows
        outcome.failures += batch.failures
        _count(outcome.counts, "failed_status_sync", len(batch.failures))
        if dry_run:
            comparison = store.compare_status_reads(mapping, batch.reads.reads(), plan=True)
            _count(outcome.counts, "status_changed", len(comparison.changed))
            _count(outcome.counts, "status_not_staged", comparison.not_staged)
            outcome.would_push.update((c.invoice_id, c) for c in comparison.would_push)
            outcome.settled.update(comparison.settled)
        else:
            refresh = store.refresh_status_reads(mapping, batch.reads)
            _count(outcome.counts, "status_changed", refresh.changed)
            _count(outcome.counts, "status_not_staged", refresh.not_staged)
    outcome.watermark = reader.watermark or since
    return outcome


def _count(counts: Counter[str], key: str, n: int) -> None:
    if n > 0:
        counts[key] += n
