"""The mapping engine: source chunks in, validated AppZen invoices (or their failures) out.

``MappingEngine(spec).run(chunks)`` yields, in source order, a :class:`MappedInvoice` (the
validated invoice, the exact payload bytes and their hash) or a :class:`RejectedInvoice` (every
mapping and validation failure of that invoice together) per invoice. One bad row never stops the
others; only a fatal cause does (:class:`MappingError`: a column the mapping needs is missing).
Keys are identities (:mod:`pipeline.mapping.keys`): results wait a little
(:mod:`pipeline.mapping.identities`) so that of two documents whose keys only look alike, or of
the two parts of a split invoice, neither is sent.

Speed: the mapping is compiled once into closures (:mod:`pipeline.mapping.plan`); the column
lists a chunk holds are converted whole, column by column, and zipped into row tuples; header
fields are read once per invoice; each invoice is validated once, against the AppZen model's own
rules but into plain data (:mod:`pipeline.appzen.plain`: no model objects to build and dump again).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from operator import itemgetter
from typing import Any, cast

from pydantic import ValidationError

from pipeline.appzen.models import ErrorData, Invoice, json_bytes
from pipeline.appzen.plain import plain_validator
from pipeline.extract.base import Chunk
from pipeline.failures import InvoiceFacts, RowFailure
from pipeline.mapping.checks import Checks, supplier_invoice_key
from pipeline.mapping.grouping import Group, Keyed, Orphan, Row, merge_join, runs
from pipeline.mapping.identities import Identities
from pipeline.mapping.keys import key_reader
from pipeline.mapping.names import ColumnLookup
from pipeline.mapping.plan import Compiler, Ctx, Layouts, Node, RowTable
from pipeline.mapping.refs import missing_columns, needed_columns
from pipeline.mapping.rejections import (
    absent_supplier,
    invoice_failure,
    orphan_rejection,
    too_many_lines,
    unencodable,
    validation_failures,
)
from pipeline.mapping.results import (
    MappedInvoice,
    RejectedInvoice,
    Result,
    Streamed,
    UnchangedSource,
)
from pipeline.mapping.skipping import AckedSources, Skipper
from pipeline.mapping.sourcehash import SourceHasher

__all__ = [
    "MappedInvoice",
    "MappingEngine",
    "RejectedInvoice",
    "Result",
    "Streamed",
    "UnchangedSource",
]
from pipeline.mapping.errors import MappingError
from pipeline.mapping.spec import MappingSpec
from pipeline.mapping.transforms import is_blank, text_or_none
from pipeline.runtime.gcpause import collector_paused

_validate = plain_validator(Invoice).validate_python
_validate_closed = plain_validator(Invoice, extras=False).validate_python
"""For mappings without ``extra:``: their invoices have no keys beyond AppZen's fields."""


@dataclass(frozen=True, slots=True)
class _Plan:
    invoice: Node
    validate: Callable[[object], dict[str, Any]]
    columns_by_path: dict[str, str]
    header: RowTable
    lines: RowTable
    key_at: int
    line_key_at: int
    status_at: tuple[int | None, ...]
    watermark_at: int | None
    supplier_at: int | None


