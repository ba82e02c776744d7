"""Validating a wire body into plain data: a model's exact rules, without building model instances.

:func:`plain_validator` derives, from a model's own pydantic-core schema, a validator that checks
everything the model checks (types, bounds, enums, ``IsoDate``, extra keys as ``JsonValue``) but
returns ``dict``/``list`` values instead of model instances. Fields that were not given stay
absent (no defaults are filled in), so the result is what ``model.model_dump(exclude_unset=True)``
of the validated model gives, keys in the same order, and :func:`~pipeline.appzen.models.json_bytes`
of it is :func:`~pipeline.appzen.models.payload_json` of the model, byte for byte.

Why: building some 30 model objects per invoice and dumping them again cost more than half of the
mapping engine's time. A model whose schema this module cannot translate faithfully (a model
validator, a custom ``__init__``, a root model, computed fields, aliases on output) is refused with
:class:`TypeError` rather than half-checked.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import CoreSchema, SchemaValidator, core_schema

_FUNCTION_TYPES = frozenset(
    {"function-after", "function-before", "function-wrap", "function-plain"}
)


def plain_validator(model: type[BaseModel], *, extras: bool = True) -> SchemaValidator:
    """A validator of ``model``'s rules whose output is plain data (see the module docstring).

    ``extras=False``: for input known to hold no key beyond each object's fields (a mapping
    without ``extra:``). The objects then do not look for extra keys (~20 % of the validation
    of a five-line invoice); on such input output and errors are those of the full validator
    (tests/appzen/test_plain.py holds them equal). Extra keys given anyway are dropped."""
    schema = _convert(model.__pydantic_core_schema__, model.__name__, extras)
    return SchemaValidator(schema)


def _convert(node: Any, owner: str, extras: bool = True) -> Any:
    if isinstance(node, list):
        return [_convert(item, owner, extras) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind in _FUNCTION_TYPES and _wraps_model(node):
        raise TypeError(f"{owner}: a model-level validator cannot run on plain data")
    if kind == "model":
        return _typed_dict(node, owner, extras)
    return {key: _convert(value, owner, extras) for key, value in node.items()}


def _wraps_model(node: dict[str, Any]) -> bool:
    inner = node.get("schema")
    return isinstance(inner, dict) and inner.get("type") == "model"


def _typed_dict(node: dict[str, Any], owner: str, extras: bool) -> CoreSchema:
    name = getattr(node.get("cls"), "__name__", owner)
    inner = node["schema"]
    if node.get("root_model") or node.get("custom_init") or node.get("post_init"):
        raise TypeError(f"{name}: root models, custom __init__ and post-init are not supported")
    if inner.get("type") != "model-fields" or inner.get("computed_fields"):
        raise TypeError(f"{name}: only plain fields are supported (no computed fields)")
    config: core_schema.CoreConfig = node.get("config") or core_schema.CoreConfig()
    fields = {key: _field(key, field, name, extras) for key, field in inner["fields"].items()}
    behavior = config.get("extra_fields_behavior", "ignore")
    return core_schema.typed_dict_schema(
        fields,
        cls_name=inner.get("model_name", name),
        extras_schema=_convert(inner.get("extras_schema"), name, extras) if extras else None,
        extra_behavior=behavior if extras or behavior == "forbid" else "ignore",
        ref=node.get("ref"),
        config=config,
    )


def _field(key: str, field: dict[str, Any], owner: str, extras: bool) -> core_schema.TypedDictField:
    if field.get("serialization_alias") not in (None, key) or field.get("serialization_exclude"):
        raise TypeError(f"{owner}.{key}: aliases and exclusions on output are not supported")
    schema = field["schema"]
    required = schema.get("type") != "default"
    if not required:
        schema = schema["schema"]  # absent stays absent: exclude_unset semantics
    return core_schema.typed_dict_field(
        _convert(schema, owner, extras),
        required=required,
        validation_alias=field.get("validation_alias"),
    )
