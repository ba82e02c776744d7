"""What an AppZen answer means for the pipeline: one table from HTTP status to a typed outcome.

Outcomes by family (what to do, not what went wrong); each family carries the marker of the one
error tree (:mod:`pipeline.errors`) that the retry loop and the CLI read::

    RemoteError                     (pipeline.errors) status, error code, correlation id
    └── AppZenError                 every failed call to AppZen
        ├── FatalError              [terminal] stop the run at once, leave the rest pending
        │   ├── CredentialsError        401 / 403: API key, customer id or customer key rejected
        │   ├── EndpointNotFound        404 on create: the base URL is wrong
        │   ├── CertificateError        AppZen's TLS certificate cannot be verified
        │   └── UnexpectedResponse      an answer the API never documents (3xx, 418, bad JSON…)
        ├── RetryableError          [transient] try again later (backoff; honour Retry-After)
        │   ├── QuotaExceeded           [throttled] 429
        │   ├── ServerError             5xx (in doubt: AppZen may have stored the invoice)
        │   └── TransportError          timeout, connection refused or dropped (in doubt)
        └── RowError                [item] this invoice is bad; the others go on
            ├── InvalidInvoice          400, 413, 422: AppZen's message says which field (or size)
            └── UnknownInvoice          404 on a uuid: AppZen does not know this invoice

The table is :data:`OUTCOMES`; :func:`error_for_status` applies it. Messages never carry a secret:
they are built from AppZen's error body and the request's operation only.
"""

from __future__ import annotations

from typing import Literal

from pipeline.errors import ItemError, RemoteError, TerminalError, ThrottledError, TransientError

Operation = Literal["create", "by_uuid", "search"]
"""``create``: POST /invoice. ``by_uuid``: get-details, status-sync and audit-results on
/invoice/{uuid}. ``search``: POST /invoice/search."""


class AppZenError(RemoteError):
    """A call to AppZen that did not succeed (a family: raise one of its marked classes)."""


class FatalError(AppZenError, TerminalError):
    """Stop the run: nothing else will work until a person fixes the configuration."""


class CredentialsError(FatalError):
    """401/403: AppZen rejected the API key, customer id or customer key."""


class EndpointNotFound(FatalError):
    """404 on create: APPZEN_BASE_URL does not point at the AppZen invoice API."""


class CertificateError(FatalError):
    """The TLS certificate of APPZEN_BASE_URL cannot be verified: retrying cannot help."""


class UnexpectedResponse(FatalError):
    """An answer the API does not document; stop rather than guess."""


class RetryableError(AppZenError, TransientError):
    """Transient: the same request may succeed later."""


class QuotaExceeded(RetryableError, ThrottledError):
    """429: the customer's request quota is used up for now."""


class ServerError(RetryableError):
    """5xx: AppZen had a problem; the invoice may or may not have been stored (resend = update)."""

    in_doubt = True


class TransportError(RetryableError):
    """No HTTP answer: timeout, refused or dropped connection (AppZen may have seen the call)."""

    in_doubt = True


class RowError(AppZenError, ItemError):
    """This invoice (or this uuid) is the problem; report it and go on with the others."""


class InvalidInvoice(RowError):
    """400 (422): AppZen refused the payload, its message names the field; 413: it is too big."""


class UnknownInvoice(RowError):
    """404 on /invoice/{uuid}: AppZen does not know this uuid."""


_HINTS: dict[type[AppZenError], str] = {
    CredentialsError: "check APPZEN_API_KEY, APPZEN_CUSTOMER_ID and APPZEN_CUSTOMER_KEY",
    EndpointNotFound: "check APPZEN_BASE_URL (it ends in /dictionary-data-services)",
    QuotaExceeded: "the AppZen quota is used up; lower APPZEN_RATE_LIMIT if this persists",
    ServerError: "AppZen server error; retried automatically",
    InvalidInvoice: "AppZen rejected the invoice",
    UnknownInvoice: "AppZen does not know this uuid; the invoice will be re-created",
}

OUTCOMES: dict[tuple[Operation | None, int], type[AppZenError]] = {
    (None, 400): InvalidInvoice,
    (None, 401): CredentialsError,
    (None, 403): CredentialsError,
    ("create", 404): EndpointNotFound,
    ("search", 404): EndpointNotFound,
    ("by_uuid", 404): UnknownInvoice,
    (None, 408): TransportError,
    (None, 413): InvalidInvoice,  # one oversized invoice is a failed row, not a stopped run
    (None, 422): InvalidInvoice,
    (None, 429): QuotaExceeded,
}
"""(operation or None for any, HTTP status) → outcome. 5xx is :class:`ServerError`; any other
non-2xx status is :class:`UnexpectedResponse`."""


def outcome_for_status(operation: Operation, status: int) -> type[AppZenError]:
    """The outcome class for a non-success HTTP status of ``operation``."""
    found = OUTCOMES.get((operation, status)) or OUTCOMES.get((None, status))
    if found is not None:
        return found
    return ServerError if 500 <= status <= 599 else UnexpectedResponse


def error_for_status(
    operation: Operation,
    status: int,
    *,
    detail: str,
    error_code: str | None,
    correlation_id: str | None,
    retry_after: float | None = None,
) -> AppZenError:
    """Build the typed error for an HTTP answer, with AppZen's message and a hint."""
    kind = outcome_for_status(operation, status)
    hint = _HINTS.get(kind, "unexpected answer from AppZen")
    message = f"{hint}: {detail}" if detail else hint
    return kind(
        message,
        status=status,
        error_code=error_code,
        correlation_id=correlation_id,
        retry_after=retry_after,
    )
