"""The sandbox's live state: stored invoices, status-sync pushes, counters, knobs and fault rolls.

One :class:`SandboxState` is shared by the server thread (which writes) and the tests (which read
and reconfigure); every method takes the lock, and readers get copies or immutable records.
Stored payloads are never changed in place (a mutation replaces them), so a record handed out
stays as it was; callers must treat payload dicts as read-only too (they are shared, not copied,
so that reading a large state stays cheap).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from array import array
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from pipeline.devkit.sandbox.audit import AuditState
from pipeline.devkit.sandbox.crm import CrmState
from pipeline.devkit.sandbox.knobs import Credentials, Knobs, TokenBucket, parse_knobs
from pipeline.devkit.sandbox.merchant import MerchantState
from pipeline.devkit.sandbox.wire import JsonDict, with_path_set


class UnknownInvoiceError(LookupError):
    """No invoice with that ``invoice_id`` is stored."""


@dataclass(frozen=True, slots=True)
class StoredInvoice:
    """The latest version of an invoice as AppZen holds it."""

    invoice_id: str
    uuid: str
    payload: JsonDict
    versions: int
    historical: tuple[bool, ...]
    first_received: float
    last_received: float

    def to_json(self) -> JsonDict:
        """The record as JSON-ready data (Decimals kept: write it with ``dumps_exact``)."""
        return {
            "uuid": self.uuid,
            "payload": self.payload,
            "versions": self.versions,
            "historical": list(self.historical),
            "first_received": self.first_received,
            "last_received": self.last_received,
        }


@dataclass(frozen=True, slots=True)
class StatusPush:
    """One accepted status-sync: the body as sent and as understood (underscore keys)."""

    uuid: str
    invoice_id: str
    body: JsonDict
    sync: JsonDict
    received_at: float

    def to_json(self) -> JsonDict:
        """The push as JSON-ready data."""
        return {
            "uuid": self.uuid,
            "invoice_id": self.invoice_id,
            "body": self.body,
            "sync": self.sync,
            "received_at": self.received_at,
        }


class SandboxState:
    """Everything the sandbox knows; safe to read and configure from any thread."""

    def __init__(self, knobs: Knobs | None = None, credentials: Credentials | None = None) -> None:
        self.credentials = credentials or Credentials()
        self._initial_knobs = knobs or Knobs()
        self._lock = threading.Lock()
        self._clear(self._initial_knobs)
        # The ERP-side systems and AppZen's audit (pipeline.connectors), reset with the rest.
        self.audit, self.merchant, self.crm = AuditState(), MerchantState(), CrmState()

    def _clear(self, knobs: Knobs) -> None:
        self.knobs = knobs
        self._rng = random.Random(knobs.seed)  # noqa: S311 - fault injection, not cryptography
        self._bucket = TokenBucket(knobs.rate) if knobs.rate is not None else None
        self._invoices: dict[str, StoredInvoice] = {}
        self._by_uuid: dict[str, str] = {}
        self._pushes: list[StatusPush] = []
        self._responses: Counter[int] = Counter()
        self._dropped = 0
        self._accepted = array("d")

    # --- knobs and admin ---------------------------------------------------------------------
    def configure(self, **changes: Any) -> Knobs:
        """Change some knobs (the others stay); a new ``rate`` refills the bucket, a new ``seed``
        restarts the RNG. Raises :class:`SandboxConfigError` naming each bad knob."""
        with self._lock:
            knobs = parse_knobs({**self.knobs.model_dump(), **changes})
            if "rate" in changes:
                self._bucket = TokenBucket(knobs.rate) if knobs.rate is not None else None
            if "seed" in changes:
                self._rng = random.Random(knobs.seed)  # noqa: S311 - fault injection
            self.knobs = knobs
            return knobs

    def reset(self) -> None:
        """Back to the state at construction: no invoices, pushes or counts; the initial knobs."""
        with self._lock:
            self._clear(self._initial_knobs)
        for system in (self.audit, self.merchant, self.crm):
            system.reset()

    def mutate(
        self, invoice_id: str, path: str, value: object = None, *, delete: bool = False
    ) -> StoredInvoice:
        """Change a stored invoice behind the pipeline's back (reconciliation drift).

        ``path`` is dotted (``supplier_name``, ``invoice_lines.0.quantity``). Raises
        :class:`UnknownInvoiceError` or :class:`~pipeline.devkit.sandbox.wire.PathError`.
        """
        with self._lock:
            record = self._invoices.get(invoice_id)
            if record is None:
                raise UnknownInvoiceError(f"no invoice with invoice_id {invoice_id!r} is stored")
            payload = with_path_set(record.payload, path, value, delete=delete)
            record = replace(record, payload=payload)
            self._invoices[invoice_id] = record
            return record

    def forget(self, key: str) -> StoredInvoice:
        """Drop a stored invoice, named by ``invoice_id`` or uuid, as if AppZen lost it: its uuid
        answers 404 from now on and the next create of its ``invoice_id`` gets a new uuid. Its
        status-sync pushes stay recorded. Raises :class:`UnknownInvoiceError`."""
        with self._lock:
            invoice_id = key if key in self._invoices else self._by_uuid.get(key)
            record = None if invoice_id is None else self._invoices.pop(invoice_id, None)
            if record is None:
                raise UnknownInvoiceError(f"no invoice with invoice_id or uuid {key!r} is stored")
            self._by_uuid.pop(record.uuid, None)
            return record

    # --- reading -----------------------------------------------------------------------------
    def invoices(self) -> dict[str, StoredInvoice]:
        """Every stored invoice by ``invoice_id`` (a copy of the index; records are immutable)."""
        with self._lock:
            return dict(self._invoices)

    def invoice(self, invoice_id: str) -> StoredInvoice | None:
        """The stored invoice with this ``invoice_id``, if any."""
        with self._lock:
            return self._invoices.get(invoice_id)

    def invoice_by_uuid(self, invoice_uuid: str) -> StoredInvoice | None:
        """The stored invoice AppZen knows by this uuid, if any."""
        with self._lock:
            invoice_id = self._by_uuid.get(invoice_uuid)
            return None if invoice_id is None else self._invoices.get(invoice_id)

    def pushes(self) -> list[StatusPush]:
        """Every accepted status-sync, in the order received."""
        with self._lock:
            return list(self._pushes)

    def response_counts(self) -> dict[int, int]:
        """How many AppZen responses went out, by HTTP status (admin routes not counted)."""
        with self._lock:
            return dict(self._responses)

    def dropped(self) -> int:
        """How many connections were closed without an answer."""
        with self._lock:
            return self._dropped

    def accepted_times(self) -> list[float]:
        """Wall-clock time (epoch s) of every AppZen request not answered 429, in order."""
        with self._lock:
            return self._accepted.tolist()

    def snapshot(self) -> JsonDict:
        """Everything above as JSON-ready data (what ``GET /_sandbox/state`` answers)."""
        with self._lock:
            return {
                "knobs": self.knobs.model_dump(mode="json"),
                "invoices": {key: rec.to_json() for key, rec in self._invoices.items()},
                "status_syncs": [push.to_json() for push in self._pushes],
                "responses": {str(code): n for code, n in sorted(self._responses.items())},
                "dropped": self._dropped,
                "accepted_times": self._accepted.tolist(),
            }

    # --- used by the app on the server thread ------------------------------------------------
    def admit(self) -> float | None:
        """Count a request against the quota: ``None`` if accepted, else seconds to wait."""
        with self._lock:
            wait = self._bucket.take() if self._bucket is not None else None
            if wait is None:
                self._accepted.append(time.time())
            return wait

    def roll(self, probability: float) -> bool:
        """True with ``probability`` (seeded RNG); 0 and 1 are decided without a draw."""
        if probability <= 0.0:
            return False
        if probability >= 1.0:
            return True
        with self._lock:
            return self._rng.random() < probability

    def delay_seconds(self) -> float:
        """How long to wait before answering this request: latency plus an occasional spike."""
        knobs = self.knobs
        delay = knobs.latency_ms
        if knobs.latency_spike_ms and self.roll(knobs.latency_spike_rate):
            delay += knobs.latency_spike_ms
        return delay / 1000.0

    def upsert(self, invoice_id: str, payload: JsonDict, *, historical: bool) -> StoredInvoice:
        """Store a create-or-update; ``versions == 1`` means it was created."""
        now = time.time()
        with self._lock:
            old = self._invoices.get(invoice_id)
            if old is None:
                record = StoredInvoice(
                    invoice_id, str(uuid.uuid4()), payload, 1, (historical,), now, now
                )
                self._by_uuid[record.uuid] = invoice_id
            else:
                record = replace(
                    old,
                    payload=payload,
                    versions=old.versions + 1,
                    historical=(*old.historical, historical),
                    last_received=now,
                )
            self._invoices[invoice_id] = record
            return record

    def restore(self, invoices: dict[str, JsonDict]) -> int:
        """Hold ``invoices`` (a :meth:`snapshot`'s ``"invoices"``: ``{invoice_id: record}``) as
        stored, uuids kept: an AppZen that remembers what it was sent across restarts (the demo's
        second run is answered UPDATED). Returns how many are held."""
        records = {
            key: StoredInvoice(
                key,
                str(data["uuid"]),
                data["payload"],
                int(data["versions"]),
                tuple(bool(flag) for flag in data["historical"]),
                float(data["first_received"]),
                float(data["last_received"]),
            )
            for key, data in invoices.items()
        }
        with self._lock:
            self._invoices.update(records)
            self._by_uuid.update({record.uuid: key for key, record in records.items()})
        return len(records)

    def record_push(self, record: StoredInvoice, body: JsonDict, sync: JsonDict) -> StatusPush:
        """Remember an accepted status-sync for ``record``."""
        push = StatusPush(record.uuid, record.invoice_id, body, sync, time.time())
        with self._lock:
            self._pushes.append(push)
        return push

    def count_response(self, status: int) -> None:
        """Count one AppZen response by status."""
        with self._lock:
            self._responses[status] += 1

    def count_drop(self) -> None:
        """Count one connection closed without an answer."""
        with self._lock:
            self._dropped += 1
