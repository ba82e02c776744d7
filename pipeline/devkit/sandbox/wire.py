"""The sandbox's JSON: exact decimals in and out, AppZen error bodies, the get-details shape."""

from __future__ import annotations

import copy
import json
import re
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from pydantic import ValidationError

from pipeline.failures import shorten

JsonDict = dict[str, Any]

NAMED_ADDRESSES = ("supplier_address", "billing_address", "shipping_address", "remit_to_address")
_SITE_KEYS = ("site_id", "site_name", "custom_json")
MAX_LISTED_ERRORS = 50
MAX_ERROR_CHARS = 300

# Decimals are written as tagged strings by json.dumps, then the tags are cut so the number is
# bare and keeps its scale. The tag is random per process: no request text can forge it.
_TAG = "sandbox-decimal-" + secrets.token_hex(12) + ":"
_TAGGED = re.compile(b'"' + re.escape(_TAG.encode()) + b'(-?[0-9]+(?:\\.[0-9]+)?)"')


class BodyError(ValueError):
    """A request body is not acceptable JSON; the message says why and where."""


def _reject_constant(name: str) -> object:
    raise BodyError(f"{name} is not a JSON number: send a finite number")


def loads_exact(raw: bytes) -> Any:
    """Parse a request body; non-integer numbers become :class:`Decimal`, NaN/Infinity refused."""
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except BodyError:
        raise
    except json.JSONDecodeError as error:
        raise BodyError(
            f"body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except (ValueError, RecursionError) as error:
        raise BodyError(f"body is not valid JSON: {error}") from None


def _tag_decimal(value: object) -> str:
    if isinstance(value, Decimal) and value.is_finite():
        return f"{_TAG}{value:f}"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as JSON")


def dumps_exact(value: object) -> bytes:
    """Write JSON with every :class:`Decimal` as a bare number keeping its scale (never a float)."""
    text = json.dumps(value, default=_tag_decimal, ensure_ascii=False, allow_nan=False)
    return _TAGGED.sub(rb"\1", text.encode())


def error_timestamp(now: datetime | None = None) -> str:
    """AppZen's timestamp format: ``2019-01-17T16:12:45.977+0000``."""
    moment = now or datetime.now(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def error_body(status: int, detail: str) -> bytes:
    """AppZen's error body, with a fresh 8-hex-digit error code."""
    body = {
        "timestamp": error_timestamp(),
        "status": status,
        "error": HTTPStatus(status).phrase,
        "message": f"Error code : {secrets.token_hex(4)} - {detail}",
    }
    return json.dumps(body).encode()


def describe_validation(error: ValidationError, limit: int = MAX_LISTED_ERRORS) -> str:
    """Every error as ``dotted.field.path: message``, joined by ``; `` (at most ``limit``)."""
    parts = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        path = ".".join(str(part) for part in item["loc"]) or "body"
        message = item["msg"].removeprefix("Value error, ")
        parts.append(shorten(f"{path}: {message}", MAX_ERROR_CHARS) or "")
    text = "; ".join(parts[:limit])
    if len(parts) > limit:
        text += f"; and {len(parts) - limit} more errors"
    return text


def details_view(payload: JsonDict) -> JsonDict:
    """A stored create payload in the get-details shape: the four named addresses nested."""
    view = dict(payload)
    for key in NAMED_ADDRESSES:
        flat = view.get(key)
        if isinstance(flat, dict):
            view[key] = _nest_address(flat)
    return view


def _nest_address(flat: JsonDict) -> JsonDict:
    address_type = flat.get("address_type")
    fields = {k: v for k, v in flat.items() if k != "address_type" and k not in _SITE_KEYS}
    return {
        "address_type": address_type,
        "address": {
            "address_type": address_type,
            "address": fields,
            **{key: flat.get(key) for key in _SITE_KEYS},
        },
    }


class PathError(ValueError):
    """A dotted path does not lead anywhere in the stored payload; the message says where."""


def with_path_set(payload: JsonDict, path: str, value: object, *, delete: bool = False) -> JsonDict:
    """A deep copy of ``payload`` with ``path`` (``supplier_name``, ``invoice_lines.0.quantity``)
    set to ``value`` or removed; missing object keys on the way are created."""
    parts = path.split(".")
    if not path or any(not part for part in parts):
        raise PathError(f"path {path!r} is empty or has an empty segment: use a.b.0.c")
    result = copy.deepcopy(payload)
    parent: Any = result
    for depth, part in enumerate(parts[:-1]):
        parent = _step(parent, part, ".".join(parts[:depth]))
    _assign(parent, parts[-1], ".".join(parts[:-1]), value, delete=delete)
    return result


def _step(node: Any, part: str, where: str) -> Any:
    if isinstance(node, dict):
        return node.setdefault(part, {})
    if isinstance(node, list):
        return node[_index(node, part, where)]
    raise _not_a_container(node, part, where)


def _assign(node: Any, part: str, where: str, value: object, *, delete: bool) -> None:
    if isinstance(node, dict):
        if delete and part not in node:
            raise PathError(f"{_join(where, part)}: no such key to delete")
        if delete:
            del node[part]
        else:
            node[part] = value
    elif isinstance(node, list):
        index = _index(node, part, where)
        if delete:
            del node[index]
        else:
            node[index] = value
    else:
        raise _not_a_container(node, part, where)


def _join(where: str, part: str) -> str:
    return f"{where}.{part}" if where else part


def _not_a_container(node: object, part: str, where: str) -> PathError:
    return PathError(
        f"{_join(where, part)}: {where} is a {type(node).__name__}, not an object or list; "
        "end the path there"
    )


def _index(items: list[Any], part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise PathError(
            f"{_join(where, part)}: {part!r} is not an index of a list of {len(items)} items"
        )
    return int(part)
