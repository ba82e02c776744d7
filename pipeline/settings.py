"""Runtime settings: the only code that reads the environment and ``.env`` (pydantic-settings).

Every variable is documented in ``.env.example``. Secrets are :class:`~pydantic.SecretStr` and print
as ``**********``; database URLs may carry a password and are masked by :func:`mask_url`.
"""

from __future__ import annotations

import functools
import logging
import re
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipeline.errors import ConfigurationError

_log = logging.getLogger(__name__)

SANDBOX_URL = "http://127.0.0.1:8765/dictionary-data-services"
SANDBOX_ROOT = "http://127.0.0.1:8765/"
"""Where ``appzen-etl sandbox`` listens by default: AppZen, merchant and CRM under one root."""
# The local sandbox's own credentials (x-api-key, customer-id, customer-key): not secrets.
SANDBOX_CREDENTIALS = ("sandbox-api-key", "100094", "sandbox-customer-key")
# The sandbox's merchant platform (client id, client secret, refresh token) and CRM.COM
# (username, password, organisation) logins: not secrets, used only against loopback URLs.
SANDBOX_MERCHANT = ("sandbox-merchant-client", "sandbox-merchant-secret", "sandbox-refresh-0")
SANDBOX_CRM = ("sandbox-crm-user", "sandbox-crm-password", "SANDBOX")
DEFAULT_STATE_DIR = Path(".state")


class SettingsError(ConfigurationError):
    """A setting is missing or malformed; the message names the variable and the fix."""


# env_ignore_empty: `NAME=` (as .env.example lists them) means "not set", not "".
_SOURCES = SettingsConfigDict(
    env_file=".env",
    env_file_encoding="utf-8",
    extra="ignore",
    frozen=True,
    env_ignore_empty=True,
)


class PathSettings(BaseSettings):
    """Where appzen-etl looks for files. Readable on its own (:func:`mappings_dir`), without the
    credential checks of :class:`Settings`, wherever a mapping file is looked up."""

    model_config = _SOURCES

    appzen_mappings_dir: Annotated[
        Path | None,
        Field(
            description="Folder searched first for a mapping given by name (--mapping nightly_ap "
            "finds nightly_ap.yaml there), before the mappings shipped with appzen-etl."
        ),
    ] = None


class AutomationSettings(BaseSettings):
    """What ``python -m flows.automations`` installs on the Prefect server. Readable on its own,
    without the credential checks of :class:`Settings` (the command talks to Prefect only)."""

    model_config = _SOURCES

    notification_block: Annotated[
        str | None,
        Field(
            pattern=r"^[a-z0-9-]+/[a-z0-9][a-z0-9_-]*$",
            description="The Prefect notification block the nightly alert sends to, as "
            "block-type/name (slack-webhook/ops-alerts, sendgrid-email/ap-team, "
            "custom-webhook/pager): a nightly that fails, crashes or ends with failed invoices.",
        ),
    ] = None
    heartbeat_timeout: Annotated[
        int,
        Field(
            ge=60,
            le=86_400,
            description="Seconds without a flow-run heartbeat after which a running flow run of "
            "appzen-etl is marked Crashed (its process or machine is gone). At least twice "
            "PREFECT_FLOWS_HEARTBEAT_FREQUENCY (prefect.yaml sets 60 s; Prefect's default 180 s).",
        ),
    ] = 300