class MappingEngine:
    """Runs one mapping over source chunks."""

    def __init__(self, spec: MappingSpec, *, today: date | None = None) -> None:
        self.spec = spec
        self.today = today or datetime.now(UTC).date()
        """The day the ``invoice_date`` check counts from (default: today, UTC)."""
        self._read_key = key_reader(spec.key_normalisation)

    def check_columns(
        self,
        columns: Sequence[str],
        line_columns: Sequence[str] | None = None,
        *,
        source: str = "the source",
        lines_source: str = "the lines source",
    ) -> None:
        """Raise :class:`MappingError` naming every column the sources lack (file:line each)."""
        errors = missing_columns(
            self.spec, columns, line_columns, source=source, lines_source=lines_source
        )
        if errors:
            raise MappingError(errors)

    def run(
        self, chunks: Iterable[Chunk], lines: Iterable[Chunk] | None = None
    ) -> Iterator[Result]:
        """Map every invoice of ``chunks`` (with a lines source: header chunks, and ``lines``)."""
        if self.spec.lines_source is not None:
            if lines is None:
                raise MappingError(f"{self.spec.where(('lines_source',))}: pass the line chunks")
            return cast(Iterator[Result], self._run_joined(iter(chunks), iter(lines)))
        # Without an acknowledged-source lookup nothing is skipped: every result is a Result.
        return cast(Iterator[Result], self._run_grouped(iter(chunks), None))

    def run_skipping(
        self, chunks: Iterable[Chunk], acked: AckedSources, *, record: bool = True
    ) -> Iterator[Streamed]:
        """:meth:`run`, but an invoice whose source hash (:mod:`pipeline.mapping.sourcehash`)
        is the one ``acked`` returns for its key is not mapped: an :class:`UnchangedSource`
        comes instead; the mapped carry their source hash. ``acked`` is asked once per chunk
        for its keys. A mapping with a lines source maps every invoice (no skipping). Without
        ``record`` (a dry run) mapped invoices carry no source hash (none is computed for them)."""
        if self.spec.lines_source is not None:
            return self.run(chunks)
        return self._run_grouped(iter(chunks), acked, record)

    # --- one row per line ----------------------------------------------------------------------
    def _run_grouped(
        self, chunks: Iterator[Chunk], acked: AckedSources | None, record: bool = False
    ) -> Iterator[Streamed]:
        known = Identities(self.spec.invoice_key)
        try:
            if acked is None:
                yield from self._grouped(chunks, known)
            else:
                yield from self._grouped_skipping(chunks, known, acked, record)
        except Exception:
            yield from known.drain()  # whole invoices read before the source failed go on
            raise

    def _grouped(self, chunks: Iterator[Chunk], known: Identities) -> Iterator[Streamed]:
        plan: _Plan | None = None
        pending: Group | None = None
        limit = self.spec.max_lines_per_invoice
        for chunk in chunks:
            if plan is None:
                plan = self._plan_for(chunk.names, None, chunk.origin)
                finish: Callable[[Group], Streamed] = self._finisher(plan)
            columns, keys = self._columns(chunk, plan.header, plan.key_at)
            where = locator(chunk)
            del chunk  # its cells are freed before the source reads the next chunk
            spans = list(runs(keys, self._read_key))
            rows: Iterator[Row] = plan.header.iter_rows(columns) if keys else iter(())
            del columns
            part: list[Row] = []
            for key, start, end in spans:
                part = list(itertools.islice(rows, end - start))  # rows made as they are taken
                if pending is not None and key == pending.key and start == 0:
                    pending.add(part, where, start, limit)
                    continue
                if pending is not None:
                    yield from known.admit(pending, finish)
                    pending = None
                if key is None:
                    orphan = Orphan(None, where.location(start), 1, "blank_key")
                    yield from known.other(self._orphan(orphan))
                    continue
                pending = Group(key, part[0], (where, start))
                pending.add(part, where, start, limit)
            next(rows, None)  # every row was taken: this only checks the columns' lengths (strict)
            del rows, keys, part  # only the rows of the pending invoice stay
        if pending is not None and plan is not None:
            yield from known.admit(pending, finish)
        yield from known.drain()

    def _grouped_skipping(
        self, chunks: Iterator[Chunk], known: Identities, acked: AckedSources, record: bool
    ) -> Iterator[Streamed]:
        """:meth:`_grouped` with a :class:`Skipper`: each chunk's raw rows are hashed (one
        ``repr`` per row, one join per invoice), and a whole invoice with the hash staging holds
        leaves as an :class:`UnchangedSource` (its rows neither converted nor grouped); the others
        are converted and mapped as usual."""
        plan: _Plan | None = None
        pending: Group | None = None
        limit = self.spec.max_lines_per_invoice
        for chunk in chunks:
            if plan is None:
                plan = self._plan_for(chunk.names, None, chunk.origin)
                width = len(plan.header.raw)
                skipper = Skipper(SourceHasher(self.spec), acked, width, limit, record=record)
                marks = functools.partial(self._watermark, plan=plan)
                finish = skipper.wrap(self._finisher(plan), marks)
            columns, keys, raw = self._raw_rows(chunk, plan.header, plan.key_at)
            where = locator(chunk)
            del chunk  # its cells are freed before the source reads the next chunk
            spans = list(runs(keys, self._read_key))
            same = skipper.read_chunk(raw, spans, pending, where)
            keep = [(start, end) for _, start, end in spans if start not in same]
            rows = plan.header.convert_rows(columns, raw, keep) if keep else raw
            del columns
            for key, start, end in spans:
                if pending is not None and key == pending.key and start == 0:
                    pending.add(rows[start:end], where, start, limit)
                    continue
                if pending is not None:
                    yield from known.admit(pending, finish)
                    pending = None
                if key is None:
                    orphan = Orphan(None, where.location(start), 1, "blank_key")
                    yield from known.other(self._orphan(orphan))
                    continue
                source = same.get(start)
                if source is not None:  # a whole invoice, unchanged: it leaves now, not mapped
                    mark = self._watermark_of(rows[start : min(end, start + limit)], plan)
                    skipped = UnchangedSource(key, source, mark, (where, start))
                    yield from known.admit(Group(key, (), (where, start)), _leaving(skipped))
                    continue
                pending = Group(key, rows[start], (where, start))
                pending.add(rows[start:end], where, start, limit)
            del rows, raw, keys  # only the rows of the pending invoice stay
        if pending is not None and plan is not None:
            yield from known.admit(pending, finish)
        yield from known.drain()

    # --- header rows joined with line rows -----------------------------------------------------
    def _run_joined(self, headers: Iterator[Chunk], lines: Iterator[Chunk]) -> Iterator[Streamed]:
        first_header = next(headers, None)
        first_line = next(lines, None)
        if first_header is None and first_line is None:
            return
        plan = self._plan_for(
            [] if first_header is None else first_header.names,
            [] if first_line is None else first_line.names,
            "" if first_header is None else first_header.origin,
        )
        header_rows = self._keyed(
            itertools.chain([first_header] if first_header else [], headers),
            plan.header,
            plan.key_at,
        )
        line_rows = self._keyed(
            itertools.chain([first_line] if first_line else [], lines),
            plan.lines,
            plan.line_key_at,
        )
        known = Identities(self.spec.invoice_key)
        finish = self._finisher(plan)
        try:
            for item in merge_join(header_rows, line_rows, self.spec.max_lines_per_invoice):
                if isinstance(item, Orphan):
                    yield from known.other(self._orphan(item))
                else:
                    yield from known.admit(item, finish)
        except Exception:
            yield from known.drain()  # whole invoices read before a source failed go on
            raise
        yield from known.drain()

    def _keyed(self, chunks: Iterable[Chunk], table: RowTable, key_at: int) -> Iterator[Keyed]:
        for chunk in chunks:
            rows, keys = self._rows(chunk, table, key_at)
            where = locator(chunk)  # rows waiting in the join keep only the locations alive
            del chunk
            read = self._read_key
            for index, row in enumerate(rows):
                yield Keyed(read(keys[index]), row, where, index)

    # --- shared --------------------------------------------------------------------------------
    def _rows(self, chunk: Chunk, table: RowTable, key_at: int) -> tuple[list[Row], list[object]]:
        columns, keys = self._columns(chunk, table, key_at)
        return (table.rows(columns) if keys else []), keys

    def _raw_rows(
        self, chunk: Chunk, table: RowTable, key_at: int
    ) -> tuple[Mapping[str, list[object]], list[object], list[Row]]:
        """:meth:`_columns`, and the chunk's rows with only the raw values of ``table``. A chunk
        read as rows (:meth:`Chunk.of_rows`) gives them by one pass over its row tuples, and
        transposes a column only when it is read (the key column, and those of invoices that
        are converted); else they are zipped from the columns."""
        if chunk.rows is None or not chunk.row_count:
            columns, keys = self._columns(chunk, table, key_at)
            return columns, keys, table.raw_rows(columns) if keys else []
        found = self._found(chunk, table)
        at = {name: index for index, name in enumerate(chunk.names)}
        picked = [at[found[name]] for name in table.raw]
        if len(picked) == 1:
            raw: list[Row] = [(row[picked[0]],) for row in chunk.rows]
        else:
            with collector_paused():  # C code only: the tuples hold no cycles
                raw = list(map(itemgetter(*picked), chunk.rows))
        lazy = {name: chunk.columns[found[name]] for name in table.raw[key_at : key_at + 1]}
        renamed = _Renamed(chunk.columns, found, lazy)
        return renamed, lazy[table.raw[key_at]], raw

    def _found(self, chunk: Chunk, table: RowTable) -> dict[str, str]:
        """Each raw column of ``table`` → its name in ``chunk`` (every one must be there)."""
        lookup = ColumnLookup(chunk.names, self.spec.column_case)
        found = {name: lookup.find(name) for name in table.raw}
        absent = [name for name, column in found.items() if column is None]
        if absent:
            raise MappingError(
                [
                    f"{self.spec.file}: {chunk.origin} has no column {name!r}, which the mapping "
                    "reads (a file of the source differs from the first one?)"
                    for name in absent
                ]
            )
        return cast(dict[str, str], found)

    def _columns(
        self, chunk: Chunk, table: RowTable, key_at: int
    ) -> tuple[dict[str, list[object]], list[object]]:
        """The raw columns of ``table`` in ``chunk`` (every one must be there), and its keys."""
        found = self._found(chunk, table)
        if not chunk.row_count:
            return {}, []
        columns = {name: chunk.columns[column] for name, column in found.items() if column}
        return columns, columns[table.raw[key_at]]

    def _plan_for(self, columns: list[str], line_columns: list[str] | None, origin: str) -> _Plan:
        spec = self.spec
        self.check_columns(
            columns,
            line_columns,
            source=self._describe("source", origin),
            lines_source=self._describe("lines_source", ""),
        )
        if line_columns is None:
            header = lines = RowTable(needed_columns(spec, "header"))
        else:
            line_refs = needed_columns(spec, "lines")
            in_lines = ColumnLookup(line_columns, spec.column_case)
            lines = RowTable([name for name in line_refs if name in in_lines])
            from_header = [name for name in line_refs if name not in lines.raw]
            header = RowTable(list(dict.fromkeys([*needed_columns(spec, "header"), *from_header])))
        layouts = Layouts(header, lines)
        formats = spec.formats.resolved()
        Compiler(spec, layouts, formats).invoice()
        layouts.freeze()
        compiler = Compiler(spec, layouts, formats)
        invoice = compiler.invoice()
        status = spec.status
        error = status.error if status else None
        supplier = spec.checks.supplier
        reference = supplier.reference if supplier.level != "off" else None
        status_columns = (
            status.column if status else None,
            *(
                (getattr(error, part) if error else None)
                for part in ("message", "status", "exception")
            ),
        )
        return _Plan(
            invoice=invoice,
            validate=_validate_closed if not compiler.extras else _validate,
            columns_by_path=compiler.columns_by_path,
            header=header,
            lines=lines,
            key_at=header.raw_at(spec.invoice_key),
            line_key_at=lines.raw_at(spec.line_key),
            status_at=tuple(None if c is None else header.raw_at(c) for c in status_columns),
            watermark_at=(
                None if spec.watermark_column is None else header.raw_at(spec.watermark_column)
            ),
            supplier_at=None if reference is None else header.raw_at(reference),
        )

    def _describe(self, which: str, origin: str) -> str:
        source = self.spec.source if which == "source" else self.spec.lines_source
        return source.describe() if source is not None else origin

    def _finisher(self, plan: _Plan) -> Callable[[Group], Result]:
        """``_finish`` for one run: its checks remember the run's supplier invoice numbers."""
        checks = Checks(self.spec.checks, plan.columns_by_path, self.today)
        return functools.partial(self._finish, plan=plan, checks=checks)

    def _finish(self, group: Group, plan: _Plan, checks: Checks) -> Result:
        if group.dropped:
            return too_many_lines(
                group, limit=self.spec.max_lines_per_invoice, key_column=self.spec.invoice_key
            )
        ctx = Ctx(group.key, group.rows, group.locate)
        data = plan.invoice(group.header, ctx, "")
        failures = ctx.failures
        if failures and plan.supplier_at is not None:
            failures = absent_supplier(failures, group.header[plan.supplier_at], self.spec)
        try:
            body = plan.validate(data)
        except ValidationError as error:
            failures = failures + validation_failures(error, group, plan.columns_by_path, failures)
            return _rejected(group, failures, data)
        if failures:
            return _rejected(group, failures, data)
        supplier_invoice = supplier_invoice_key(body["supplier_id"], body["invoice_number"])
        found = checks.run(body, group.key, group.locate, group.header_at, supplier_invoice)
        if any(failure.stage == "check" for failure in found):
            found.sort(key=lambda failure: failure.stage != "check")
            return _rejected(group, found, data)
        try:
            payload = json_bytes(body)
        except (ValueError, UnicodeError) as error:  # a lone surrogate in the source text
            failures = unencodable(data, group, plan.columns_by_path) or [
                invoice_failure(
                    group,
                    "serialize",
                    f"cannot write the invoice as JSON: {error}",
                    None,
                    self.spec.invoice_key,
                )
            ]
            return _rejected(group, failures, data)
        return self._mapped(group, plan, payload, tuple(found), supplier_invoice)

    def _orphan(self, orphan: Orphan) -> RejectedInvoice:
        return orphan_rejection(
            orphan, key_column=self.spec.invoice_key, line_key=self.spec.line_key
        )

    def _mapped(
        self,
        group: Group,
        plan: _Plan,
        payload: bytes,
        warnings: tuple[RowFailure, ...],
        supplier_invoice: str | None,
    ) -> Result:
        status, message, code, exception = (
            None if at is None else text_or_none(group.header[at]) for at in plan.status_at
        )
        return MappedInvoice(
            key=group.key,
            payload=payload,
            payload_hash=hashlib.sha256(payload).hexdigest(),
            location=group.locate(-1),
            erp_status=status,
            erp_error=(
                ErrorData(message=message, status=code, exception=exception) if message else None
            ),
            watermark=self._watermark(group, plan),
            warnings=warnings,
            supplier_invoice=supplier_invoice,
        )

    def _watermark(self, group: Group, plan: _Plan) -> object | None:
        at = plan.watermark_at
        if at is None:
            return None
        if self.spec.lines_source is not None or not group.rows:
            value = group.header[at]
            return None if is_blank(value) else value
        return self._watermark_of(group.rows, plan)

    @staticmethod
    def _watermark_of(rows: Sequence[Row], plan: _Plan) -> object | None:
        """The largest watermark of ``rows`` (one invoice's, one row per line)."""
        at = plan.watermark_at
        if at is None:
            return None
        values = [row[at] for row in rows if not is_blank(row[at])]
        if not values:
            return None
        try:
            return max(values)  # type: ignore[type-var]
        except TypeError:
            return max(values, key=str)


