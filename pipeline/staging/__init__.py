"""The staging store: invoices, runs and failures on SQLAlchemy Core, with versioned migrations."""

from __future__ import annotations

from pipeline.staging.errors import StagingError, StagingTerminalError, StagingTransientError
from pipeline.staging.records import (
    Action,
    Decision,
    Expect,
    InvoiceRecord,
    InvoiceState,
    OutcomeKind,
    PushRecord,
    RunRecord,
    RunStatus,
    SendOutcome,
    StageItem,
    StatusCandidate,
    StatusRead,
    StoredFailure,
)
from pipeline.staging.store import StagingStore, new_owner, utc_now

__all__ = [
    "Action",
    "Decision",
    "Expect",
    "InvoiceRecord",
    "InvoiceState",
    "OutcomeKind",
    "PushRecord",
    "RunRecord",
    "RunStatus",
    "SendOutcome",
    "StageItem",
    "StagingError",
    "StagingStore",
    "StagingTerminalError",
    "StagingTransientError",
    "StatusCandidate",
    "StatusRead",
    "StoredFailure",
    "new_owner",
    "utc_now",
]
