"""``mappings/connectors.yaml``: where AppZen outcomes come from and which ERP-side systems hear
about them (merchant notes, CRM.COM rejections), as pydantic models read with file:line errors.

No secret belongs in the file: tokens and passwords are settings (``MERCHANT_*``, ``CRM_*``), and
``MERCHANT_BASE_URL`` / ``CRM_BASE_URL`` override the base URLs here per environment.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from pipeline.failures import shorten
from pipeline.mapping.errors import MappingError
from pipeline.mapping.leaves import suggest
from pipeline.mapping.yamlread import Document, YamlRefused, read_yaml
from pipeline.settings import mask_url

DEFAULT_PATH = Path("mappings/connectors.yaml")


class ConnectorsFileError(MappingError):
    """connectors.yaml is unreadable or invalid; ``errors`` has one ``file:line path: message``
    per problem, all of them."""


def _url(value: str) -> str:
    if urlsplit(value).password:
        raise ValueError("a URL with a password does not belong here: put secrets in settings")
    if not re.match(r"^https?://[^/\s@]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL such as https://api.example.com")
    return value.rstrip("/")


Url = Annotated[str, AfterValidator(_url)]
AuditStatus = Literal["PROCESSED", "REJECTED"]
MappingName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


class Strict(BaseModel):
    """Unknown keys are errors, values immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Throughput(Strict):
    """Rate limit, requests in flight, attempts and timeout for one system."""

    rate_per_s: float = Field(5.0, gt=0, le=10_000, description="Requests per second (start).")
    concurrency: int = Field(4, ge=1, le=100, description="Requests in flight at once.")
    attempts: int = Field(4, ge=1, le=20, description="Attempts per call (429, 5xx, timeouts).")
    timeout_s: float = Field(30.0, gt=0, le=600, description="Seconds to wait for an answer.")


class PollSpec(Strict):
    """Polling AppZen: ``POST /invoice/search`` over a window, then audit results per uuid."""

    enabled: bool = True
    statuses: list[AuditStatus] = Field(
        default_factory=lambda: list(get_args(AuditStatus)),
        description="appzen-invoice-status values to search for; empty = one search, any status.",
    )
    lookback_hours: float = Field(168.0, gt=0, le=24 * 366, description="First poll's window.")
    overlap_minutes: float = Field(
        10.0, ge=0, le=24 * 60, description="Each window starts this much before the last end."
    )
    slice_hours: float = Field(24.0, gt=0, le=24 * 31, description="Longest window per search.")


class AppZenSpec(Strict):
    """Where outcomes come from (the AppZen rate limit is APPZEN_RATE_LIMIT, shared)."""

    poll: PollSpec = Field(default_factory=PollSpec)


class MerchantSpec(Strict):
    """Write the AppZen uuid and state into the merchant invoice's note (``POST /invoice``)."""

    enabled: bool = True
    base_url: Url = Field(description="API root; MERCHANT_BASE_URL overrides it.")
    token_url: Url | None = Field(None, description="OAuth2 token URL; default <base>/oauth/token.")
    accept_version: str = Field("2", pattern=r"^[0-9]{1,3}$", description="x-accept-version.")
    mappings: list[MappingName] = Field(
        min_length=1, description="Mappings whose invoice_id is a merchant invoice id."
    )
    lookup_batch: int = Field(50, ge=1, le=500, description="Invoice ids per GET /invoice.")
    throughput: Throughput = Field(default_factory=Throughput)


class ReasonsSpec(Strict):
    """AppZen's reason (a rule code, or the outcomes file's reason) → CRM.COM rejection reason."""

    identifier: Literal["name", "id"] = Field("name", description="rejection_reason_identifier.")
    default: str = Field(min_length=1, description="The reason when the map has none.")
    map: dict[str, str] = Field(
        default_factory=dict, description="Reason (case-insensitive) → CRM.COM reason."
    )

    def reason_for(self, appzen_reason: str | None) -> str:
        """The CRM.COM reason for AppZen's reason (case-insensitive), else the default."""
        if appzen_reason:
            wanted = appzen_reason.strip().casefold()
            for key, value in self.map.items():
                if key.strip().casefold() == wanted:
                    return value
        return self.default


