"""Mapping file → :class:`MappingSpec`, every problem reported at once as ``file:line path: msg``.

A mapping may be named instead of pathed: :func:`locate_mapping` (the one lookup the CLI, flows
and jobs share, through :func:`load_mapping`) finds ``--mapping sample_erp`` in
``APPZEN_MAPPINGS_DIR`` or among the mappings shipped with appzen-etl.

Two passes: the YAML is read safely (:mod:`pipeline.mapping.yamlread`), then validated by the
pydantic model with the source's columns (when known) in the validation context, so structure,
AppZen field names, conversions, formats and column names are all checked in one go. Unknown keys
and columns get a "did you mean" suggestion.
"""

from __future__ import annotations

import contextlib
import types
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pipeline.appzen.models import WireModel
from pipeline.failures import shorten
from pipeline.mapping.errors import MappingError
from pipeline.mapping.fields import appzen_model_of, is_required, shape_of
from pipeline.mapping.leaves import ValueSpec, suggest
from pipeline.mapping.refs import missing_columns
from pipeline.mapping.spec import KeyPath, MappingSpec, default_name, iter_paths
from pipeline.mapping.yamlread import Document, YamlRefused, read_yaml
from pipeline.resources import ResourceError, shipped_root
from pipeline.settings import mappings_dir

MAPPING_SUFFIXES = (".yaml", ".yml")
_NOT_MAPPINGS = {"connectors"}  # mappings/connectors.yaml configures the write-back

TODO_MARK = "TODO(mapping init)"
"""A value ``appzen-etl mapping init`` could not decide starts with this; the loader refuses it,
naming its place, until someone writes the real value."""


class MappingFileError(MappingError):
    """The mapping file is unreadable or invalid; ``errors`` has one ``file:line path: message``
    per problem, all of them."""


def load_mapping(
    path: Path,
    *,
    columns: Collection[str] | None = None,
    line_columns: Collection[str] | None = None,
) -> MappingSpec:
    """Read and check a mapping file; ``columns`` (and ``line_columns`` for a lines source), when
    given, are checked too. ``path`` may name a mapping (see :func:`locate_mapping`). Raises
    :class:`MappingFileError` listing every problem."""
    path = locate_mapping(Path(path), mappings_dir())
    shown = str(path)
    try:
        document = read_yaml(path, shown)
    except YamlRefused as refused:
        raise MappingFileError(refused.errors) from None
    except OSError as error:
        raise MappingFileError(f"{shown}: cannot read the mapping file: {error.strerror}") from None
    data = dict(document.data)
    data.setdefault("name", default_name(path))
    context = {
        "columns": None if columns is None else {*columns, *(line_columns or ())},
        "source": _source_name(data),
        "column_case": data.get("column_case"),
    }
    marks = todo_marks(document, shown)
    try:
        spec = MappingSpec.model_validate(data, context=context)
    except ValidationError as error:
        errors = marks + format_errors(error, document, shown)
        raise MappingFileError(sorted(errors, key=lambda text: _line_number(text, shown))) from None
    spec.bind_file(shown, document.lines, path.resolve().parent.parent)
    problems = marks + _semantic_problems(spec)
    if columns is not None and spec.lines_source is not None:
        problems += missing_columns(spec, list(columns), line_columns, source=_source_name(data))
    if problems:
        raise MappingFileError(sorted(problems, key=lambda text: _line_number(text, shown)))
    return spec


def todo_marks(document: Document, shown: str) -> list[str]:
    """``file:line path: not filled in: TODO(mapping init): …`` for each value left marked."""
    found = []
    for path, value in _strings(document.data, ()):
        if value.startswith(TODO_MARK):
            dotted = ".".join(str(part) for part in path)
            found.append(f"{shown}:{document.line_of(path)} {dotted}: not filled in: {value}")
    return found


def _strings(node: object, path: KeyPath) -> list[tuple[KeyPath, str]]:
    if isinstance(node, str):
        return [(path, node)]
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in _strings(value, (*path, key))]
    if isinstance(node, list):
        return [
            item for index, value in enumerate(node) for item in _strings(value, (*path, index))
        ]
    return []


