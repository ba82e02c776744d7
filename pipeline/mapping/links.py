"""``document_url:`` of a mapping: the template of the link from a report's invoice to its document
in the ERP, e.g. ``https://erp.example/ap/{invoice_id}``.

Checked when the mapping is loaded: an absolute ``http(s)://`` URL whose scheme and host are
written out (no placeholder before the path), and whose placeholders are bare names of what the
report knows of every invoice (:data:`PLACEHOLDERS`). Each value is percent-escaped as one URL
component, so no value can add a path segment, a query or another host.
"""

from __future__ import annotations

import difflib
import string
from dataclasses import fields
from typing import Annotated, Final
from urllib.parse import quote, urlsplit

from pydantic import AfterValidator

from pipeline.failures import InvoiceFacts

PLACEHOLDERS: Final = ("invoice_id", *(field.name for field in fields(InvoiceFacts)))
"""``invoice_id`` (the ERP key) and the invoice's facts as the failure ledger holds them."""
SCHEMES: Final = frozenset({"http", "https"})


def _names(template: str) -> list[str]:
    """The placeholders of ``template``; ``ValueError`` for braces that are not ``{name}``."""
    names = []
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(f"{error} (write a literal brace as {{{{ or }}}})") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            extra = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ValueError(
                f"placeholder {{{name}{extra}}} is not a plain name such as {{invoice_id}}"
            )
        names.append(name)
    return names


def _shared_start(one: str, other: str) -> int:
    """How many leading characters ``one`` and ``other`` share."""
    return next(
        (i for i, (a, b) in enumerate(zip(one, other, strict=False)) if a != b),
        min(len(one), len(other)),
    )


def check_document_url(template: str) -> str:
    """``template`` if it is a valid ``document_url:``, else ``ValueError`` naming the problem
    and the fix."""
    names = _names(template)
    if not names:
        raise ValueError(
            "no placeholder: every invoice would link to the same page; add one, e.g. "
            "https://erp.example/ap/{invoice_id}"
        )
    for name in names:
        if name not in PLACEHOLDERS:
            close = difflib.get_close_matches(name, PLACEHOLDERS, n=3)
            best = max(close, key=lambda known: _shared_start(name, known), default=None)
            hint = f"did you mean {{{best}}}? " if best else ""
            known = ", ".join(f"{{{known}}}" for known in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}}: {hint}the known ones are {known}")
    if any(char.isspace() or not char.isprintable() for char in template):
        raise ValueError("a document_url holds no spaces or control characters (write %20)")
    head = template.split("{", 1)[0]
    parts = urlsplit(head)
    if parts.scheme.lower() not in SCHEMES:
        scheme = f"scheme {parts.scheme + ':'!r} is not allowed" if parts.scheme else "no scheme"
        raise ValueError(
            f"{scheme}: a document_url is an absolute http:// or https:// URL, "
            "e.g. https://erp.example/ap/{invoice_id}"
        )
    after_host = head.partition("://")[2].lstrip("/")
    if not parts.hostname or (not any(mark in after_host for mark in "/?#")):
        raise ValueError(
            "write the host out (https://erp.example/…): placeholders go in the path, query or "
            "fragment, never in the host"
        )
    if "@" in parts.netloc:
        raise ValueError("a document_url carries no user or password (user@host): remove it")
    return template


DocumentUrl = Annotated[str, AfterValidator(check_document_url)]
"""A ``document_url:`` template, checked as it is read."""


def document_link(template: str, invoice_id: str, facts: InvoiceFacts) -> str | None:
    """The link of one invoice, each value percent-escaped; ``None`` when a value the template
    needs is not known for this invoice (no link beats a wrong one)."""
    values = {"invoice_id": invoice_id} | {f.name: getattr(facts, f.name) for f in fields(facts)}
    needed = _names(template)
    if any(not values.get(name) for name in needed):
        return None
    escaped = {name: quote(str(values[name]), safe="") for name in needed}
    return template.format_map(escaped)
