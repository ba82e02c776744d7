"""The project's AppZenClient against the sandbox over loopback: the two sides agree."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipeline.appzen import errors
from pipeline.appzen.client import AppZenClient
from pipeline.appzen.models import Invoice, StatusSyncRequest
from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import load_settings
from tests.sandbox.helpers import make_invoice, sync_body


def client_for(sandbox: SandboxServer) -> AppZenClient:
    return AppZenClient(load_settings(appzen_base_url=sandbox.base_url))


async def test_create_update_sync_and_read_back(sandbox: SandboxServer) -> None:
    invoice = Invoice.model_validate(make_invoice("INV-9"))
    async with client_for(sandbox) as client:
        created = await client.create_or_update(invoice, historical=True)
        updated = await client.create_or_update(invoice, historical=False)
        reply = await client.status_sync(
            created.uuid, StatusSyncRequest.model_validate(sync_body())
        )
        details = await client.get_invoice(created.uuid)

    assert (created.status, created.http_status) == ("CREATED", 201)
    assert (updated.status, updated.uuid) == ("UPDATED", created.uuid)
    assert created.correlation_id != updated.correlation_id
    assert reply.http_status == 200
    assert details.total_amount is not None
    assert details.total_amount.amount == Decimal("200.00")
    assert details.shipping_address is not None
    assert details.shipping_address.address_type == "OFFICE"
    stored = sandbox.state.invoice("INV-9")
    assert stored is not None
    assert stored.historical == (True, False)


async def test_the_client_classifies_the_sandbox_errors(sandbox: SandboxServer) -> None:
    invoice = Invoice.model_validate(make_invoice())
    async with client_for(sandbox) as client:
        sandbox.state.configure(rate=1)
        await client.create_or_update(invoice, historical=False)
        with pytest.raises(errors.QuotaExceeded) as quota:
            await client.create_or_update(invoice, historical=False)
        sandbox.state.configure(rate=None, drop_rate=1.0)
        with pytest.raises(errors.TransportError):
            await client.create_or_update(invoice, historical=False)
        sandbox.state.configure(drop_rate=0.0)
        with pytest.raises(errors.UnknownInvoice) as unknown:
            await client.get_invoice("00000000-0000-4000-8000-000000000000")

    assert quota.value.retry_after == 1.0
    assert quota.value.correlation_id
    assert unknown.value.error_code is not None
