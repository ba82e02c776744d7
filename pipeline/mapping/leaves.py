"""The value spec of one field in a mapping file (where a value comes from and how it is read).

A value is exactly one of ``column`` (a source column; a bare string is short for it), ``const``,
``template`` (``"{po_prefix}-{po_number}"``: only ``{column}`` placeholders, no code), ``multiply``
(the exact product of decimal columns: quantity * unit price) or ``sum_lines`` (header fields: the
sum of a mapped line value). Then, in order: blank → ``default`` (or ``on_null``), ``transform``
(named text functions), ``map`` (source codes → values, ``null`` = send nothing, ``others`` for the
rest), else the ``type`` conversion with its formats.
"""

from __future__ import annotations

import difflib
import re
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from pipeline.mapping.names import ColumnCase, ColumnLookup, case_hint
from pipeline.mapping.transforms import TRANSFORMS, LeafType, date_format_problem

Scalar = str | int | Decimal | bool
ThousandsSeparator = Literal["", ",", ".", " ", "'", "\u00a0", "\u202f"]
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class Strict(BaseModel):
    """Base of every mapping-file model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def suggest(word: str, choices: object) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    names = [str(choice) for choice in choices]  # type: ignore[attr-defined]
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _known_column(name: str, info: ValidationInfo) -> str:
    """With the source's columns in the validation context, a column must be one of them (of
    any case when the context's ``column_case`` is ``insensitive``)."""
    context = info.context if isinstance(info.context, dict) else {}
    columns = context.get("columns")
    case: ColumnCase = "insensitive" if context.get("column_case") == "insensitive" else "exact"
    if columns is not None and name not in ColumnLookup(columns, case):
        source = context.get("source", "the source")
        hint = case_hint(name, columns) or suggest(name, columns)
        raise ValueError(f"no column {name!r} in {source}{hint}")
    return name


ColumnName = Annotated[
    str,
    Field(min_length=1, description="A column of the source."),
    AfterValidator(_known_column),
]


def template_columns(template: str) -> list[str]:
    """The columns a template names; ValueError if it is not ``text {column} text`` form."""
    columns = []
    for match in _PLACEHOLDER.finditer(template):
        token = match.group(0)
        if token in ("{{", "}}"):
            continue
        name = match.group(1)
        if name is None:
            raise ValueError(f"unmatched {token!r} in template (write {token * 2} for a brace)")
        if not name.strip() or any(mark in name for mark in "!:[]()"):
            raise ValueError(
                f"placeholder {token!r}: templates take only {{column}} placeholders "
                "(no format specs, indexes or code)"
            )
        columns.append(name)
    if not columns:
        raise ValueError("a template needs at least one {column} placeholder; use const: otherwise")
    return columns


def template_parts(template: str) -> list[tuple[str, str | None]]:
    """The template as ``(literal, column)`` pairs, the last column possibly None."""
    parts: list[tuple[str, str | None]] = []
    literal = ""
    for piece in re.split(r"(\{\{|\}\}|\{[^{}]*\})", template):
        if piece in ("{{", "}}"):
            literal += piece[0]
        elif piece.startswith("{") and piece.endswith("}") and len(piece) > 1:
            parts.append((literal, piece[1:-1]))
            literal = ""
        else:
            literal += piece
    parts.append((literal, None))
    return parts


SOURCES = ("column", "const", "template", "multiply", "sum_lines")


class OthersValue(Strict):
    """Send this value for every source code the map does not list."""

    value: Scalar


Others = Literal["error", "keep", "omit"] | OthersValue


