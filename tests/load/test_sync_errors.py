"""AppZen saying no: 401/403/404 stop the run at once and leave the rest pending; a 400 rejects
one invoice with AppZen's message, error code and correlation id, until retry-failed resends it."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from pipeline.devkit.sandbox import SandboxServer
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from tests.load.sync_helpers import (
    NAME,
    assert_counts_add_up,
    expected,
    options,
    records,
    requests_sent,
    retry_all_failed,
    run_sync,
    tuned,
)

ERROR_CODE = re.compile(r"^[0-9a-f]{8}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SECRET = "s3cret-never-shown"


@pytest.mark.parametrize(
    ("changes", "status", "hint"),
    [
        pytest.param({"appzen_api_key": SecretStr(SECRET)}, 401, "APPZEN_API_KEY", id="api-key"),
        pytest.param(
            {"appzen_customer_key": SecretStr(SECRET)}, 401, "APPZEN_CUSTOMER_KEY", id="cust-key"
        ),
        pytest.param({"appzen_customer_id": "999999"}, 403, "APPZEN_CUSTOMER_ID", id="cust-id"),
        pytest.param({"appzen_base_url": "/wrong-api"}, 404, "APPZEN_BASE_URL", id="base-url"),
    ],
)
def test_a_fatal_answer_stops_the_run_at_once_and_leaves_the_rest_pending(
    sandbox: SandboxServer,
    settings: Settings,
    store: StagingStore,
    changes: dict[str, object],
    status: int,
    hint: str,
) -> None:
    if changes.get("appzen_base_url"):
        changes = {"appzen_base_url": sandbox.root_url + "/wrong-api"}
    concurrency = 4
    wrong = tuned(settings, appzen_max_concurrency=concurrency, **changes)

    stopped = run_sync(options(), wrong, store)

    assert stopped.status == "failed"
    assert stopped.fatal is not None
    assert hint in stopped.fatal
    assert f"HTTP {status}" in stopped.fatal
    assert SECRET not in repr(stopped.as_dict())
    assert SECRET not in repr(stopped.failures)
    assert 1 <= requests_sent(sandbox) <= concurrency  # only what was in flight already
    assert sandbox.state.response_counts() == {status: requests_sent(sandbox)}
    assert sandbox.state.invoices() == {}
    run = store.get_run(stopped.run_id or 0)
    assert run is not None
    assert run.status == "failed"
    assert run.watermark is None
    assert SECRET not in repr(run)
    staged = records(store, {key for key in expected(settings) if store.get_invoice(NAME, key)})
    assert staged
    assert all(r.state == "pending" and r.claimed_by is None for r in staged.values())
    assert all(r.send_count == 0 and r.uuid is None for r in staged.values())
    assert stopped.counts["left_pending"] == stopped.counts["planned_create"] > 0
    assert_counts_add_up(stopped)

    fixed = run_sync(options(), settings, store)

    assert fixed.status == "succeeded"
    assert fixed.counts["created"] == len(expected(settings))


def test_a_business_rejection_is_recorded_and_resent_only_by_retry_failed(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    supplier = valid[min(valid)].invoice.supplier_id
    bounced = {key for key, m in valid.items() if m.invoice.supplier_id == supplier}
    sandbox.state.configure(unknown_suppliers=[supplier])

    first = run_sync(options(), settings, store)

    assert first.status == "succeeded"
    assert first.fatal is None
    assert first.counts["failed_appzen"] == len(bounced)
    assert first.counts["created"] == len(valid) - len(bounced)
    assert set(sandbox.state.invoices()) == set(valid) - bounced
    failures = {
        f.failure.source_key: f.failure
        for f in store.failures_for_run(first.run_id or 0)
        if f.failure.stage == "appzen"
    }
    assert set(failures) == bounced
    for key, record in records(store, bounced).items():
        failure = failures[key]
        assert record.state == "rejected"
        assert record.rejected_hash == valid[key].payload_hash
        assert record.last_http_status == failure.http_status == 400
        assert failure.rule == "appzen_400"
        assert failure.attempts == 1
        assert f"supplier_id: '{supplier}' is not a supplier of this customer" in failure.message
        assert record.error_message == failure.message
        assert ERROR_CODE.match(failure.error_code or "")
        assert record.error_code == failure.error_code
        assert UUID.match(failure.correlation_id or "")
        assert record.correlation_id == failure.correlation_id
        assert failure.source_location == valid[key].location
        assert "retry-failed" in (failure.hint or "")
    assert_counts_add_up(first)

    sent = requests_sent(sandbox)
    rerun = run_sync(options(incremental=False), settings, store)
    assert requests_sent(sandbox) == sent
    assert rerun.counts["rejected_unchanged"] == len(bounced)
    assert rerun.counts["unchanged"] == len(valid) - len(bounced)

    still = retry_all_failed(settings, store)
    assert requests_sent(sandbox) == sent + len(bounced)
    # retry-failed re-reads every open failure (#16's ledger): the bounced and the dirty rows
    assert still.counts["failed_appzen"] == len(bounced)
    assert still.counts["extracted"] == len(bounced) + still.counts["failed_mapping"]
    assert store.failed_invoice_ids(NAME) == bounced
    assert_counts_add_up(still)

    sandbox.state.configure(unknown_suppliers=[])
    retried = retry_all_failed(settings, store)

    assert retried.counts["created"] == len(bounced)
    assert retried.counts["extracted"] == len(bounced) + retried.counts["failed_mapping"]
    assert store.failed_invoice_ids(NAME) == set()
    assert set(sandbox.state.invoices()) == set(valid)
    assert all(r.state == "sent" for r in records(store, valid).values())
    run = store.get_run(retried.run_id or 0)
    assert run is not None
    assert run.flow == "retry_failed"
    assert run.status == "succeeded"
    assert_counts_add_up(retried)
