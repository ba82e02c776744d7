"""Write-back: AppZen's outcomes told to the ERP-side systems: the merchant platform (its invoice
note gets the AppZen uuid and state) and CRM.COM (an invoice AppZen rejects is rejected there while
DRAFT).

Outcomes come from polling AppZen (``poll``) or an exported CSV (``outcomes``); ``writeback``
runs it all as one recorded run, configured by ``mappings/connectors.yaml`` (``config``). Each
system's answers are read through one table (``pipeline.connectors.errors``), and its calls go
through the shared Dispatcher: the same rate limiting, retries and failed-row reports as AppZen's.
"""

from __future__ import annotations

from pipeline.writeback.config import ConnectorsFileError, ConnectorsSpec, load_connectors
from pipeline.writeback.run import WritebackOptions, run_writeback

__all__ = [
    "ConnectorsFileError",
    "ConnectorsSpec",
    "WritebackOptions",
    "load_connectors",
    "run_writeback",
]