class Settings(PathSettings):
    """Connection, credentials and load tuning for one process."""

    model_config = _SOURCES

    appzen_base_url: Annotated[
        str, Field(description="AppZen API root, ending in /dictionary-data-services.")
    ] = SANDBOX_URL
    appzen_sandbox: Annotated[
        bool,
        Field(
            description="true: URLs on this machine (127.0.0.1, localhost, ::1) are appzen-etl's "
            "own sandbox (appzen-etl sandbox, the demo), whose built-in logins apply where none is "
            "set. Otherwise only the default APPZEN_BASE_URL (unset) is the sandbox; any other "
            "URL, loopback included, needs real credentials."
        ),
    ] = False
    appzen_api_key: Annotated[
        SecretStr | None, Field(description="x-api-key header; required unless on the sandbox.")
    ] = None
    appzen_customer_id: Annotated[
        str | None, Field(min_length=1, description="customer-id header; required unless sandbox.")
    ] = None
    appzen_customer_key: Annotated[
        SecretStr | None, Field(description="customer-key header; required unless on the sandbox.")
    ] = None
    appzen_verify_tls: Annotated[
        bool, Field(description="Verify TLS certificates; turn off only for a test endpoint.")
    ] = True
    allow_plain_http: Annotated[
        bool,
        Field(
            description="Send credentials over plain http:// to a host other than this machine "
            "(refused by default; a warning is logged on every run when allowed)."
        ),
    ] = False
    erp_database_url: Annotated[
        SecretStr | None, Field(description="SQLAlchemy URL of the ERP (may hold a password).")
    ] = None
    erp_max_connections: Annotated[
        int,
        Field(
            ge=1,
            le=1_000,
            description="The most connections a run opens to the ERP database at once: a "
            "backfill reads that many partitions at a time (fewer when the machine has fewer "
            "cores, or a partition needs two: a lines source).",
        ),
    ] = 4
    staging_database_url: Annotated[
        SecretStr, Field(description="SQLAlchemy URL of the staging database.")
    ] = SecretStr(f"sqlite:///{DEFAULT_STATE_DIR / 'staging.db'}")
    appzen_rate_limit: Annotated[
        float, Field(gt=0, le=10_000, description="Requests per second to AppZen (start value).")
    ] = 20.0
    appzen_max_concurrency: Annotated[
        int, Field(ge=1, le=1_000, description="Requests in flight at once.")
    ] = 16
    appzen_connect_timeout: Annotated[
        float, Field(gt=0, le=300, description="Seconds to open a connection.")
    ] = 10.0
    appzen_read_timeout: Annotated[
        float, Field(gt=0, le=600, description="Seconds to wait for an answer.")
    ] = 60.0
    appzen_retry_attempts: Annotated[
        int, Field(ge=1, le=50, description="Attempts per request before it counts as failed.")
    ] = 6
    appzen_outage_window: Annotated[
        float,
        Field(
            gt=0,
            le=3600,
            description="Seconds of nothing but failures from AppZen (refused or dropped "
            "connections, DNS, TLS, timeouts, 5xx) after which a run stops as an outage "
            "(exit code 3); the invoices stay pending.",
        ),
    ] = 30.0
    appzen_remember_rate: Annotated[
        bool,
        Field(
            description="Remember the quota AppZen's 429s taught a run (in staging, per endpoint "
            "and customer id) and start the next run, on any worker, there instead of "
            "re-probing from APPZEN_RATE_LIMIT.",
        ),
    ] = True
    appzen_global_limit: Annotated[
        str | None,
        Field(
            min_length=1,
            pattern=r"^\S+$",
            description="The Prefect global concurrency limit every flow takes a permit from "
            "for each AppZen request (the quota all runs and workers share). Unset: the limit "
            "appzen-api when it exists on the Prefect server, else none; none: never shared. "
            "The CLI takes from it only when this names it (and PREFECT_API_URL is set); "
            "unset, a CLI run paces alone.",
        ),
    ] = None
    appzen_daily_budget: Annotated[
        int,
        Field(
            ge=1,
            le=1_000_000_000,
            description="Requests per day AppZen allows these credentials (its public guideline: "
            "300,000), counted in staging across every run, worker and flow; when it is spent a "
            "run stops (exit code 5) and the invoices stay pending until the next day.",
        ),
    ] = 300_000
    appzen_budget_timezone: Annotated[
        str,
        Field(
            min_length=1,
            description="Time zone of AppZen's day for the daily budget (IANA name, e.g. "
            "America/Los_Angeles); the budget starts afresh at midnight there.",
        ),
    ] = "UTC"
    appzen_budget_reserve_nightly: Annotated[
        int,
        Field(
            ge=0,
            le=1_000_000_000,
            description="Requests of each day's budget kept for the nightly sync (flow sync): "
            "other flows (backfill, retry-failed, verify, …) may not use them.",
        ),
    ] = 0
    appzen_budget_reserve_status_sync: Annotated[
        int,
        Field(
            ge=0,
            le=1_000_000_000,
            description="Requests of each day's budget kept for status-sync; other flows may "
            "not use them.",
        ),
    ] = 0
    reports_dir: Annotated[
        Path, Field(description="Where failed-row reports (CSV, HTML) are written.")
    ] = DEFAULT_STATE_DIR / "reports"
    appzen_reports_url: Annotated[
        str | None,
        Field(
            pattern=r"^[^\s<>]+$",
            description="URL prefix where REPORTS_DIR is served to the people who read the "
            "Prefect UI (e.g. https://reports.example.com/appzen): artifacts and the run-end "
            "WARNING then link to run-<id>-failures.html there instead of naming a worker's path.",
        ),
    ] = None
    batch_size: Annotated[
        int, Field(ge=1, le=100_000, description="Invoices per unit of work (one commit).")
    ] = 500
    progress_interval: Annotated[
        float,
        Field(
            gt=0,
            le=86_400,
            description="Seconds between the INFO progress lines a run logs when stderr is not "
            "a terminal (cron, a Prefect worker): extracted, sent, failed, rate, ETA.",
        ),
    ] = 30.0
    merchant_base_url: Annotated[
        str | None,
        Field(description="Merchant platform API root; overrides the mapping's and connectors'."),
    ] = None
    merchant_access_token: Annotated[
        SecretStr | None, Field(description="Merchant bearer token; refreshed when it expires.")
    ] = None
    merchant_refresh_token: Annotated[
        SecretStr | None, Field(description="Merchant OAuth2 refresh token (secret).")
    ] = None
    merchant_client_id: Annotated[
        str | None, Field(min_length=1, description="Merchant OAuth2 client id.")
    ] = None
    merchant_client_secret: Annotated[
        SecretStr | None, Field(description="Merchant OAuth2 client secret.")
    ] = None
    crm_base_url: Annotated[
        str | None, Field(description="CRM.COM Web API root; overrides connectors.yaml's.")
    ] = None
    crm_username: Annotated[str | None, Field(min_length=1, description="CRM.COM login.")] = None
    crm_password: Annotated[SecretStr | None, Field(description="CRM.COM password.")] = None
    crm_organisation: Annotated[
        str | None, Field(min_length=1, description="CRM.COM organisation to log in to.")
    ] = None

    @field_validator("appzen_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(
                "must be an http(s) URL such as https://api.appzen.com/dictionary-data-services"
            )
        return value.rstrip("/")

    @field_validator("merchant_base_url", "crm_base_url", "appzen_reports_url")
    @classmethod
    def _optional_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s@]+", value) or urlsplit(value).password:
            raise ValueError("must be an http(s) URL without a password, e.g. https://host/api")
        return value.rstrip("/")

    @field_validator("appzen_budget_timezone")
    @classmethod
    def _time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as UTC or Europe/Berlin"
            ) from None
        return value

    @model_validator(mode="after")
    def _reserves_fit(self) -> Self:
        """The reservations leave something of the daily budget for everything else."""
        kept = self.appzen_budget_reserve_nightly + self.appzen_budget_reserve_status_sync
        if kept > self.appzen_daily_budget:
            raise ValueError(
                f"APPZEN_BUDGET_RESERVE_NIGHTLY + APPZEN_BUDGET_RESERVE_STATUS_SYNC ({kept}) "
                f"exceed APPZEN_DAILY_BUDGET ({self.appzen_daily_budget})"
            )
        return self

    def budget_reserves(self) -> dict[str, int]:
        """Requests of each day's budget kept per flow (run flow name → requests)."""
        return {
            "sync": self.appzen_budget_reserve_nightly,
            "status_sync": self.appzen_budget_reserve_status_sync,
        }

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        """Off the local sandbox every credential is required; on it, the sandbox's own apply."""
        on_sandbox = self.on_sandbox(self.appzen_base_url)
        missing = [
            name.upper()
            for name in ("appzen_api_key", "appzen_customer_id", "appzen_customer_key")
            if getattr(self, name) is None
        ]
        if missing and not on_sandbox:
            hint = ""
            if is_loopback(self.appzen_base_url):
                hint = " (or APPZEN_SANDBOX=true if it is appzen-etl sandbox)"
            raise ValueError(
                f"{', '.join(missing)} must be set for APPZEN_BASE_URL={self.appzen_base_url}{hint}"
            )
        return self

    def on_sandbox(self, url: str) -> bool:
        """True when ``url`` is appzen-etl's own sandbox, whose built-in logins apply: on this
        machine and either ``APPZEN_SANDBOX=true`` or, with ``APPZEN_BASE_URL`` unset (its
        default, the sandbox), under the sandbox's default address. A test AppZen, merchant or
        CRM on loopback is not the sandbox: it needs credentials like any other."""
        if not is_loopback(url):
            return False
        if self.appzen_sandbox:
            return True
        return "appzen_base_url" not in self.model_fields_set and url.startswith(SANDBOX_ROOT)

    @model_validator(mode="after")
    def _no_credentials_in_clear(self) -> Self:
        """Credentials never go over plain http:// to another machine unless explicitly allowed
        (``ALLOW_PLAIN_HTTP=true``, then a warning on every run)."""
        for variable, url, secrets in self._credentialed_urls():
            if url is None or not secrets or is_loopback(url) or not url.startswith("http://"):
                continue
            if self.allow_plain_http:
                _log.warning(
                    "%s is plain http:// to %s: credentials are sent in clear "
                    "(ALLOW_PLAIN_HTTP=true); use https://",
                    variable,
                    urlsplit(url).hostname,
                )
                continue
            raise ValueError(
                f"{variable} is plain http:// to {urlsplit(url).hostname}, which would send the "
                "credentials in clear; use https:// (or, for a trusted test network only, set "
                "ALLOW_PLAIN_HTTP=true)"
            )
        return self

    def _credentialed_urls(self) -> list[tuple[str, str | None, bool]]:
        """``(variable, URL, whether credentials go to it)`` for each system called over HTTP."""
        merchant = (self.merchant_access_token, self.merchant_refresh_token)
        merchant_secret = any(s is not None for s in (*merchant, self.merchant_client_secret))
        return [
            ("APPZEN_BASE_URL", self.appzen_base_url, True),
            ("MERCHANT_BASE_URL", self.merchant_base_url, merchant_secret),
            ("CRM_BASE_URL", self.crm_base_url, self.crm_password is not None),
        ]

    def credentials(self) -> tuple[str, str, str]:
        """``(x-api-key, customer-id, customer-key)``; the sandbox's defaults on the sandbox."""
        return (
            (self.appzen_api_key or SecretStr(SANDBOX_CREDENTIALS[0])).get_secret_value(),
            self.appzen_customer_id or SANDBOX_CREDENTIALS[1],
            (self.appzen_customer_key or SecretStr(SANDBOX_CREDENTIALS[2])).get_secret_value(),
        )


def is_loopback(url: str) -> bool:
    """True when ``url`` points at this machine (the local sandbox)."""
    host = urlsplit(url).hostname or ""
    return host in {"localhost", "127.0.0.1", "::1"}


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        name = str(item["loc"][0]).upper() if item["loc"] else "APPZEN credentials"
        lines.append(f"{name}: {item['msg'].removeprefix('Value error, ')}")
    return "invalid settings (environment or .env):\n  " + "\n  ".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read the settings; raise :class:`SettingsError` naming each bad variable, never a value."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def automation_settings() -> AutomationSettings:
    """``NOTIFICATION_BLOCK`` and ``HEARTBEAT_TIMEOUT`` (environment or ``.env``), read now."""
    try:
        return AutomationSettings()
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def mappings_dir() -> Path | None:
    """``APPZEN_MAPPINGS_DIR`` (environment or ``.env``), read now; ``None`` when unset."""
    try:
        return PathSettings().appzen_mappings_dir
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def mask_url(url: str) -> str:
    """``postgresql://u:secret@h/db`` → ``postgresql://u:***@h/db`` for logs and messages."""
    return re.sub(r"(://[^:/@\s]+:)[^@\s]*@", r"\1***@", url)
