"""The records the staging store takes and returns: frozen dataclasses, validated on creation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pipeline.failures import RowFailure
from pipeline.staging.tables import HASH_CHARS, KEY_CHARS, STATUS_CHARS

InvoiceState = Literal["pending", "sent", "rejected", "failed_retryable", "recreate"]
Action = Literal["send", "unchanged", "rejected_unchanged", "busy"]
Expect = Literal["create", "update"]
OutcomeKind = Literal["acked", "rejected", "retryable_failed"]
RunStatus = Literal[
    "running", "succeeded", "partial", "failed", "interrupted", "cancelled", "crashed"
]
ResendCause = Literal["crash", "lost_answer", "other_worker"]
"""Why AppZen may already hold an invoice staging is about to create: an earlier run died with the
invoice claimed (``crash``), an earlier send's answer was lost (``lost_answer``: this run's retry,
or a run that ended with it in doubt), or no run of this staging ever sent it (``other_worker``)."""
AppZenStatus = Literal["CREATED", "UPDATED"]

ErpError = Mapping[str, object]
"""What the ERP said when it could not take an invoice: ``{message, status, exception}``."""


def _check_key(invoice_id: str, what: str) -> None:
    if not invoice_id or len(invoice_id) > KEY_CHARS:
        raise ValueError(
            f"{what}: invoice_id {invoice_id[:40]!r} must be 1..{KEY_CHARS} characters "
            f"(got {len(invoice_id)}); shorten the key in the mapping"
        )


@dataclass(frozen=True, slots=True)
class StageItem:
    """One mapped invoice offered to :meth:`StagingStore.claim_batch`."""

    invoice_id: str
    payload_hash: str
    erp_status: str | None = None
    erp_error: ErpError | None = None
    source_hash: str | None = None
    """The hash of the source rows (and mapping) the payload came from, when the run computed it
    (:mod:`pipeline.mapping.sourcehash`): staged with ``payload_hash``, so a later run that reads
    the same rows can skip mapping them."""

    def __post_init__(self) -> None:
        _check_key(self.invoice_id, "StageItem")
        if not self.payload_hash or len(self.payload_hash) > HASH_CHARS:
            raise ValueError(
                f"StageItem {self.invoice_id!r}: payload_hash must be 1..{HASH_CHARS} characters"
            )
        if self.erp_status is not None and len(self.erp_status) > STATUS_CHARS:
            raise ValueError(
                f"StageItem {self.invoice_id!r}: erp_status longer than {STATUS_CHARS} characters"
            )


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with one item of a batch: ``expect`` is set when ``action == "send"``;
    ``uuid`` and ``state`` are the invoice's as the decision saw them (after this batch's
    upsert, so a changed payload already reads ``pending``)."""

    invoice_id: str
    action: Action
    expect: Expect | None
    uuid: str | None
    state: InvoiceState
    holder: str | None = None
    """``busy``: the live run holding the claim (``run 12 (host db1, pid 345)``)."""
    cause: ResendCause | None = None
    """``send``: why AppZen may already hold it, should it answer UPDATED to a create."""


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """How AppZen answered the send of one invoice (after the poster's retries)."""

    invoice_id: str
    payload_hash: str
    payload: bytes
    kind: OutcomeKind
    expect: Expect
    uuid: str | None = None
    appzen_status: AppZenStatus | None = None
    http_status: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    correlation_id: str | None = None
    attempts: int = 1
    historical: bool = False
    supplier_invoice: str | None = None
    """The supplier and normalised supplier invoice number of the payload (duplicate checks)."""
    cause: ResendCause | None = None
    """Why AppZen may have held it before this send (:data:`ResendCause`)."""

    def __post_init__(self) -> None:
        _check_key(self.invoice_id, "SendOutcome")
        if self.kind == "acked" and not (self.uuid and self.appzen_status):
            raise ValueError(
                f"SendOutcome {self.invoice_id!r}: an acked outcome needs AppZen's uuid and "
                "status (CREATED/UPDATED)"
            )


@dataclass(frozen=True, slots=True)
class PushRecord:
    """What status-sync pushed for one invoice: the ERP status and error it reported."""

    invoice_id: str
    status: str | None
    error: ErpError | None = None


@dataclass(frozen=True, slots=True)
class StatusRead:
    """One invoice's current ERP status and error, as a status read found them."""

    invoice_id: str
    status: str | None
    error: ErpError | None = None

    def __post_init__(self) -> None:
        _check_key(self.invoice_id, "StatusRead")
        if self.status is not None and len(self.status) > STATUS_CHARS:
            raise ValueError(
                f"StatusRead {self.invoice_id!r}: status longer than {STATUS_CHARS} characters"
            )


@dataclass(frozen=True, slots=True)
class StatusCandidate:
    """An acknowledged invoice whose ERP status differs from what status-sync last pushed."""

    invoice_id: str
    uuid: str
    erp_status: str | None
    erp_error: dict[str, object] | None
    pushed_status: str | None
    pushed_error: dict[str, object] | None
    pushed_in_doubt: bool = False
    """An earlier status-sync sent this very status and never recorded the answer (it died):
    AppZen may have it already, so pushing it again may repeat it."""


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    """One row of the ``invoices`` table."""

    mapping: str
    invoice_id: str
    state: InvoiceState
    payload_hash: str
    acked_hash: str | None
    acked_payload: bytes | None
    rejected_hash: str | None
    uuid: str | None
    uuid_lost_at: datetime | None
    appzen_status: str | None
    attempts: int
    send_count: int
    resent_after_crash: int
    last_http_status: int | None
    error_code: str | None
    error_message: str | None
    correlation_id: str | None
    historical: bool | None
    first_sent_at: datetime | None
    last_sent_at: datetime | None
    erp_status: str | None
    erp_error: dict[str, object] | None
    pushed_status: str | None
    pushed_error: dict[str, object] | None
    pushed_at: datetime | None
    push_count: int
    push_pending: bool
    last_run_id: int | None
    claimed_by: str | None
    claim_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    push_in_doubt: str | None = None
    """The status push out for this invoice whose outcome is not recorded yet (JSON), if any."""
    supplier_invoice: str | None = None
    """Supplier and normalised supplier invoice number of the acked payload (duplicate checks)."""
    in_doubt_run_id: int | None = None
    """The run that claimed it to send and recorded no clear answer (acknowledgement or refusal)."""
    source_hash: str | None = None
    """The hash of the source rows (and mapping) ``payload_hash`` came from, if the run knew it."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One row of the ``runs`` table."""

    id: int
    flow: str
    mapping: str
    parameters: dict[str, object]
    historical: bool
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    counts: dict[str, int]
    watermark: str | None
    parent_run_id: int | None = None
    """The run this one was started under (a backfill partition's backfill), if any."""
    host: str | None = None
    pid: int | None = None
    heartbeat_at: datetime | None = None
    """The owner's last heartbeat (a running run's sign of life)."""
    reason: str | None = None
    """Why it ended as it did (``crashed: its process 345 on db1 no longer exists``)."""


@dataclass(frozen=True, slots=True)
class StoredFailure:
    """A :class:`RowFailure` as recorded for a run, with when its key first and last failed."""

    failure: RowFailure
    run_id: int
    mapping: str
    first_seen_at: datetime
    last_seen_at: datetime
