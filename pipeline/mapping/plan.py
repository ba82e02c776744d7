"""A mapping compiled once into a tree of small closures that turn source rows into invoice dicts.

Rows are tuples: the raw values of every column the mapping names (:class:`RowTable`), then one
*slot* per distinct column conversion, filled a whole column at a time per chunk
(:mod:`pipeline.mapping.cells`). A node is called as ``node(row, ctx, prefix)`` (``prefix``: the
AppZen path of the enclosing list entry, ``invoice_lines.2.``) and returns the value to send or
:data:`OMIT`. Objects read their fields' slots inline; a blank or failed cell is resolved by the
field (default, omit, or a :class:`RowFailure` in ``ctx``), so every failure of an invoice is
collected. Row shapes live in :mod:`pipeline.mapping.layout`, conversion chains in
:mod:`pipeline.mapping.chain`, the node closures in :mod:`pipeline.mapping.nodes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pipeline.appzen.models import Invoice, WireModel
from pipeline.mapping.cells import BLANK, Mark, column_converter
from pipeline.mapping.chain import (
    OTHERS,
    WIDE,
    at_least,
    chained,
    conversion_key,
    field_formats,
    mapped,
    scaled,
    source_label,
)
from pipeline.mapping.fields import DEFAULTED, appzen_model_of, is_required, shape_of
from pipeline.mapping.layout import (
    LINE_PREFIXES,
    NOTHING,
    OMIT,
    Child,
    Ctx,
    Layouts,
    Leaf,
    Node,
    Place,
    Row,
    RowTable,
)
from pipeline.mapping.leaves import CustomJsonSpec, OthersValue, Strict, ValueSpec, template_parts
from pipeline.mapping.nodes import (
    ctx_key,
    ctx_line_no,
    ctx_lines,
    list_node,
    object_node,
    sum_node,
)
from pipeline.mapping.spec import MappingSpec
from pipeline.mapping.transforms import (
    CANONICAL,
    TRANSFORMS,
    ConversionError,
    Converter,
    Formats,
    LeafType,
    converter,
    decimal_converter,
    is_blank,
    to_auto,
    to_text,
)

__all__ = ["OMIT", "Compiler", "Ctx", "Layouts", "Node", "RowTable"]


@dataclass
class Compiler:
    """Builds the node tree of one mapping over row tables (run twice: allocate, then build)."""

    spec: MappingSpec
    layouts: Layouts
    formats: Formats
    columns_by_path: dict[str, str] = field(default_factory=dict)
    extras: bool = False
    """Whether an object gets keys beyond its AppZen fields (an ``extra:`` section)."""

    def invoice(self) -> Node:
        """The whole invoice: its lines from ``ctx.rows`` first (``sum_lines`` reads them), then
        the header fields from the header row."""
        lines = self.lines()
        header, _ = self.obj(self.spec.header, Place(("header",), "", "", "header"), optional=False)

        def node(row: Row, ctx: Ctx, prefix: str) -> object:
            ctx.lines = lines(row, ctx, prefix)
            return header(row, ctx, prefix)

        return node

    # --- leaves --------------------------------------------------------------------------------
    def leaf(
        self, name: str, spec: ValueSpec, natural: LeafType, required: bool, place: Place
    ) -> tuple[Child, list[int]]:
        """A field: ``(name, slot, Leaf)`` for a column, ``(name, -1, node)`` otherwise; and the
        positions it reads (``~slot`` for a slot, blank when it holds :data:`BLANK`; else raw)."""
        kind = spec.type or natural
        fixed = converter(kind, CANONICAL)
        if spec.scale is not None:
            fixed = scaled(fixed, spec.scale)
        if "const" in spec.model_fields_set:
            constant = fixed(spec.const)
            return (name, -1, lambda row, ctx, prefix: constant), []
        where = ".".join(map(str, (*place.at, name)))
        convert = self._converter(spec, kind, fixed, where)
        columns, label = source_label(spec)
        self.columns_by_path[f"{place.pattern}{name}"] = columns
        need = "required by AppZen" if required else "required (on_null: error)"
        leaf = Leaf(
            rel=f"{place.rel}{name}",
            column=columns,
            default=NOTHING if spec.default is None else fixed(spec.default),
            error_on_null=(spec.on_null or ("error" if required else "omit")) == "error",
            blank=ConversionError(
                "required",
                f"{need}, but {label} is blank",
                f"fill {label} in the source: {where} needs a value",
            ),
            unmapped=ConversionError(
                "value_map",
                f"{need}, but the value map leaves it out",
                f"list the code in {where}.map",
            ),
        )
        finish = fixed if spec.min is None else at_least(fixed, spec.min)
        if spec.sum_lines is not None:
            total = _same if spec.min is None else at_least(_same, spec.min)
            return (name, -1, sum_node(spec.sum_lines.split("."), leaf, total)), []
        if spec.multiply is not None:
            formats = field_formats(spec, self.formats)
            factor = decimal_converter(formats.decimal_separator, formats.thousands_separator)
            return self._product(
                name, spec.multiply, factor=factor, finish=finish, leaf=leaf, place=place
            )
        if spec.column is None:
            return self._template(name, spec.template or "", convert, leaf, place)
        table, offset = self.layouts.where(place.level, spec.column)
        special = spec.map or spec.transform or spec.scale is not None or spec.min is not None
        plain = None if special else kind
        slot = table.slot_at(
            (spec.column, conversion_key(spec, kind, self.formats)),
            spec.column,
            lambda: column_converter(convert, plain),
        )
        return (name, offset + slot, leaf), [~(offset + slot)]

    def _template(
        self, name: str, template: str, convert: Converter, leaf: Leaf, place: Place
    ) -> tuple[Child, list[int]]:
        parts = []
        for text, column in template_parts(template):
            if column is None:
                parts.append((text, -1))
                continue
            table, offset = self.layouts.where(place.level, column)
            parts.append((text, offset + table.raw_at(column)))

        def node(row: Row, ctx: Ctx, prefix: str) -> object:
            out = []
            for text, index in parts:
                out.append(text)
                if index >= 0:
                    if is_blank(row[index]):
                        return leaf.resolve(BLANK, ctx, prefix)
                    try:
                        out.append(to_text(row[index]))
                    except ConversionError as error:
                        return leaf.resolve(Mark("failed", row[index], error), ctx, prefix)
            rendered = "".join(out)
            try:
                value = convert(rendered)
            except ConversionError as error:
                return leaf.resolve(Mark("failed", rendered, error), ctx, prefix)
            return leaf.resolve(Mark("unmapped", rendered), ctx, prefix) if value is None else value

        return (name, -1, node), [index for _, index in parts if index >= 0]

    def _product(
        self,
        name: str,
        columns: list[str],
        *,
        factor: Converter,
        finish: Converter,
        leaf: Leaf,
        place: Place,
    ) -> tuple[Child, list[int]]:
        positions = []
        for column in columns:
            table, offset = self.layouts.where(place.level, column)
            positions.append(offset + table.raw_at(column))

        def node(row: Row, ctx: Ctx, prefix: str) -> object:
            product = Decimal(1)
            for index in positions:
                raw = row[index]
                if is_blank(raw):
                    return leaf.resolve(BLANK, ctx, prefix)
                try:
                    product = WIDE.multiply(product, factor(raw))  # type: ignore[arg-type]
                except ConversionError as error:
                    return leaf.resolve(Mark("failed", raw, error), ctx, prefix)
                except ArithmeticError:
                    problem = ConversionError("decimal", f"the product with {raw} is not exact")
                    return leaf.resolve(Mark("failed", raw, problem), ctx, prefix)
            try:
                return finish(product)
            except ConversionError as error:
                return leaf.resolve(Mark("failed", product, error), ctx, prefix)

        return (name, -1, node), positions

    def _converter(
        self, spec: ValueSpec, kind: LeafType, fixed: Converter, where: str
    ) -> Converter:
        convert = converter(kind, field_formats(spec, self.formats))
        if spec.scale is not None:
            convert = scaled(convert, spec.scale)
        if spec.map is not None:
            table = {
                code: None if value is None else fixed(value) for code, value in spec.map.items()
            }
            if isinstance(spec.others, OthersValue):
                table[OTHERS] = fixed(spec.others.value)
            convert = mapped(table, spec.others, convert, where)
        if spec.transforms:
            convert = chained([TRANSFORMS[name] for name in spec.transforms], convert)
        if spec.min is not None:
            convert = at_least(convert, spec.min)
        return convert

    # --- objects and lists ---------------------------------------------------------------------
    def obj(self, spec: Strict, place: Place, *, optional: bool) -> tuple[Node, list[int]]:
        """An AppZen object; an optional one whose source columns are all blank is left out."""
        model = appzen_model_of(type(spec))
        assert model is not None
        children, positions = self._children(spec, model, place)
        return object_node(children, positions if optional else [], optional=optional), positions

    def _children(
        self, spec: Strict, model: type[WireModel], place: Place
    ) -> tuple[list[Child], list[int]]:
        children: list[Child] = []
        positions: list[int] = []
        given = spec.model_fields_set
        for name in model.model_fields:
            special = self._special(model, name, given)
            if special is not None:
                children.append((name, -1, special))
            elif name in given and getattr(spec, name) is not None:
                child, used = self._child(model, name, getattr(spec, name), place)
                children.append(child)
                positions.extend(used)
        for name, value_spec in (getattr(spec, "extra", None) or {}).items():
            self.extras = True
            child, used = self.leaf(name, value_spec, "auto", False, place.down("extra"))
            children.append(child)
            positions.extend(used)
        return children, positions

    def _special(self, model: type[WireModel], name: str, given: set[str]) -> Node | None:
        if model is Invoice and name == "invoice_lines":
            return ctx_lines
        if (model, name) in DEFAULTED and name not in given:
            if name == "invoice_id":
                return ctx_key
            return ctx_line_no
        return None

    def _child(
        self, model: type[WireModel], name: str, spec: object, place: Place
    ) -> tuple[Child, list[int]]:
        shape = shape_of(model, name)
        if isinstance(spec, ValueSpec):
            return self.leaf(name, spec, shape.leaf_type, is_required(model, name), place)
        if isinstance(spec, CustomJsonSpec):
            node, used = self.custom_json(spec, place.into("custom_json"))
        elif isinstance(spec, list):
            node, used = self.entries(name, spec, place.down(name))
        else:
            assert isinstance(spec, Strict)
            node, used = self.obj(spec, place.into(name), optional=not is_required(model, name))
        return (name, -1, node), used

    def entries(self, name: str, specs: list[Any], place: Place) -> tuple[Node, list[int]]:
        """A list from entry specs, each read from the row (``for_each_row`` in the header: from
        every line row, duplicates dropped); an entry with all sources blank is left out."""
        nodes = []
        positions: list[int] = []
        for index, spec in enumerate(specs):
            each = bool(spec.for_each_row) and place.level == "header"
            inner = Place(
                (*place.at, index),
                "",
                f"{place.pattern}{name}.{index}.",
                "lines" if each else place.level,
            )
            node, used = self.obj(spec, inner, optional=True)
            nodes.append((node, each))
            positions.extend([] if each else used)
        return list_node(f"{place.rel}{name}.", nodes), positions

    def custom_json(self, spec: CustomJsonSpec, place: Place) -> tuple[Node, list[int]]:
        """``custom_json``: chosen columns as the source gives them, plus named value specs."""
        copied = []
        for column in spec.columns:
            table, offset = self.layouts.where(place.level, column)
            copied.append((column, offset + table.raw_at(column)))
            self.columns_by_path[f"{place.pattern}{column}"] = column
        named = [
            self.leaf(key, value, "auto", False, place.down("fields"))
            for key, value in spec.fields.items()
        ]
        fields_node = object_node([child for child, _ in named], [], optional=False)
        rel = place.rel

        def node(row: Row, ctx: Ctx, prefix: str) -> object:
            out: dict[str, object] = {}
            for column, index in copied:
                raw = row[index]
                if not is_blank(raw):
                    try:
                        out[column] = to_auto(raw)
                    except ConversionError as error:
                        ctx.fail(f"{prefix}{rel}{column}", column, raw, error)
            out.update(fields_node(row, ctx, prefix))
            return out or OMIT

        return node, [index for _, index in copied] + [i for _, used in named for i in used]

    def lines(self) -> Node:
        """``invoice_lines``: one line per line row of the invoice (every row is a line)."""
        place = Place(("invoice_lines",), "", "invoice_lines.*.", "lines")
        line, _ = self.obj(self.spec.invoice_lines, place, optional=False)

        def node(row: Row, ctx: Ctx, prefix: str) -> object:
            out = []
            for index, line_row in enumerate(ctx.rows):
                ctx.row = index
                ctx.line_no = index + 1
                at = LINE_PREFIXES[index] if index < 512 else f"invoice_lines.{index}."
                out.append(line(line_row, ctx, at))
            ctx.row = -1
            return out

        return node


def _same(value: object) -> object:
    return value