def _rejected(group: Group, failures: Sequence[RowFailure], data: object) -> RejectedInvoice:
    """The invoice of ``group`` cannot be sent; what of it could be mapped names it."""
    facts = InvoiceFacts.of(data) if isinstance(data, Mapping) else None
    return RejectedInvoice(group.key, group.locate(-1), tuple(failures), facts)


class _Renamed(Mapping[str, list[object]]):
    """The raw columns of a table read from a chunk's columns under the mapping's names, each
    taken from the chunk only when read (a chunk read as rows then transposes it)."""

    def __init__(
        self,
        columns: Mapping[str, list[object]],
        found: dict[str, str],
        taken: dict[str, list[object]],
    ) -> None:
        self._columns = columns
        self._found = found
        self._taken = taken

    def __getitem__(self, name: str) -> list[object]:
        values = self._taken.get(name)
        if values is None:
            values = self._taken[name] = self._columns[self._found[name]]
        return values

    def __iter__(self) -> Iterator[str]:
        return iter(self._found)

    def __len__(self) -> int:
        return len(self._found)


def _leaving(result: UnchangedSource) -> Callable[[Group], Streamed]:
    """The finish step of an invoice found unchanged before it was grouped: ``result``."""
    return lambda _: result


def locator(chunk: Chunk) -> Chunk:
    """``chunk`` without its rows: enough to name row locations, without keeping every cell
    of the chunk alive while an invoice waits for its next rows."""
    return chunk.without_rows()
