"""Mapping-file models of the AppZen fields, generated from ``pipeline.appzen.models``.

Each AppZen model (``Invoice``, ``InvoiceLine``, ``Money``, ``Address``, ``Segment`` …) gets a
``<Model>Fields`` model with one optional key per AppZen field, so an unknown field name is an error
(with a suggestion) and the JSON Schema offers every field to the editor. A field AppZen requires
is required here too, except ``invoice_id`` (defaults to the invoice key) and ``line_number``
(defaults to the line's position). Keys AppZen does not define go under ``extra:``.
"""

from __future__ import annotations

import functools
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, Field, TypeAdapter, ValidationError, create_model

from pipeline.appzen.models import Invoice, InvoiceLine, WireModel
from pipeline.mapping.leaves import CustomJsonSpec, Strict, ValueSpec
from pipeline.mapping.transforms import CANONICAL, ConversionError, LeafType, converter

DEFAULTED = {(Invoice, "invoice_id"), (InvoiceLine, "line_number")}
SKIPPED = {(Invoice, "invoice_lines")}
_TEXT_TYPES: frozenset[LeafType] = frozenset({"string", "currency", "date", "datetime"})
_ALLOWED: dict[LeafType, frozenset[LeafType]] = {
    "string": _TEXT_TYPES,
    "currency": _TEXT_TYPES,
    "date": frozenset({"date", "datetime", "string"}),
    "decimal": frozenset({"decimal", "integer"}),
    "integer": frozenset({"integer"}),
    "boolean": frozenset({"boolean"}),
    "auto": frozenset(typing.get_args(LeafType)),
}


@dataclass(frozen=True, slots=True)
class Shape:
    """What an AppZen field holds: a leaf value, an object, a list of objects or free JSON."""

    kind: Literal["leaf", "object", "list", "json"]
    leaf_type: LeafType = "auto"
    model: type[WireModel] | None = None


def _optional_inner(annotation: Any) -> Any:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [arg for arg in get_args(annotation) if arg is not type(None)]
        annotation = inner[0] if len(inner) == 1 else annotation
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


@functools.cache
def shape_of(model: type[WireModel], name: str) -> Shape:
    """The shape of ``model.name``, with the conversion a leaf gets when the mapping names none."""
    annotation = _optional_inner(model.model_fields[name].annotation)
    if isinstance(annotation, type) and issubclass(annotation, WireModel):
        return Shape("object", model=annotation)
    origin = get_origin(annotation)
    if origin is list and issubclass(get_args(annotation)[0], WireModel):
        return Shape("list", model=get_args(annotation)[0])
    if origin is dict:
        return Shape("json")
    return Shape("leaf", leaf_type=_leaf_type(annotation, name))


def _leaf_type(annotation: Any, name: str) -> LeafType:
    if annotation is bool:
        return "boolean"
    if annotation is int:
        return "integer"
    if annotation is Decimal:
        return "decimal"
    if name == "currency":
        return "currency"
    if name.endswith("_date"):
        return "date"
    return "string"


def is_required(model: type[WireModel], name: str) -> bool:
    """Whether AppZen requires ``model.name``."""
    return model.model_fields[name].is_required()


@functools.cache
def _adapter(model: type[WireModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    assert info.annotation is not None
    if not info.metadata:
        return TypeAdapter(info.annotation)
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)])  # type: ignore[arg-type]


def _fixed_value_problem(
    model: type[WireModel], name: str, kind: LeafType, value: object
) -> str | None:
    try:
        converted = converter(kind, CANONICAL)(value)
        if model is not WireModel:
            _adapter(model, name).validate_python(converted)
    except ConversionError as error:
        return error.message
    except ValidationError as error:
        detail = error.errors(include_url=False)[0]["msg"]
        return f"{value!r} is not valid for AppZen {name}: {detail}"
    return None


