"""What the ERP-side systems answer means: merchant message IDs and CRM.COM status codes, each in
one table from code to action, and the errors those actions raise.

Each system has its own branch of the one error tree (:mod:`pipeline.errors`), with the same
markers as AppZen's families, so the shared retry loop and
:class:`~pipeline.runtime.dispatch.Dispatcher` treat a connector's answers as they treat
AppZen's (classification apart from the loop that waits), and none is mistaken for AppZen's::

    RemoteError
    ├── MerchantError                 the merchant platform
    │   ├── MerchantFatal             [terminal] stop writing to it: credentials, rights, wrong URL
    │   ├── MerchantThrottled         [throttled] 919 / HTTP 429: back off
    │   ├── MerchantUnavailable       [transient] 899 / 900 / 917 / 5xx: retried (in doubt)
    │   ├── MerchantTransport         [transient] no HTTP answer (in doubt)
    │   └── MerchantRowError          [item] this invoice: 913, 910 …
    └── CrmError                      CRM.COM
        ├── CrmFatal                  [terminal] credentials, rights, wrong URL
        ├── CrmThrottled              [throttled] TOO_MANY_REQUESTS / HTTP 429: back off
        ├── CrmUnavailable            [transient] INTERNAL_ERROR / 5xx: retried (in doubt)
        ├── CrmTransport              [transient] no HTTP answer (in doubt)
        └── CrmRowError               [item] this invoice: unknown, bad reason …
            └── NotDraft              the invoice is no longer DRAFT (its state kept)

``error_code`` is the merchant message ID (``"913"``) or the CRM ``status.code``. Messages are
built from the system's answer and the tables' hints only: never from a request (no token).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

from pipeline.errors import ItemError, RemoteError, TerminalError, ThrottledError, TransientError

System = Literal["merchant", "crm"]
SYSTEM_NAMES: dict[System, str] = {"merchant": "merchant platform", "crm": "CRM.COM"}


class MerchantError(RemoteError):
    """A call to the merchant platform that did not succeed (a family: raise a marked class)."""


class MerchantFatal(MerchantError, TerminalError):
    """Stop writing to the merchant platform until a person fixes the configuration."""


class MerchantThrottled(MerchantError, ThrottledError):
    """The merchant platform's request limit is used up: back off (919, HTTP 429)."""


class MerchantUnavailable(MerchantError, TransientError):
    """The merchant platform failed (899, 900, 917, 5xx): the same request may succeed later."""

    in_doubt = True


class MerchantTransport(MerchantError, TransientError):
    """No HTTP answer from the merchant platform (timeout, refused or dropped connection)."""

    in_doubt = True


class MerchantRowError(MerchantError, ItemError):
    """This invoice is the problem (913, 910 …); the others go on."""


class CrmError(RemoteError):
    """A call to CRM.COM that did not succeed (a family: raise one of its marked classes)."""


class CrmFatal(CrmError, TerminalError):
    """Stop writing to CRM.COM until a person fixes the configuration."""


class CrmThrottled(CrmError, ThrottledError):
    """CRM.COM's request limit is used up: back off (TOO_MANY_REQUESTS, HTTP 429)."""


class CrmUnavailable(CrmError, TransientError):
    """CRM.COM failed (INTERNAL_ERROR, 5xx): the same request may succeed later."""

    in_doubt = True


class CrmTransport(CrmError, TransientError):
    """No HTTP answer from CRM.COM (timeout, refused or dropped connection)."""

    in_doubt = True


class CrmRowError(CrmError, ItemError):
    """This invoice is the problem (unknown invoice, unknown reason …); the others go on."""


class NotDraft(CrmRowError):
    """CRM.COM refuses to reject an invoice that is no longer DRAFT; ``state`` is its state."""

    def __init__(self, message: str, *, state: str | None, error_code: str | None) -> None:
        self.state = state
        super().__init__(message, error_code=error_code)


class Action(enum.Enum):
    """What the client does with an answer."""

    OK = "ok"
    RENEW = "renew"  # the token expired: get a new one once, then repeat the request
    FATAL = "fatal"
    ROW = "row"
    THROTTLE = "throttle"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Meaning:
    """One row of a table: the action, the vendor's title and what the operator should do."""

    action: Action
    title: str
    hint: str = ""


_A = Action
MERCHANT_MESSAGES: dict[int, Meaning] = {
    202: Meaning(_A.OK, "Token is valid"),
    206: Meaning(_A.OK, "Resource Created"),
    899: Meaning(_A.RETRY, "Unknown Error", "the merchant platform failed; retried with backoff"),
    900: Meaning(_A.RETRY, "Service Down", "the merchant platform is down; retried with backoff"),
    901: Meaning(_A.FATAL, "Invalid Client", "check MERCHANT_CLIENT_ID and MERCHANT_CLIENT_SECRET"),
    904: Meaning(
        _A.FATAL,
        "Access Denied",
        "the merchant platform denied access: check the app's scopes and MERCHANT_CLIENT_ID",
    ),
    906: Meaning(_A.FATAL, "Invalid Grant", "set a new MERCHANT_REFRESH_TOKEN (log in again)"),
    907: Meaning(_A.FATAL, "Invalid Token", "set a new MERCHANT_REFRESH_TOKEN (log in again)"),
    908: Meaning(_A.RENEW, "Expired Token", "the token is refreshed once and the call repeated"),
    910: Meaning(_A.ROW, "Not Found", "the merchant platform has no such invoice"),
    911: Meaning(
        _A.FATAL,
        "Authorization Header Invalid",
        "MERCHANT_ACCESS_TOKEN must be the bare token (the client writes 'Bearer <token>')",
    ),
    912: Meaning(
        _A.FATAL,
        "Resource Not Allowed For Specified User",
        "the merchant login does not own these stores or invoices: check store_ids and the login",
    ),
    913: Meaning(
        _A.ROW,
        "Required parameter or object missing in request",
        "the merchant platform refused this invoice's update; fix what its message names",
    ),
    917: Meaning(_A.RETRY, "Internal Server Error", "retried with backoff"),
    919: Meaning(
        _A.THROTTLE,
        "Cannot handle too many request",
        "over the merchant platform's limit: backing off (lower merchant.rate_per_s if it lasts)",
    ),
}
"""Merchant message ID (``api.message.error`` / ``success`` keys) → meaning."""

