"""The one place secrets are stripped from text: log records, messages, reports and summaries.

Settings register their secret values here (:func:`register_settings`); :func:`scrub` replaces every
registered value, and every password in a database URL, with ``***``. :class:`SecretFilter` applies
it to log records, so even a secret that slipped into a message never reaches a handler.
"""

from __future__ import annotations

import logging
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


def scrub(text: str) -> str:
    """``text`` with every registered secret and URL password replaced by ``***``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return mask_url(text)


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
