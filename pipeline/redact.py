"""The one place secrets are stripped from text: log records, messages, reports and summaries.

Settings register their secret values here (:func:`register_settings`); :func:`scrub` replaces every
registered value, every password in a database URL, and every credential-shaped echo (a header or
field named like a credential with its value: ``x-api-key: …``, ``"customer_key": "…"``,
``Authorization: Bearer …``, ``password=…``; a bare ``Bearer``/``Basic`` token) with ``***``.
:class:`SecretFilter` applies it to log records, so even a secret that slipped into a message never
reaches a handler.

The staging store scrubs every text it writes (failures, AppZen's answers, audit outcomes): a
report regenerated later, in a shell that knows no secret, finds only what was stored, and the
credential shapes are scrubbed again on the way out.
"""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import unquote, urlsplit

from pipeline.settings import Settings, mask_url

_MIN_SECRET_LENGTH = 4
_lock = threading.Lock()
_secrets: set[str] = set()


def register(*values: str | None) -> None:
    """Remember secret values so :func:`scrub` removes them (short values are ignored)."""
    with _lock:
        _secrets.update(v for v in values if v and len(v) >= _MIN_SECRET_LENGTH)


def register_settings(settings: Settings) -> None:
    """Register every secret a :class:`Settings` holds (keys, and passwords inside URLs)."""
    api_key, _, customer_key = settings.credentials()
    urls = [settings.staging_database_url.get_secret_value()]
    if settings.erp_database_url is not None:
        urls.append(settings.erp_database_url.get_secret_value())
    passwords = [urlsplit(url).password for url in urls]
    register(api_key, customer_key, *passwords, *(unquote(p) for p in passwords if p))
    connector_secrets = (
        settings.merchant_access_token,
        settings.merchant_refresh_token,
        settings.merchant_client_secret,
        settings.crm_password,
    )
    register(*(secret.get_secret_value() for secret in connector_secrets if secret is not None))


MASK = "***"

_CREDENTIAL_NAMES = (
    r"x-api-key|api[-_ ]?key|apikey|customer[-_ ]?key|(?:proxy-)?authorization"
    r"|x-auth-token|(?:auth|access|refresh|id|api|session|bearer)[-_]?token"
    r"|client[-_]?secret|password|passwd|(?:set-)?cookie"
)
_SCHEME = r"(?:bearer|basic|digest|token)\s+"
_NAMED = re.compile(
    rf"""(?P<name>["']?\b(?:{_CREDENTIAL_NAMES})\b["']?\s*[:=]\s*)"""
    rf"""(?:(?P<quote>["'])(?P<qscheme>{_SCHEME})?[^"'\n]*(?P=quote)"""
    rf"""|(?P<scheme>{_SCHEME})?[^\s"',;&)}}\]]+)""",
    re.IGNORECASE,
)
"""A credential named with its value: a header echo, a JSON or repr field, a query parameter."""
_BARE_TOKEN = re.compile(r"\b(?P<scheme>Bearer|Basic)\s+(?P<token>[A-Za-z0-9._~+/=-]{8,})")
"""An ``Authorization`` value without its header name."""


def _mask_named(match: re.Match[str]) -> str:
    quote = match["quote"] or ""
    scheme = match["qscheme"] or match["scheme"] or ""
    return f"{match['name']}{quote}{scheme}{MASK}{quote}"


def _mask_bare(match: re.Match[str]) -> str:
    token = match["token"]
    tokenish = any(c.isdigit() or c in "._~+/=-" for c in token) or (
        any(c.isupper() for c in token[1:]) and any(c.islower() for c in token)
    )
    return f"{match['scheme']} {MASK}" if tokenish else match.group(0)


def scrub_credentials(text: str) -> str:
    """``text`` with every credential-shaped value (see the module docstring) replaced by
    ``***``; needs no registered secret, so it works in a shell that knows none."""
    return _BARE_TOKEN.sub(_mask_bare, _NAMED.sub(_mask_named, text))


def scrub(text: str) -> str:
    """``text`` with every registered secret, URL password and credential-shaped value
    replaced by ``***``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return scrub_credentials(mask_url(text))


def scrub_optional(text: str | None) -> str | None:
    """:func:`scrub` that passes ``None`` through (a column that may be empty)."""
    return None if text is None else scrub(text)


class SecretFilter(logging.Filter):
    """A logging filter that scrubs the rendered message of every record it sees, and the
    traceback text of a record logged with ``exc_info``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


_TRACEBACKS = logging.Formatter()
"""Renders a record's traceback once, so that handlers print the scrubbed text instead."""


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Attach :class:`SecretFilter` to every handler of ``logger`` (the root logger by default)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())
