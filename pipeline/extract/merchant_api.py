"""The merchant platform as a source: supplier invoices read with ``GET /invoice`` (filtered by
the ``storeIds`` / ``invoiceId`` headers; the API does not paginate), one row per invoice item.

The rows are exactly those of ``JsonSource(records="invoices", explode="invoiceItems")`` over an
export of the same answer, so one mapping (``mappings/merchant.yaml``'s fields) reads either.
Locations are ``merchant GET /invoice:invoices[id=880100].invoiceItems[0]``. The write-back's
``[AppZen <uuid> <STATE>]`` tag is cut from each note (it is not the merchant's data, and would
otherwise make every invoice look changed after a write-back). The answer is read
once per source and kept (``columns()`` then ``chunks()``); a refusal stops the run before
anything is sent, as an :class:`~pipeline.extract.base.ExtractError`, and retries used up on
transient answers as a :class:`~pipeline.extract.base.SourceUnavailable`. No pandas, as for
:mod:`pipeline.extract.json`: the answer's records go straight into column lists.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from pipeline.connectors.errors import MerchantError
from pipeline.connectors.merchant import (
    MerchantClient,
    MerchantCredentials,
    MerchantEndpoint,
    Record,
    merchant_credentials,
    without_appzen_note,
)
from pipeline.extract.base import ExtractError, SourceUnavailable
from pipeline.extract.json import JsonSource, Located
from pipeline.extract.specs import MerchantSourceSpec
from pipeline.runtime.clock import SYSTEM_CLOCK
from pipeline.runtime.retry import RetriesExhausted, RetryPolicy, call_with_retries
from pipeline.settings import Settings

T = TypeVar("T")
ORIGIN = "merchant GET /invoice"


class MerchantApiSource(JsonSource):
    """Supplier invoices of the merchant platform, items exploded into rows."""

    def __init__(
        self,
        endpoint: MerchantEndpoint,
        credentials: MerchantCredentials,
        *,
        store_ids: Sequence[int] = (),
        invoice_ids: Sequence[int] = (),
        attempts: int = 4,
        chunk_rows: int = 20_000,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            ORIGIN,
            base_dir=Path(),
            records="invoices",
            explode="invoiceItems",
            chunk_rows=chunk_rows,
        )
        self._endpoint, self._credentials = endpoint, credentials
        self._store_ids, self._invoice_ids = tuple(store_ids), tuple(invoice_ids)
        self._attempts, self._transport = attempts, transport
        self._fetched: list[Record] | None = None

    def describe(self) -> str:
        """``merchant API https://…/invoice (stores 12, 15)``, never a token."""
        stores = ", ".join(str(i) for i in self._store_ids) or "all"
        return f"merchant API {self._endpoint.base_url}/invoice (stores {stores})"

    def invoices(self) -> list[Record]:
        """The platform's answer (fetched on first use, then kept)."""
        if self._fetched is None:
            self._fetched = run_blocking(self._fetch())
        return self._fetched

    def _located_records(self) -> Iterator[Located]:
        for index, record in enumerate(self.invoices()):
            key = record.get("id")
            where = f"id={key}" if key is not None else str(index)
            yield f"{ORIGIN}:invoices[{where}]", record

    async def _fetch(self) -> list[Record]:
        async with MerchantClient(
            self._endpoint, self._credentials, transport=self._transport
        ) as client:
            try:
                done = await call_with_retries(
                    lambda: client.list_invoices(self._store_ids, self._invoice_ids),
                    RetryPolicy(self._attempts),
                    SYSTEM_CLOCK,
                )
            except RetriesExhausted as error:
                raise SourceUnavailable(f"{self.describe()}: {error}") from None
            except MerchantError as error:
                raise ExtractError(f"{self.describe()}: {error}") from None
        return [without_appzen_note(invoice) for invoice in done.value]


def open_merchant_source(spec: MerchantSourceSpec, settings: Settings) -> MerchantApiSource:
    """The source a mapping's ``source: {kind: merchant, …}`` names; credentials from settings,
    ``MERCHANT_BASE_URL`` overriding the mapping's ``base_url``."""
    base = settings.merchant_base_url or spec.base_url
    endpoint = MerchantEndpoint(
        base, None if settings.merchant_base_url else spec.token_url, spec.accept_version
    )
    return MerchantApiSource(
        endpoint,
        merchant_credentials(settings, base),
        store_ids=spec.store_ids,
        invoice_ids=spec.invoice_ids,
        chunk_rows=spec.chunk_rows,
    )


def run_blocking(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code, also when this thread already runs an
    event loop (a source opened inside an async job): then in a worker thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="merchant-source") as pool:
        return pool.submit(asyncio.run, work).result()