def locate_mapping(given: Path, folder: Path | None = None) -> Path:
    """The mapping file ``given`` names: itself when it exists or is absolute; else the same
    relative path (``.yaml`` optional) in ``folder`` (the ``APPZEN_MAPPINGS_DIR`` setting), then
    among the shipped mappings (``sample_erp``) and project files (``mappings/sample_erp.yaml``).
    Raises :class:`MappingFileError` naming every place it looked."""
    if given.is_absolute() or given.is_file():
        return given
    names = [given]
    if given.suffix not in MAPPING_SUFFIXES:
        names.append(given.with_name(given.name + ".yaml"))
    places = _search_places(folder)
    for place in places.values():
        for name in names:
            if (place / name).is_file():
                return place / name
    looked = ", ".join(f"{label} {place}" for label, place in places.items())
    raise MappingFileError(
        f"{given}: no such mapping file; looked for {' and '.join(map(str, names))} in {looked}; "
        "give the file's path, or set APPZEN_MAPPINGS_DIR to the folder that holds it"
        f"{_shipped_names()}"
    )


def _search_places(folder: Path | None) -> dict[str, Path]:
    """Where a mapping name is looked up, in order, labelled for the error message."""
    places = {"the working directory": Path.cwd()}
    if folder is not None:
        places["APPZEN_MAPPINGS_DIR"] = folder
    try:
        root = shipped_root()
    except ResourceError:
        return places
    return places | {"the shipped mappings": root / "mappings", "the shipped files": root}


def mapping_names(folder: Path | None = None) -> list[str]:
    """The names (file stems) of the mappings a name can reach: those in ``folder`` (the
    ``APPZEN_MAPPINGS_DIR`` setting, read now when not given) and the shipped ones, sorted."""
    places = [folder if folder is not None else mappings_dir()]
    with contextlib.suppress(ResourceError):
        places.append(shipped_root() / "mappings")
    found = {
        path.stem
        for place in places
        if place is not None and place.is_dir()
        for suffix in MAPPING_SUFFIXES
        for path in place.glob(f"*{suffix}")
    }
    return sorted(found - _NOT_MAPPINGS)


def _shipped_names() -> str:
    try:
        found = sorted(p.stem for p in (shipped_root() / "mappings").glob("*.yaml"))
    except ResourceError:
        return ""
    names = [name for name in found if name not in _NOT_MAPPINGS]
    return f" (shipped: {', '.join(names)})" if names else ""


def _line_number(message: str, shown: str) -> int:
    digits = message[len(shown) + 1 :].split(" ", 1)[0].rstrip(":")
    return int(digits) if digits.isdigit() else 0


def _source_name(data: dict[str, object]) -> str:
    names = []
    for which in ("source", "lines_source"):
        source = data.get(which)
        if isinstance(source, dict):
            names += [
                str(source[key]) for key in ("query", "path") if isinstance(source.get(key), str)
            ]
    return " or ".join(names) or "the source"


def _semantic_problems(spec: MappingSpec) -> list[str]:
    problems = []
    for path, node in iter_paths(spec.invoice_lines, ("invoice_lines",)):
        if path[-1] == "for_each_row" and node is True:
            problems.append(
                f"{spec.where(path)}: for_each_row applies to header lists only "
                "(a line's lists are read from its own row)"
            )
        if isinstance(node, ValueSpec) and node.sum_lines is not None:
            problems.append(f"{spec.where(path)}: sum_lines applies to header fields only")
    for path, node in iter_paths(spec.header, ("header",)):
        if isinstance(node, ValueSpec) and node.sum_lines is not None:
            problem = _line_value_problem(spec, node.sum_lines)
            if problem:
                problems.append(f"{spec.where((*path, 'sum_lines'))}: {problem}")
    return problems


def _line_value_problem(spec: MappingSpec, dotted: str) -> str | None:
    node: object = spec.invoice_lines
    for part in dotted.split("."):
        choices = sorted(node.model_fields_set) if isinstance(node, BaseModel) else []
        if part not in choices:
            return (
                f"invoice_lines maps no {dotted!r} ({part!r} is not among "
                f"{', '.join(choices) or 'nothing'}){suggest(part, choices)}"
            )
        node = getattr(node, part)
    if not isinstance(node, ValueSpec):
        return f"invoice_lines.{dotted} is an object; name one of its values (e.g. .amount)"
    return None