def leaf_checker(model: type[WireModel], name: str) -> AfterValidator:
    """A validator that checks a value spec against the AppZen field it feeds."""
    natural = shape_of(model, name).leaf_type if model is not WireModel else "auto"

    def check(spec: ValueSpec) -> ValueSpec:
        kind = spec.type or natural
        problems = []
        if kind not in _ALLOWED[natural]:
            fits = ", ".join(sorted(_ALLOWED[natural]))
            problems.append(f"type {kind} cannot feed AppZen {name} ({natural}): use {fits}")
        if spec.format is not None and kind not in ("date", "datetime"):
            problems.append(f"format: applies to date and datetime values, not {kind}")
        if spec.scale is not None and kind != "decimal":
            problems.append(f"scale: applies to decimal values, not {kind}")
        if spec.min is not None and kind != "decimal":
            problems.append(f"min: applies to decimal values, not {kind}")
        if (spec.multiply or spec.sum_lines) and kind != "decimal":
            problems.append(f"multiply: and sum_lines: give decimals; AppZen {name} is {kind}")
        fixed = [spec.const, spec.default, *(spec.map or {}).values()]
        if not isinstance(spec.others, str):
            fixed.append(spec.others.value)
        for value in fixed:
            problem = None if value is None else _fixed_value_problem(model, name, kind, value)
            if problem and not problems:
                problems.append(problem)
        if problems:
            raise ValueError("; ".join(problems))
        return spec

    return AfterValidator(check)


def _extra_keys(model: type[WireModel]) -> AfterValidator:
    def check(extra: dict[str, ValueSpec] | None) -> dict[str, ValueSpec] | None:
        clash = sorted(set(extra or {}) & set(model.model_fields))
        if clash:
            raise ValueError(
                f"{', '.join(clash)} is an AppZen field: map it directly, not in extra"
            )
        return extra

    return AfterValidator(check)


def _describe(model: type[WireModel], name: str) -> str:
    need = "required by AppZen" if is_required(model, name) else "optional"
    if (model, name) in DEFAULTED:
        need = "optional here (defaults: invoice key / line position)"
    return f"AppZen {model.__name__}.{name}: {need}."


def _field(model: type[WireModel], name: str) -> tuple[Any, Any]:
    shape = shape_of(model, name)
    spec: Any
    if shape.kind == "leaf":
        spec = Annotated[ValueSpec, leaf_checker(model, name)]
    elif shape.kind == "json":
        spec = CustomJsonSpec
    elif shape.kind == "object":
        assert shape.model is not None
        spec = fields_model(shape.model)
    else:
        assert shape.model is not None
        spec = list[fields_model(shape.model, entry=True)]  # type: ignore[misc]
    description = _describe(model, name)
    if is_required(model, name) and (model, name) not in DEFAULTED:
        return spec, Field(description=description)
    return spec | None, Field(None, description=description)


@functools.cache
def fields_model(model: type[WireModel], *, entry: bool = False) -> type[Strict]:
    """The mapping-file model of an AppZen model (``entry``: an element of a list)."""
    fields: dict[str, Any] = {
        name: _field(model, name) for name in model.model_fields if (model, name) not in SKIPPED
    }
    extra = Annotated[dict[str, Annotated[ValueSpec, leaf_checker(WireModel, "extra")]] | None,
                      _extra_keys(model)]  # fmt: skip
    fields["extra"] = (
        extra,
        Field(None, description="Keys AppZen does not define, sent as given (type auto)."),
    )
    if entry:
        fields["for_each_row"] = (
            bool,
            Field(False, description="Header lists: one entry per row of the invoice, deduped."),
        )
    suffix = "Entry" if entry else "Fields"
    generated: type[Strict] = create_model(
        f"{model.__name__}{suffix}",
        __base__=Strict,
        __module__=__name__,
        __doc__=f"Where each field of AppZen's {model.__name__} comes from.",
        **fields,
    )
    generated.__appzen_model__ = model  # type: ignore[attr-defined]
    return generated


HeaderFields = fields_model(Invoice)
LineFields = fields_model(InvoiceLine)


def appzen_model_of(spec_model: type[BaseModel]) -> type[WireModel] | None:
    """The AppZen model a generated fields model describes (None for other models)."""
    found = getattr(spec_model, "__appzen_model__", None)
    return found if isinstance(found, type) and issubclass(found, WireModel) else None
