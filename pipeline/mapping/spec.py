"""The mapping-file format: a pydantic model (``extra="forbid"`` everywhere) of one mapping.

A mapping names its **source** (SQL query file, CSV files, JSON / JSON Lines export, the
merchant platform's API), the **invoice key**, how rows make invoices (one row per invoice line,
rows of an invoice contiguous; or a separate ``lines_source`` joined on the key, both listing
invoices in the same order), the **formats** values are read with, the ERP **status** columns,
the **watermark** column, and for every AppZen field under ``header:`` and ``invoice_lines:``
where its value comes from.

The source models are the extract layer's (:mod:`pipeline.extract.specs`), composed here into
the format; the source they name is built by :mod:`pipeline.extract.registry`. Relative
paths (``sql/…``, ``samples/…``) resolve against the project directory: the ``base_dir`` given to
:meth:`MappingSpec.open_source`, by default the mapping file's parent's parent.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import BeforeValidator, Field, PrivateAttr, field_validator, model_validator

from pipeline.extract.base import Source
from pipeline.extract.registry import SourceContext, open_source
from pipeline.extract.specs import AnySourceSpec, SourceSpec
from pipeline.mapping.checkspec import ChecksSpec
from pipeline.mapping.fields import HeaderFields, LineFields
from pipeline.mapping.keys import KeyStep
from pipeline.mapping.leaves import ColumnName, Strict, ThousandsSeparator
from pipeline.mapping.links import DocumentUrl
from pipeline.mapping.names import ColumnCase
from pipeline.mapping.transforms import ISO, DateStyle, Formats, date_format_problem
from pipeline.settings import Settings

if TYPE_CHECKING:
    HeaderSpec = Strict
    LineSpec = Strict
else:
    HeaderSpec = HeaderFields
    LineSpec = LineFields


class FormatsSpec(Strict):
    """How text values are read (a field may override each of these) and how dates go out."""

    decimal_separator: Literal[".", ","] = "."
    thousands_separator: ThousandsSeparator = ""
    date_formats: list[str] = Field(
        default_factory=lambda: [ISO], min_length=1, description="strptime formats or 'iso'."
    )
    datetime_formats: list[str] = Field(default_factory=lambda: [ISO], min_length=1)
    timezone: str = Field("UTC", description="IANA zone of naive datetimes, e.g. Europe/Berlin.")
    date_output: DateStyle = Field(
        "datetime",
        description="datetime: 2024-12-31T00:00:00Z (AppZen's examples); date: 2024-12-31",
    )

    @field_validator("date_formats", "datetime_formats", mode="before")
    @classmethod
    def _one_format(cls, formats: object) -> object:
        return [formats] if isinstance(formats, str) else formats

    @field_validator("date_formats", "datetime_formats")
    @classmethod
    def _formats(cls, formats: list[str]) -> list[str]:
        problems = [problem for fmt in formats if (problem := date_format_problem(fmt))]
        if problems:
            raise ValueError("; ".join(problems))
        return formats

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (e.g. UTC, Europe/Berlin)") from None
        return name

    @model_validator(mode="after")
    def _separators(self) -> Self:
        if self.decimal_separator == self.thousands_separator:
            raise ValueError("decimal_separator and thousands_separator must differ")
        return self

    def resolved(self) -> Formats:
        """These formats as the converters take them."""
        return Formats(
            decimal_separator=self.decimal_separator,
            thousands_separator=self.thousands_separator,
            date_formats=tuple(self.date_formats),
            datetime_formats=tuple(self.datetime_formats),
            zone=zoneinfo.ZoneInfo(self.timezone),
            date_style=self.date_output,
        )


class ErrorColumnsSpec(Strict):
    """ERP error columns: a non-blank ``message`` means the ERP failed to take the invoice."""

    message: ColumnName
    status: ColumnName | None = None
    exception: ColumnName | None = None


SourceRole = Literal["source", "lines_source", "status.source"]
"""Where a source spec sits in a mapping file (its key path, dotted)."""

MAIN_SOURCE = "main"


class MainSourceSpec(Strict):
    """``status.source: main`` (or ``{kind: main}``): status-sync reads the mapping's own
    ``source:``, of which it uses only the key, status and error columns."""

    kind: Literal["main"]


def _main_shorthand(value: object) -> object:
    """``main`` is short for ``{kind: main}``; any other bare text is a mistake said plainly."""
    if value == MAIN_SOURCE:
        return {"kind": MAIN_SOURCE}
    if isinstance(value, str):
        raise ValueError(  # noqa: TRY004 - pydantic reports a ValueError as this field's error
            f"{value!r} is not a status source: write `main` (the mapping's own source) or a "
            "source of its own such as {kind: sql, query: sql/my_erp/status.sql}"
        )
    return value


_StatusSources = Annotated[MainSourceSpec | AnySourceSpec, Field(discriminator="kind")]
StatusSourceSpec = Annotated[
    _StatusSources,
    BeforeValidator(_main_shorthand, json_schema_input_type=Literal["main"] | _StatusSources),
]
"""``status.source``: ``main`` or a source spec of its own (any ``kind:`` a ``source:`` takes)."""

StatusColumn = Annotated[
    str, Field(min_length=1, description="A column of status.source (not of the main source).")
]


class StatusSpec(Strict):
    """The ERP-side status columns status-sync pushes to AppZen, and where status-sync reads the
    current statuses from (``source``): without it, status-sync pushes only what the last sync
    staged; ``main`` reads the mapping's own source (only the key, status and error columns are
    used); a source spec names a light query or file of its own that returns the key and the same
    status and error columns. ``watermark_column`` (a column of the status read) makes the read
    incremental: its maximum over a successful status-sync is bound as ``:since`` next time;
    without it every status is read (a full keyed read)."""

    column: ColumnName
    error: ErrorColumnsSpec | None = None
    source: StatusSourceSpec | None = Field(
        None,
        description="Where status-sync reads current statuses: 'main' (the mapping's source, "
        "status columns only) or a light query/file of its own; default: no read of its own.",
    )
    key: StatusColumn | None = Field(
        None, description="Key column of status.source (default: invoice_key)."
    )
    watermark_column: StatusColumn | None = Field(
        None,
        description="A column of the status read whose maximum is bound as :since next time "
        "(e.g. the newest payment or status change); default: read every status.",
    )

    @model_validator(mode="after")
    def _read_options_need_a_source(self) -> Self:
        if self.source is None and self.watermark_column is not None:
            raise ValueError(
                "watermark_column applies only with a status read: add `source: main` or a "
                "status.source of its own"
            )
        if self.key is not None and (self.source is None or self.source.kind == MAIN_SOURCE):
            raise ValueError(
                "key applies only with a status.source of its own (the main source's key is "
                "invoice_key)"
            )
        return self


class MappingSpec(Strict):
    """One mapping file: a source, how its rows make invoices, and where each AppZen field comes
    from. Rows of one invoice must be contiguous (SQL: ORDER BY the key)."""

    version: Literal[1] = Field(1, description="Version of this format.")
    name: str = Field(
        "mapping", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Default: the file's name."
    )
    description: str | None = None
    source: SourceSpec
    lines_source: SourceSpec | None = Field(
        None, description="Separate line rows joined on the key; both sources in the same order."
    )
    invoice_key: ColumnName = Field(description="The invoice key column (becomes invoice_id).")
    lines_key: ColumnName | None = Field(None, description="Key column of lines_source.")
    key_normalisation: list[KeyStep] = Field(
        default_factory=list,
        description="Steps applied, in order, to every key cell (invoice_key and lines_key) "
        "before keys are compared and sent as invoice_id; default none: keys are compared "
        "exactly, and keys that differ only by whitespace, case or control characters are a "
        "key_collision (neither invoice sent).",
    )
    watermark_column: ColumnName | None = Field(
        None, description="Its maximum over a successful run is bound as :since next time."
    )
    watermark_format: str | None = Field(
        None,
        description="The strftime pattern of a watermark column holding text (SAP's "
        "'%Y%m%d%H%M%S', '%Y-%m-%dT%H:%M:%S'): :since and :until are then bound as text of "
        "that shape, so they compare with the column in its own terms.",
    )
    status: StatusSpec | None = None
    document_url: DocumentUrl | None = Field(
        None,
        description="Link from each invoice of the failed-row report to its document in the ERP: "
        "an http(s) URL with placeholders {invoice_id}, {invoice_number}, {supplier_id}, "
        "{supplier_name}, {invoice_date}, {total_amount} or {currency} in its path, query or "
        "fragment (each value URL-escaped), e.g. https://erp.example/ap/{invoice_id}.",
    )
    column_case: ColumnCase = Field(
        "exact",
        description="insensitive: a column this file names matches the source column of any "
        "case (drivers and exports differ: INVOICE_NUM, invoice_num, InvoiceNum).",
    )
    formats: FormatsSpec = Field(default_factory=FormatsSpec)
    checks: ChecksSpec = Field(
        default_factory=ChecksSpec,
        description="AP pre-flight checks, each error, warning or off (all on by default).",
    )
    max_lines_per_invoice: int = Field(10_000, ge=1, le=1_000_000)
    header: HeaderSpec
    invoice_lines: LineSpec

    _file: str = PrivateAttr(default="<mapping>")
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)
    _project_dir: Path = PrivateAttr(default_factory=Path)

    @field_validator("watermark_format")
    @classmethod
    def _watermark_format_is_a_date_pattern(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        moment = datetime(2024, 3, 15, 9, 30, 45, 123456)
        try:
            datetime.strptime(moment.strftime(pattern), pattern)
        except ValueError as error:
            raise ValueError(
                f"watermark_format {pattern!r} is not a strftime pattern: {error}"
            ) from None
        if not all(code in pattern for code in ("%Y", "%m", "%d")):
            raise ValueError(
                f"watermark_format {pattern!r} needs at least %Y, %m and %d "
                "(e.g. '%Y%m%d%H%M%S' or '%Y-%m-%dT%H:%M:%S')"
            )
        return pattern

    @model_validator(mode="after")
    def _watermark_format_needs_watermark_column(self) -> Self:
        if self.watermark_format is not None and self.watermark_column is None:
            raise ValueError("watermark_format applies only with a watermark_column")
        return self

    @model_validator(mode="after")
    def _lines_key_needs_lines_source(self) -> Self:
        if self.lines_key is not None and self.lines_source is None:
            raise ValueError("lines_key applies only with a lines_source")
        return self

    def bind_file(self, shown: str, lines: dict[tuple[str | int, ...], int], project: Path) -> None:
        """Remember where this spec was read from (for file:line messages and relative paths)."""
        self._file = shown
        self._lines = lines
        self._project_dir = project

    @property
    def file(self) -> str:
        """The mapping file as named in messages."""
        return self._file

    @property
    def watermark(self) -> str | None:
        """Alias of :attr:`watermark_column`."""
        return self.watermark_column

    @property
    def line_key(self) -> str:
        """The key column of the lines source (the invoice key unless ``lines_key`` says)."""
        return self.lines_key or self.invoice_key

    def line_of(self, path: tuple[str | int, ...]) -> int:
        """The line of a key path in the file (of its nearest ancestor that has one; else 1)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self._lines:
                return self._lines[path[:end]]
        return 1

    def where(self, path: tuple[str | int, ...]) -> str:
        """``mappings/x.yaml:12 header.supplier_id.column`` for a key path of this file."""
        dotted = ".".join(str(part) for part in path)
        line = self.line_of(path)
        return f"{self._file}:{line} {dotted}" if dotted else f"{self._file}:{line}"

    def source_context(
        self,
        role: SourceRole,
        base_dir: Path | None = None,
        erp_url: str | None = None,
        settings: Settings | None = None,
    ) -> SourceContext:
        """What the registry needs besides the ``role`` spec: relative paths start at
        ``base_dir`` (default: the project directory of the mapping file)."""
        base = Path(base_dir) if base_dir is not None else self._project_dir
        return SourceContext(base, erp_url, settings, self.where(tuple(role.split("."))))

    def open_source(
        self,
        base_dir: Path | None = None,
        erp_url: str | None = None,
        *,
        settings: Settings | None = None,
    ) -> Source:
        """The source of the rows (of the headers, with a ``lines_source``), built by the
        registry (:func:`pipeline.extract.registry.open_source`); ``settings`` give a merchant
        source its credentials (default: the process settings)."""
        return self._open("source", self.source, base_dir, erp_url, settings)

    def open_lines_source(
        self,
        base_dir: Path | None = None,
        erp_url: str | None = None,
        *,
        settings: Settings | None = None,
    ) -> Source | None:
        """The lines source, or None when rows carry their lines."""
        if self.lines_source is None:
            return None
        return self._open("lines_source", self.lines_source, base_dir, erp_url, settings)

    def open_status_source(
        self,
        base_dir: Path | None = None,
        erp_url: str | None = None,
        *,
        settings: Settings | None = None,
    ) -> Source | None:
        """The source status-sync reads current statuses from (``status.source``: the main
        source for ``main``), or None when the mapping declares no status read."""
        read = None if self.status is None else self.status.source
        if read is None:
            return None
        if isinstance(read, MainSourceSpec):
            return self.open_source(base_dir, erp_url, settings=settings)
        return self._open("status.source", read, base_dir, erp_url, settings)

    def _open(
        self,
        role: SourceRole,
        spec: AnySourceSpec,
        base_dir: Path | None,
        erp_url: str | None,
        settings: Settings | None,
    ) -> Source:
        return open_source(spec, self.source_context(role, base_dir, erp_url, settings))


KeyPath = tuple[str | int, ...]


def iter_paths(spec: object, path: KeyPath = ()) -> Iterator[tuple[KeyPath, object]]:
    """Every (key path, value) of a validated spec tree, depth first, set fields only."""
    yield path, spec
    if isinstance(spec, Strict):
        for name in type(spec).model_fields:
            if name in spec.model_fields_set:
                yield from iter_paths(getattr(spec, name), (*path, name))
    elif isinstance(spec, list):
        for index, item in enumerate(spec):
            yield from iter_paths(item, (*path, index))
    elif isinstance(spec, dict):
        for key, item in spec.items():
            yield from iter_paths(item, (*path, key))


_NAME = re.compile(r"[^A-Za-z0-9_.-]")


def default_name(path: Path) -> str:
    """A mapping's default name: its file name without extension, made safe."""
    return _NAME.sub("_", path.stem)[:64] or "mapping"
