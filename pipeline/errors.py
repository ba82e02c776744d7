"""The one error tree: the project's root error, the markers that say what to do about an error,
and the family of remote-API answers every client shares.

Every error the pipeline raises on purpose descends from :class:`EtlError` and carries exactly
one marker; retries and exit codes read the marker, never the message text (the dlt pattern):

* :class:`TerminalError`: retrying cannot help; a person must fix something (CLI exit code 2);
* :class:`TransientError`: the same thing may succeed later (back off and retry, or rerun);
  :class:`ThrottledError` is the transient kind where the remote asked us to slow down;
* :class:`ItemError`: this invoice or row is bad; it is reported and the run goes on.

The whole tree; each family lives in the package that raises it, ``[marker]`` where it is set::

    EtlError
    ├── TerminalError · TransientError ─ ThrottledError · ItemError       the markers
    ├── ConfigurationError [terminal]          a person must fix the configuration
    │   ├── SettingsError                        settings: a variable is missing or malformed
    │   ├── OptionError                          cli: command-line options that do not fit
    │   ├── GlobalLimitError                     flows: the Prefect concurrency limit to share
    │   └── SandboxConfigError                   devkit: a sandbox knob is unknown or out of range
    ├── MappingError [terminal]                 mapping: the mapping cannot run at all
    │   ├── MappingFileError                     a mapping file is unreadable or invalid
    │   ├── ConnectorsFileError                  connectors.yaml is unreadable or invalid
    │   └── YamlRefused                          the YAML itself is refused (file:line)
    ├── ConversionError [item]                  mapping: one source value does not convert
    ├── SourceError                             extract: the ERP side
    │   ├── ExtractError [terminal]              the source cannot be read (file, query, column)
    │   └── SourceUnavailable [transient]        the ERP database or API did not answer for now
    ├── StagingError                            staging: the staging database
    │   ├── StagingTerminalError [terminal]      bad URL, rights, full disk, missing database …
    │   └── StagingTransientError [transient]    locked/busy, connection lost, deadlock …
    ├── RemoteError                             a remote API's failed call: status, code, id
    │   ├── AppZenError                          appzen: the outcome table
    │   │   ├── FatalError [terminal]              credentials, wrong URL, certificate, unknown
    │   │   ├── RetryableError [transient]         5xx, no answer
    │   │   │   └── QuotaExceeded [throttled]      429
    │   │   └── RowError [item]                    400/413/422, unknown uuid
    │   ├── MerchantError                        connectors: the merchant platform
    │   │   ├── MerchantFatal [terminal] · MerchantUnavailable, MerchantTransport [transient]
    │   │   └── MerchantThrottled [throttled] · MerchantRowError [item]
    │   └── CrmError                             connectors: CRM.COM
    │       ├── CrmFatal [terminal] · CrmUnavailable, CrmTransport [transient]
    │       └── CrmThrottled [throttled] · CrmRowError [item] ─ NotDraft
    ├── RetriesExhausted [transient]            runtime: every attempt of one call failed
    ├── RemoteUnreachable [transient]           runtime: the circuit breaker tripped (an outage)
    ├── BudgetSpent [transient]                 runtime: the daily AppZen budget is spent
    ├── RunCancelled [transient]                runtime: the run was asked to stop (SIGTERM)
    ├── ReportError [terminal]                  report: a report file cannot be written
    └── RunStopped [terminal]                   a run stopped on a terminal answer

A family without a marker (``SourceError``, ``StagingError``, ``RemoteError``, ``AppZenError`` …)
is caught, never raised: raise one of its marked classes. This module imports nothing heavy (the
CLI reads it to choose an exit code before pandas, SQLAlchemy or httpx are loaded).
"""

from __future__ import annotations

from typing import ClassVar


class EtlError(Exception):
    """The root of every error appzen-etl raises on purpose; its marker says what to do."""


class TerminalError(EtlError):
    """Marker: retrying cannot help; a person must fix the cause (configuration, credentials,
    data the whole run depends on). The CLI shows the message and exits with code 2."""


class TransientError(EtlError):
    """Marker: the same call or run may succeed later (a lock, an outage, a dropped connection):
    back off and retry, or rerun."""


class ThrottledError(TransientError):
    """Marker: the remote asked us to slow down; ``retry_after`` is the wait it asked for, in
    seconds, when it said."""

    retry_after: float | None = None


class ItemError(EtlError):
    """Marker: this invoice or row is the problem; it is reported and the run goes on."""


MARKERS: tuple[type[EtlError], ...] = (TerminalError, TransientError, ItemError)
"""The markers; every concrete error carries exactly one (:class:`ThrottledError` is transient)."""


class ConfigurationError(TerminalError):
    """A person must fix the configuration (settings, options, limits) before anything runs."""


class RemoteError(EtlError):
    """A call to a remote system's API that did not succeed (AppZen, the merchant platform,
    CRM.COM): what the answer said, for messages and failed-row reports.

    ``in_doubt`` is true for the kinds the remote may have acted on all the same (a 5xx, no answer
    at all): a resend may repeat the call's effect."""

    in_doubt: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        correlation_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.error_code = error_code
        self.correlation_id = correlation_id
        self.retry_after = retry_after
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.message]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.error_code:
            parts.append(f"error code {self.error_code}")
        if self.correlation_id:
            parts.append(f"x-correlation-id {self.correlation_id}")
        return " | ".join(parts)


class RunStopped(TerminalError):
    """A run stopped on a terminal answer (credentials, wrong URL); the rest stays pending."""


class RemoteUnreachable(RemoteError, TransientError):
    """A remote system answered nothing but failures (no answer, a timeout, 5xx) for the circuit
    breaker's window (:mod:`pipeline.runtime.breaker`): an outage. The run stops at once; every
    call it had not had an answer to stays pending, nothing is recorded as failed for it, and a
    rerun once the remote answers finishes the work (CLI exit code 3)."""


class BudgetSpent(RemoteError, TransientError):
    """The day's AppZen request budget (``APPZEN_DAILY_BUDGET``, less what is kept for other
    flows) is spent (:mod:`pipeline.runtime.budget`). No further request goes out: the calls
    already sent finish, every other stays pending, nothing is recorded as failed, and a run
    after the next day boundary (``resumes_at``) goes on (CLI exit code 5)."""

    def __init__(self, message: str, *, resumes_at: str) -> None:
        self.resumes_at = resumes_at
        super().__init__(message)


class RunCancelled(RemoteError, TransientError):
    """The run was asked to stop from outside (SIGTERM: an operator's or Prefect's cancel, a
    shutdown; :mod:`pipeline.runtime.stop`). It stops as a spent budget does: no new request
    goes out, the requests already out finish (or are abandoned after a grace period) and are
    recorded, every other invoice stays pending and unclaimed, and the run is recorded
    ``cancelled`` (CLI exit code 143, as a process ended by SIGTERM). A rerun sends the rest.
    A :class:`RemoteError` only because the dispatcher stops on those."""