# --- pydantic errors → file:line messages --------------------------------------------------------
def format_errors(error: ValidationError, document: Document, shown: str) -> list[str]:
    """One message per problem, sorted by line; union branches of one key merged."""
    merged: dict[KeyPath, list[str]] = {}
    for item in error.errors(include_url=False):
        path = _data_path(item["loc"], document.data, item["type"])
        message = _message(item, path, document.data)
        merged.setdefault(path, [])
        if message not in merged[path]:
            merged[path].append(message)
    lines = []
    for path, messages in merged.items():
        dotted = ".".join(str(part) for part in path)
        where = f"{shown}:{document.line_of(path)}" + (f" {dotted}" if dotted else "")
        lines.append((document.line_of(path), f"{where}: {'; or '.join(messages)}"))
    return [text for _, text in sorted(lines, key=lambda pair: pair[0])]


def _data_path(loc: tuple[int | str, ...], data: object, kind: str) -> KeyPath:
    """The key path in the file: union tags in pydantic's ``loc`` that are not keys are dropped."""
    path: list[str | int] = []
    node = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        found, child = _child_of(node, part)
        if found:
            path.append(part)
            node = child
        elif last and (kind == "missing" or not isinstance(node, dict | list)):
            path.append(part)
    return tuple(path)


def _child_of(node: object, part: str | int) -> tuple[bool, object]:
    if isinstance(node, dict) and part in node:
        return True, node[part]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return True, node[part]
    return False, None


def _message(item: ErrorDetails, path: KeyPath, data: object) -> str:
    kind = item["type"]
    key = str(path[-1]) if path else ""
    if kind == "extra_forbidden":
        return _unknown_key(key, _model_at(path[:-1], data))
    if kind == "missing":
        model = _model_at(path[:-1], data)
        appzen = None if model is None else appzen_model_of(model)
        if appzen is not None:
            return f"AppZen requires {key}: map it, e.g. {key}: {_example(appzen, key)}"
        return f"missing key {key!r}"
    if kind == "union_tag_invalid":
        ctx = item.get("ctx", {})
        return f"kind {ctx.get('tag')!r} is not one of {ctx.get('expected_tags')}"
    if kind == "union_tag_not_found":
        return "missing key 'kind' (sql, csv, json or merchant)"
    message = item["msg"].removeprefix("Value error, ")
    value = item.get("input")
    if kind != "value_error" and not isinstance(value, dict | list | BaseModel):
        message += f" (got {shorten(repr(value), 60)})"
    return message


def _example(model: type[WireModel], name: str) -> str:
    shape = shape_of(model, name)
    if shape.kind == "leaf" or shape.model is None:
        return "{column: <a column>}"
    needed = [key for key in shape.model.model_fields if is_required(shape.model, key)]
    inner = "{" + ", ".join(f"{key}: …" for key in needed) + "}"
    return f"[{inner}]" if shape.kind == "list" else inner


def _unknown_key(key: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return f"unknown key {key!r}"
    known = list(model.model_fields)
    appzen = appzen_model_of(model)
    if appzen is not None:
        return (
            f"unknown AppZen field {key!r} in {appzen.__name__}{suggest(key, known)} "
            "(keys AppZen does not define go under extra:)"
        )
    listed = f" (allowed: {', '.join(known)})" if len(known) <= 14 else ""
    return f"unknown key {key!r}{suggest(key, known)}{listed}"


def _model_at(path: KeyPath, data: object) -> type[BaseModel] | None:
    """The format model that describes the object at ``path`` of ``data``."""
    current: Any = MappingSpec
    node = data
    for part in path:
        current = _resolve(current, node)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        elif get_origin(current) is list:
            current = get_args(current)[0]
        elif get_origin(current) is dict:
            current = get_args(current)[1]
        else:
            return None
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    current = _resolve(current, node)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _resolve(annotation: Any, node: object) -> Any:
    """``annotation`` without Annotated and None; a union of models picked by ``kind``."""
    while True:
        origin = get_origin(annotation)
        if origin is typing.Annotated:
            annotation = get_args(annotation)[0]
            continue
        if origin not in (typing.Union, types.UnionType):
            return annotation
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            annotation = members[0]
            continue
        for member in members:
            kind = getattr(member, "model_fields", {}).get("kind")
            if (
                kind is not None
                and isinstance(node, dict)
                and node.get("kind") in get_args(kind.annotation)
            ):
                return member
        containers = [m for m in members if get_origin(m) in (list, dict)]
        return containers[0] if containers else None
