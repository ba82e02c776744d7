"""The job API: every job the CLI and the flows run, one module each, the same calls for both.

Each job is a plain async function taking the settings, an open staging store and typed options,
and returning what the run did (a :class:`~pipeline.summary.RunSummary` with its failed-row report
paths attached, or the verify report)::

    store.open_store(settings)                     the staging store (once, here)
    sync.run(settings, store, SyncOptions)         a nightly/incremental sync
    backfill.BackfillPlan → .partitions_of(parent) a date range cut into partitions
    backfill.parent_run(store, plan)               the backfill's own run record (the parent)
    backfill.run_partition(settings, store, part)  one partition (its run names the parent)
    backfill.partition_runs(store, parent)         the partitions' run records, by the parent id
    retry.scope(store, mapping, run_id) → .run()   resend the invoices that failed
    status.run(settings, store, StatusOptions)     push ERP status changes
    writeback.run(settings, store, options)        tell the ERP-side systems AppZen's outcomes
    verify.run(settings, store, VerifyOptions)     read a sample back (deprecated endpoint)
    preview.mapped_results(spec, settings)         map the source, send and record nothing
    runlog.end_lines(summary)                      the lines that close a run in a log (the
                                                   only place that formats them)
    reports.failed_invoices(store, run)            a run's failed invoices (number, supplier,
                                                   total), for artifacts

The CLI adds progress display, tables/JSON and exit codes; the flows add ``@flow``/``@task``
(``per_batch`` runs each batch as a task), task retries, artifacts and Prefect logging. The
package imports nothing itself, so ``pipeline.jobs.store`` stays as light as the staging store.
"""