class CrmSpec(Strict):
    """Reject in CRM.COM (while DRAFT) every invoice AppZen rejected."""

    enabled: bool = True
    base_url: Url = Field(description="Web API root; CRM_BASE_URL overrides it.")
    mappings: list[MappingName] = Field(min_length=1, description="Mappings of CRM.COM invoices.")
    invoice_identifier: Literal["reference_number", "id", "number"] = Field(
        "reference_number", description="Which invoice_identifier field the invoice_id fills."
    )
    token_ttl_minutes: float = Field(120.0, gt=0, le=24 * 60, description="Token lifetime.")
    renew_before_minutes: float = Field(5.0, ge=0, le=60, description="Renew this early.")
    rejection_reasons: ReasonsSpec
    throughput: Throughput = Field(default_factory=Throughput)


class ConnectorsSpec(Strict):
    """One connectors file."""

    version: Literal[1] = 1
    name: MappingName = Field("connectors", description="Names the write-back runs.")
    appzen: AppZenSpec = Field(default_factory=AppZenSpec)
    merchant: MerchantSpec | None = None
    crm: CrmSpec | None = None

    @property
    def mappings(self) -> list[str]:
        """Every mapping a connector writes back for (merchant first), without repeats."""
        names: list[str] = []
        for spec in (self.merchant, self.crm):
            if spec is not None and spec.enabled:
                names += [name for name in spec.mappings if name not in names]
        return names


def load_connectors(path: Path = DEFAULT_PATH) -> ConnectorsSpec:
    """Read and check a connectors file; :class:`ConnectorsFileError` lists every problem."""
    shown = str(path)
    try:
        document = read_yaml(Path(path), shown)
    except YamlRefused as refused:
        raise ConnectorsFileError(refused.errors) from None
    except OSError as error:
        raise ConnectorsFileError(
            f"{shown}: cannot read the connectors file: {error.strerror}"
        ) from None
    try:
        return ConnectorsSpec.model_validate(document.data)
    except ValidationError as error:
        raise ConnectorsFileError(_messages(error, document, shown)) from None


def _messages(error: ValidationError, document: Document, shown: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for item in error.errors(include_url=False):
        path = _key_path(document.data, item["loc"], item["type"])
        dotted = ".".join(str(part) for part in path)
        line = document.line_of(path)
        text = _text(item["type"], item["msg"], path, item.get("input"))
        found.append((line, f"{shown}:{line} {dotted}: {text}" if dotted else f"{shown}: {text}"))
    return [message for _, message in sorted(set(found))]


def _key_path(data: object, loc: tuple[int | str, ...], kind: str) -> tuple[int | str, ...]:
    """The keys of ``loc`` that are keys of the file (pydantic adds union branch names)."""
    path: list[int | str] = []
    node = data
    for position, part in enumerate(loc):
        is_key = isinstance(node, dict) and part in node
        is_index = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if is_key or is_index:
            path.append(part)
            node = node[part]  # type: ignore[index]
        elif position == len(loc) - 1 and kind == "missing":
            path.append(part)
    return tuple(path)


def _text(kind: str, message: str, path: tuple[int | str, ...], value: object) -> str:
    if kind == "extra_forbidden":
        known = list(_model_at(path[:-1]).model_fields)
        key = str(path[-1])
        return f"unknown key {key!r}{suggest(key, known)} (allowed: {', '.join(known)})"
    if kind == "missing":
        return f"missing key {path[-1]!r}"
    text = message.removeprefix("Value error, ")
    if kind != "value_error" and not isinstance(value, dict | list):
        text += f" (got {shorten(mask_url(repr(value)), 60)})"
    return text


def _model_at(path: tuple[int | str, ...]) -> type[BaseModel]:
    current: type[BaseModel] = ConnectorsSpec
    for part in path:
        field = current.model_fields.get(str(part))
        annotation: Any = None if field is None else field.annotation
        for arg in (annotation, *get_args(annotation)):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                current = arg
                break
        else:
            if get_origin(annotation) is None:
                break
    return current