class ValueSpec(Strict):
    """Where one AppZen value comes from and how it is read; a bare string means ``column:``."""

    column: ColumnName | None = None
    const: Scalar | None = Field(None, description="A fixed value (canonical: 1.5, 2024-12-31).")
    template: str | None = Field(None, description='Text with {column} placeholders: "{a}-{b}".')
    multiply: list[ColumnName] | None = Field(
        None, min_length=2, description="Exact product of decimal columns, e.g. [quantity, price]."
    )
    sum_lines: str | None = Field(
        None,
        pattern=r"^[a-z_]+(\.[a-z_]+)*$",
        description="Header only: sum of a mapped line value, e.g. total_amount.amount.",
    )
    default: Scalar | None = Field(None, description="Sent when the source value is blank.")
    type: LeafType | None = Field(None, description="Conversion; inferred from the AppZen field.")
    format: str | list[str] | None = Field(
        None, description="strptime date format(s) tried in order ('%d.%m.%Y'), or 'iso'."
    )
    decimal_separator: Literal[".", ","] | None = None
    thousands_separator: ThousandsSeparator | None = None
    scale: int | None = Field(
        None, ge=0, le=12, description="Decimal places sent (2: 7.5 → 7.50); more is a failure."
    )
    min: Decimal | None = Field(
        None,
        allow_inf_nan=False,
        description="Decimal values below it are failures (rule range): 0 where a negative "
        "amount is a data error.",
    )
    transform: str | list[str] | None = Field(
        None, description=f"Named text transforms: {', '.join(sorted(TRANSFORMS))}."
    )
    map: dict[str, Scalar | None] | None = Field(
        None, description="Source code → value sent (null: send nothing)."
    )
    others: Others = Field(
        "error", description="Codes missing from map: error, keep, omit or {value: …}."
    )
    on_null: Literal["omit", "error"] | None = Field(
        None, description="Blank and no default: error (AppZen-required fields) or omit."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: object) -> object:
        if isinstance(data, str):
            return {"column": data}
        if not isinstance(data, dict | BaseModel):
            raise ValueError(  # noqa: TRY004 - pydantic reports ValueError, not TypeError
                f"expected a column name or a mapping such as {{column: …}} or {{const: …}}, "
                f"got {data!r} (write {{const: {data}}} for a fixed value)"
            )
        return data

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        return {"anyOf": [{"type": "string", "description": "Short for {column: …}."}, schema]}

    @field_validator("template")
    @classmethod
    def _template(cls, template: str | None, info: ValidationInfo) -> str | None:
        if template is not None:
            for column in template_columns(template):
                _known_column(column, info)
        return template

    @field_validator("transform")
    @classmethod
    def _transform(cls, value: str | list[str] | None) -> str | list[str] | None:
        for name in [value] if isinstance(value, str) else value or []:
            if name not in TRANSFORMS:
                raise ValueError(
                    f"unknown transform {name!r}{suggest(name, TRANSFORMS)} "
                    f"(known: {', '.join(sorted(TRANSFORMS))})"
                )
        return value

    @field_validator("format")
    @classmethod
    def _format(cls, value: str | list[str] | None) -> str | list[str] | None:
        for fmt in [value] if isinstance(value, str) else value or []:
            problem = date_format_problem(fmt)
            if problem:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [key for key in SOURCES if key in self.model_fields_set]
        if len(given) != 1:
            found = f"got {' and '.join(given)}" if given else "got none"
            raise ValueError(f"give exactly one of {', '.join(SOURCES)} ({found})")
        if given == ["const"] and self.const is None:
            raise ValueError("const: needs a value; leave the field out to send nothing")
        if given == ["const"]:
            useless = sorted(
                self.model_fields_set & {"default", "map", "transform", "on_null", "min"}
            )
            if useless:
                raise ValueError(f"{', '.join(useless)} has no effect on a const value")
        return self

    @property
    def transforms(self) -> list[str]:
        """The transform names as a list."""
        value = self.transform
        return [value] if isinstance(value, str) else list(value or [])

    @property
    def formats(self) -> tuple[str, ...] | None:
        """The declared date formats, if any."""
        value = self.format
        return None if value is None else ((value,) if isinstance(value, str) else tuple(value))


class CustomJsonSpec(Strict):
    """``custom_json``: chosen columns as they are, and named values built like any field."""

    columns: list[ColumnName] = Field(
        default_factory=list, description="Columns copied under their own names."
    )
    fields: dict[str, ValueSpec] = Field(
        default_factory=dict, description="Keys built from a value spec."
    )
