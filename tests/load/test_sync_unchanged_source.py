"""Cheap reruns: an invoice whose source rows (and mapping) are those of its acknowledged payload
is not mapped again (its source hash is staged with the payload hash); a changed row, a changed
mapping file, ``--force`` or staging written before source hashes all map (and resend) as before."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from pipeline.devkit.sample_erp import GenerationReport, touch
from pipeline.devkit.sandbox import SandboxServer
from pipeline.load.sync import SyncOptions
from pipeline.settings import Settings
from pipeline.staging import StagingStore
from pipeline.staging.tables import invoices
from tests.load.sync_helpers import (
    MAPPING,
    REPO,
    assert_counts_add_up,
    expected,
    options,
    records,
    requests_sent,
    run_sync,
)

Erp = tuple[str, GenerationReport]


def test_a_full_rerun_over_unchanged_sources_maps_nothing_and_sends_nothing(
    sandbox: SandboxServer, settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    first = run_sync(options(), settings, store)
    before = requests_sent(sandbox)

    rerun = run_sync(options(incremental=False), settings, store)

    assert first.counts["unchanged_source"] == 0
    assert all(r.source_hash for r in records(store, valid).values())
    assert rerun.counts["unchanged_source"] == rerun.counts["unchanged"] == len(valid)
    assert rerun.counts["requests"] == 0
    assert requests_sent(sandbox) == before
    assert rerun.status == "succeeded"
    assert_counts_add_up(rerun)


def test_only_the_invoices_whose_rows_changed_are_mapped_and_sent_again(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, erp: Erp
) -> None:
    run_sync(options(), settings, store)
    touched = touch(erp[0], count=8, seed=3).document_nos
    valid = expected(settings)
    changed = touched & set(valid)
    assert changed

    rerun = run_sync(options(incremental=False), settings, store)

    assert rerun.counts["updated"] == len(changed)
    assert rerun.counts["unchanged_source"] == len(valid) - len(changed)
    stored = sandbox.state.invoices()
    assert {key for key in valid if stored[key].versions == 2} == changed
    assert all(r.acked_hash == valid[k].payload_hash for k, r in records(store, valid).items())
    assert_counts_add_up(rerun)


def test_a_changed_mapping_file_maps_every_invoice_again_and_resends_what_it_changes(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, tmp_path: Path
) -> None:
    valid = expected(settings)
    run_sync(options(), settings, store)
    changed = tmp_path / "mappings" / "sample_erp.yaml"
    changed.parent.mkdir()
    text = MAPPING.read_text(encoding="utf-8")
    assert "  invoice_number: supplier_invoice_no\n" in text
    changed.write_text(
        text.replace("invoice_number: supplier_invoice_no", "invoice_number: document_no")
    )

    rerun = run_sync(SyncOptions(changed, project_dir=REPO, incremental=False), settings, store)

    assert rerun.counts["unchanged_source"] == 0
    assert rerun.counts["updated"] == len(valid)
    assert {v.versions for v in sandbox.state.invoices().values()} == {2}
    again = run_sync(SyncOptions(changed, project_dir=REPO, incremental=False), settings, store)
    assert again.counts["unchanged_source"] == len(valid)
    assert again.counts["requests"] == 0


def test_a_description_only_change_of_the_mapping_maps_again_but_sends_nothing(
    sandbox: SandboxServer, settings: Settings, store: StagingStore, tmp_path: Path
) -> None:
    valid = expected(settings)
    run_sync(options(), settings, store)
    before = requests_sent(sandbox)
    changed = tmp_path / "mappings" / "sample_erp.yaml"
    changed.parent.mkdir()
    text = MAPPING.read_text(encoding="utf-8")
    changed.write_text(text.replace("description: Sample ERP", "description: The sample ERP"))

    rerun = run_sync(SyncOptions(changed, project_dir=REPO, incremental=False), settings, store)

    assert rerun.counts["unchanged_source"] == 0  # the mapping's identity changed: map again
    assert rerun.counts["unchanged"] == len(valid)  # ... to the same payloads: nothing sent
    assert requests_sent(sandbox) == before


def test_force_maps_and_resends_unchanged_sources(settings: Settings, store: StagingStore) -> None:
    valid = expected(settings)
    run_sync(options(), settings, store)

    forced = run_sync(options(force=True, incremental=False), settings, store)

    assert forced.counts["unchanged_source"] == 0
    assert forced.counts["updated"] == len(valid)


def test_staging_from_before_source_hashes_maps_once_then_skips(
    settings: Settings, store: StagingStore
) -> None:
    valid = expected(settings)
    run_sync(options(), settings, store)
    engine = sa.create_engine(settings.staging_database_url.get_secret_value())
    with engine.begin() as conn:  # as an upgraded database holds them: no source hash yet
        conn.execute(sa.update(invoices).values(source_hash=None))
    engine.dispose()

    upgraded = run_sync(options(incremental=False), settings, store)
    next_run = run_sync(options(incremental=False), settings, store)

    assert upgraded.counts["unchanged_source"] == 0
    assert upgraded.counts["unchanged"] == len(valid)
    assert upgraded.counts["requests"] == 0
    assert next_run.counts["unchanged_source"] == len(valid)


def test_a_dry_run_skips_unchanged_sources_and_writes_nothing(
    settings: Settings, store: StagingStore, erp: Erp
) -> None:
    run_sync(options(), settings, store)
    touched = touch(erp[0], count=8, seed=3).document_nos
    valid = expected(settings)
    changed = touched & set(valid)

    plan = run_sync(options(incremental=False, dry_run=True), settings, store)

    assert plan.counts["planned_update"] == len(changed)
    assert plan.counts["unchanged_source"] == len(valid) - len(changed)
    assert_counts_add_up(plan)