CRM_CODES: dict[str, Meaning] = {
    "OK": Meaning(_A.OK, "OK"),
    "INVALID_TOKEN": Meaning(_A.RENEW, "Invalid token", "logged in again once"),
    "TOKEN_EXPIRED": Meaning(_A.RENEW, "Token expired", "logged in again once"),
    "AUTHENTICATION_FAILED": Meaning(
        _A.FATAL, "Authentication failed", "check CRM_USERNAME, CRM_PASSWORD and CRM_ORGANISATION"
    ),
    "ACCESS_DENIED": Meaning(
        _A.FATAL, "Access denied", "give the CRM.COM user the right to reject invoices"
    ),
    "INVALID_LIFE_CYCLE_STATE": Meaning(
        _A.ROW, "Not DRAFT", "CRM.COM rejects DRAFT invoices only; handle this one in CRM.COM"
    ),
    "NOT_FOUND": Meaning(
        _A.ROW,
        "Invoice not found",
        "CRM.COM has no invoice with this identifier: check crm.invoice_identifier",
    ),
    "INVALID_REJECTION_REASON": Meaning(
        _A.ROW,
        "Unknown rejection reason",
        "CRM.COM does not know this reason: fix crm.rejection_reasons in connectors.yaml",
    ),
    "INVALID_PARAMETERS": Meaning(_A.ROW, "Invalid parameters", "see CRM.COM's description"),
    "TOO_MANY_REQUESTS": Meaning(_A.THROTTLE, "Too many requests", "backing off"),
    "INTERNAL_ERROR": Meaning(_A.RETRY, "Internal error", "retried with backoff"),
}
"""CRM.COM ``status.code`` → meaning; an unknown code fails the invoice with CRM's message."""

CRM_UNKNOWN = Meaning(_A.ROW, "Unknown CRM.COM error", "see CRM.COM's message")


_BY_STATUS: dict[int, Meaning] = {
    401: Meaning(_A.RENEW, "Unauthorized", "the token is renewed once and the call repeated"),
    403: Meaning(_A.FATAL, "Forbidden", "the login lacks the rights for this call"),
    404: Meaning(_A.FATAL, "Not Found", "the base URL does not point at the API"),
    429: Meaning(_A.THROTTLE, "Too Many Requests", "backing off"),
    400: Meaning(_A.ROW, "HTTP 400", "the system refused this invoice"),
    409: Meaning(_A.ROW, "HTTP 409", "the system refused this invoice"),
    422: Meaning(_A.ROW, "HTTP 422", "the system refused this invoice"),
}


def by_http_status(status: int) -> Meaning:
    """The meaning of an HTTP status whose body names no known code."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return Meaning(_A.RETRY, f"HTTP {status}", "retried with backoff")
    return Meaning(_A.FATAL, f"HTTP {status}", "an answer the API does not document")


_KINDS: dict[System, dict[Action, type[RemoteError]]] = {
    "merchant": {
        Action.FATAL: MerchantFatal,
        Action.RENEW: MerchantFatal,  # a renewal that did not help
        Action.ROW: MerchantRowError,
        Action.THROTTLE: MerchantThrottled,
        Action.RETRY: MerchantUnavailable,
    },
    "crm": {
        Action.FATAL: CrmFatal,
        Action.RENEW: CrmFatal,
        Action.ROW: CrmRowError,
        Action.THROTTLE: CrmThrottled,
        Action.RETRY: CrmUnavailable,
    },
}
"""System → action → the error class a failed answer raises."""

_FATAL: dict[System, type[RemoteError]] = {"merchant": MerchantFatal, "crm": CrmFatal}
_TRANSPORT: dict[System, type[RemoteError]] = {"merchant": MerchantTransport, "crm": CrmTransport}


def error_for(
    system: System,
    meaning: Meaning,
    detail: str,
    *,
    status: int | None,
    code: str | None,
    retry_after: float | None = None,
) -> RemoteError:
    """The typed error for a failed answer: ``<system>: <title>: <detail> (<hint>)``."""
    text = f"{SYSTEM_NAMES[system]}: {meaning.title}"
    if detail and detail != meaning.title:
        text += f": {detail}"
    if meaning.hint:
        text += f" ({meaning.hint})"
    kind = _KINDS[system].get(meaning.action, _FATAL[system])
    return kind(text, status=status, error_code=code, retry_after=retry_after)


def transport_error(system: System, error: Exception) -> RemoteError:
    """No HTTP answer: the exception's kind names what happened (never the request)."""
    return _TRANSPORT[system](
        f"{SYSTEM_NAMES[system]}: no answer ({type(error).__name__}); retried with backoff"
    )
