"""The operator's command line, ``appzen-etl`` (typer + rich).

Exit codes: 0 all good, 1 some rows failed, 2 configuration or credential error, or a source
that cannot be read (one line on stderr naming what and where, never a traceback; a run is
recorded ``failed`` with that line), 3 AppZen unreachable (the circuit breaker
stopped the run; the invoices stay pending), 130 interrupted (Ctrl-C), 143 stopped cleanly by
SIGTERM (the run is recorded ``cancelled``). The pipeline (pandas,
SQLAlchemy, httpx) is imported inside the commands, so ``--help`` answers at once.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import subprocess
import sys
import webbrowser
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from pipeline.cli import render
from pipeline.cli import runs as runner
from pipeline.cli.failures import failures_app
from pipeline.cli.render import console
from pipeline.cli.runs import (
    EXIT_CONFIG,
    EXIT_ROWS_FAILED,
    OptionError,
    Runs,
    operator_errors,
)
from pipeline.cli.runs import load_operator_settings as _settings
from pipeline.cli.runs import open_store as _store
from pipeline.redact import install_log_filter

if TYPE_CHECKING:
    from rich.table import Table

    from pipeline.reconcile import ReconcileReport

app = typer.Typer(
    name="appzen-etl",
    help="Move accounts-payable invoices from your ERP into AppZen and keep both sides in step."
    "\n\nExample: [bold]appzen-etl sync --mapping mappings/sample_erp.yaml[/]",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
mapping_app = typer.Typer(
    help="Check mapping files, or draft one for your ERP.\n\n"
    "Example: [bold]appzen-etl mapping check mappings/x.yaml[/]",
    no_args_is_help=True,
)
app.add_typer(mapping_app, name="mapping")
app.add_typer(failures_app, name="failures")

MappingOpt = Annotated[
    Path,
    typer.Option(
        "--mapping",
        "-m",
        help="Mapping file, e.g. mappings/sample_erp.yaml, or a name found in "
        "APPZEN_MAPPINGS_DIR or among the shipped mappings, e.g. sample_erp.",
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (automation).")
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Plan only: send and record nothing.")]


@app.callback()
def main(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="-v: a progress line per batch and the pipeline's INFO messages; -vv: also one "
            "DEBUG line per AppZen request (method, path, status, time, x-correlation-id; never "
            "a header or body).",
        ),
    ] = 0,
) -> None:
    """appzen-etl: extract invoices, map them, post them to AppZen, push ERP status back.

    Off a terminal (cron, a pipe), runs log a progress line every PROGRESS_INTERVAL seconds
    (default 30) and their end lines on stderr.

    Example: [bold]appzen-etl sync --mapping mappings/sample_erp.yaml[/]
    """
    configure_logging(verbose)


def configure_logging(verbose: int) -> None:
    """Log lines on stderr, secrets scrubbed: WARNING and up, the runs' progress and end lines
    (INFO) always; ``-v`` the pipeline's INFO and a line per batch; ``-vv`` DEBUG of the
    pipeline (one line per AppZen request). HTTP libraries stay at WARNING (their lines could
    carry what the pipeline's own never do)."""
    from pipeline.jobs.runlog import LOGGER  # noqa: PLC0415

    render.VERBOSITY = verbose
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger(LOGGER).setLevel(logging.INFO)
    logging.getLogger("pipeline").setLevel(logging.DEBUG if verbose > 1 else logging.NOTSET)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    install_log_filter()


def _since_option(value: str | None) -> str | None:
    """``--since`` parsed into the bound a run binds, or refused naming the forms it takes."""
    from pipeline.load.partition import since_bound  # noqa: PLC0415

    try:
        return None if value is None else since_bound(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@app.command()
@operator_errors
def sync(
    mapping: MappingOpt,
    dry_run: DryRunOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            help="Resend every invoice read, changed or not: those changed since --since, or, "
            "without --since, all of them (a full re-extract, ignoring the stored watermark)."
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            help="Read changes at or after this instead of the stored watermark: an ISO date "
            "(2024-12-01, that day on, UTC) or date and time (2024-12-01T08:00, UTC unless it "
            "names its zone).",
            callback=_since_option,
        ),
    ] = None,
    status_sync: Annotated[bool, typer.Option(help="Push ERP statuses afterwards.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Nightly behaviour: send what changed since the last run, then push ERP statuses.

    Writes the failed-row report (CSV + HTML) of each run and prints their paths.

    Example: [bold]appzen-etl sync --mapping mappings/sample_erp.yaml[/] (add [bold]--dry-run[/]
    to see what would be created, updated, skipped or fail, sending nothing).
    """
    settings = _settings()
    store = _store(settings)
    if not dry_run:
        settings = runner.share_quota(settings)
    from pipeline.load.sync import SyncOptions  # noqa: PLC0415 - heavy: after the cheap checks

    options = SyncOptions(mapping, flow="sync", since=since, force=force, dry_run=dry_run)
    runs: Runs = [("sync", runner.sync_run(options, settings, store))]
    if status_sync and not runs[0][1].fatal:
        runs.append(("status_sync", runner.status_run(mapping, settings, store, dry_run)))
    runner.finish("sync", runs, as_json)


@app.command()
@operator_errors
def backfill(
    mapping: MappingOpt,
    start: Annotated[date | None, typer.Option("--from", help="First day (inclusive).")] = None,
    end: Annotated[date | None, typer.Option("--to", help="Last day (inclusive).")] = None,
    partitions: Annotated[int, typer.Option(min=1, help="Date ranges, run in turn.")] = 1,
    dry_run: DryRunOpt = False,
    plan_only: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Show the invoices in range, the requests needed, the AppZen budget per day, "
            "the days needed and an ETA; send and record nothing.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Send historical invoices (header [bold]historical: true[/]) updated in a date range.

    Resumable: a rerun skips what AppZen already acknowledged. Each partition is a run with its
    own failed-row report. The range binds the SQL query's :since and :until (a CSV or JSON
    source has no date filter: leave --from/--to out). A backfill stopped by the daily AppZen
    budget (exit code 5) goes on when rerun the next AppZen day; --plan says how many days.

    Example:
    [bold]appzen-etl backfill -m mappings/sample_erp.yaml --from 2024-01-01 --to 2024-06-30[/]
    """
    settings = _settings()
    runner.check_backfill_range(mapping, start, end)
    store = _store(settings)
    from pipeline.jobs.backfill import BackfillPlan  # noqa: PLC0415 - heavy: after the checks

    plan = BackfillPlan(mapping, start, end, partitions, dry_run=dry_run)
    if plan_only:
        runner.backfill_plan(plan, settings, store, as_json)
        return
    if not dry_run:
        settings = runner.share_quota(settings)
    runs = runner.backfill_runs(plan, settings, store)
    runner.finish("backfill", runs, as_json)


@app.command("retry-failed")
@operator_errors
def retry_failed(
    mapping: MappingOpt,
    run: Annotated[
        int | None, typer.Option("--run", help="Retry this run's failures (default: latest).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Resend only the invoices that failed, re-mapped from the source so fixed data is used.

    Without --run: every open failure of the ledger (`appzen-etl failures list`), re-read from
    the whole source, so a fix that did not move the watermark column is found too; those no
    longer in the source close as gone; dismissed ones are left alone. With --run: the
    invoices that failed in that run. Unchanged invoices are not resent.

    Example: fix the rows the report names in the ERP, then
    [bold]appzen-etl retry-failed -m mappings/sample_erp.yaml[/]
    """
    settings = _settings()
    store = _store(settings)
    runner.require_run(store, run, "retry-failed")
    from pipeline.jobs import retry as retry_job  # noqa: PLC0415 - heavy: after the cheap checks

    scope = retry_job.scope(store, mapping, run)
    if not scope.keys:
        runner.nothing_to_retry(scope.name, run, as_json)
        return
    summary = runner.retry_run(scope, runner.share_quota(settings), store)
    runner.finish("retry-failed", [("retry_failed", summary)], as_json)


@app.command("status-sync")
@operator_errors
def status_sync(mapping: MappingOpt, dry_run: DryRunOpt = False, as_json: JsonOpt = False) -> None:
    """Push every changed ERP status (POSTED, PAID, … or the ERP's error) to AppZen.

    Example: [bold]appzen-etl status-sync --mapping mappings/sample_erp.yaml[/]
    """
    settings = _settings()
    store = _store(settings)
    if not dry_run:
        settings = runner.share_quota(settings)
    summary = runner.status_run(mapping, settings, store, dry_run)
    runner.finish("status-sync", [("status_sync", summary)], as_json)


@app.command()
@operator_errors
def writeback(
    connectors: Annotated[
        Path, typer.Option("--connectors", "-c", help="Connectors file (mappings/CONNECTORS.md).")
    ] = Path("mappings/connectors.yaml"),
    outcomes: Annotated[
        Path | None, typer.Option("--outcomes", help="Import an exported outcomes CSV first.")
    ] = None,
    poll: Annotated[bool, typer.Option(help="Poll AppZen for audit outcomes.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Tell the ERP-side systems AppZen's outcomes: the AppZen uuid and state in each merchant
    invoice's note, and a CRM.COM rejection (while DRAFT) for each invoice AppZen rejected.

    Example: [bold]appzen-etl writeback[/] or
    [bold]appzen-etl writeback --outcomes exports/outcomes.csv --no-poll[/]
    """
    import asyncio  # noqa: PLC0415

    from pipeline.jobs import writeback as writeback_job  # noqa: PLC0415
    from pipeline.writeback import WritebackOptions  # noqa: PLC0415

    settings = _settings()
    store = _store(settings)
    if poll:
        settings = runner.share_quota(settings)
    options = WritebackOptions(connectors, outcomes_file=outcomes, poll=poll)
    with render.activity("writeback: reading AppZen outcomes, telling the ERP-side systems…"):
        summary = asyncio.run(writeback_job.run(settings, store, options))
    runner.finish("writeback", [("writeback", summary)], as_json)


@app.command()
@operator_errors
def verify(
    mapping: MappingOpt,
    sample: Annotated[int, typer.Option("--sample", "-n", min=1, help="Invoices to check.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Read a random sample of sent invoices back from AppZen and list every field that differs
    from what was sent (exit 1 when any differs, is missing in AppZen or cannot be read). Uses
    AppZen's [bold]deprecated[/] get-details endpoint; nothing else calls it.

    Example: [bold]appzen-etl verify -m mappings/sample_erp.yaml --sample 50[/]
    """
    import asyncio  # noqa: PLC0415

    from pipeline import reconcile  # noqa: PLC0415
    from pipeline.jobs import verify as verify_job  # noqa: PLC0415
    from pipeline.mapping.loader import load_mapping  # noqa: PLC0415
    from pipeline.redact import scrub  # noqa: PLC0415

    render.error(reconcile.DEPRECATION_NOTE, prefix="note")
    load_mapping(mapping)  # a broken mapping is named before settings and staging are opened
    settings = runner.share_quota(_settings())
    options = verify_job.VerifyOptions(mapping, sample)
    found = asyncio.run(verify_job.run(settings, _store(settings), options))
    if as_json:
        console.out(scrub(found.to_json().decode()), highlight=False)
    else:
        console.print(_drift_table(found))
    if found.fatal:
        render.error(found.fatal, prefix="stopped")
        raise typer.Exit(EXIT_CONFIG)
    if found.drifted:
        raise typer.Exit(EXIT_ROWS_FAILED)


def _drift_table(found: ReconcileReport) -> Table:
    """Every drift, one line each; the title says how many invoices were read and differ."""
    from rich.table import Table  # noqa: PLC0415
    from rich.text import Text  # noqa: PLC0415

    from pipeline.redact import scrub  # noqa: PLC0415

    table = Table(
        title=f"verify · {found.mapping} · {found.checked} of {found.sampled} read back · "
        f"{found.count('differs')} fields differ · {found.count('missing')} missing in AppZen · "
        f"{found.count('unreadable')} unreadable"
    )
    for column in ("invoice_id", "uuid", "field", "sent", "AppZen"):
        table.add_column(column, overflow="fold")
    for row in found.rows():
        table.add_row(*(Text(scrub(text)) for text in row))  # values are data, not markup
    return table


@app.command()
@operator_errors
def runs(
    limit: Annotated[int, typer.Option(min=1, help="How many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """List the latest runs with their counts (extracted, sent, skipped, failed), and today's
    use of the AppZen daily budget. A run whose owner is gone (its process died) is marked
    crashed first, never shown as running.

    Example: [bold]appzen-etl runs --limit 5[/]
    """
    settings = _settings()
    store = _store(settings)
    store.reap_dead_runs()
    records = store.list_runs(limit)
    usage = store.budget_usage(settings)
    if as_json:
        render.print_json(
            {
                "runs": [render.run_json(record) for record in records],
                "budget": usage.as_dict(),
            }
        )
    else:
        console.print(render.runs_table(records))
        console.out(render.budget_line(usage), highlight=False)


@app.command()
@operator_errors
def report(
    run: Annotated[
        int | None, typer.Option("--run", help="Run id (default: the latest sync/backfill/retry).")
    ] = None,
    fmt: Annotated[Literal["csv", "html"], typer.Option("--format")] = "html",
    open_it: Annotated[bool, typer.Option("--open", help="Open it in the browser.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write the failed-row report (CSV and HTML) of a run again and print its path.

    Example: [bold]appzen-etl report --run 12 --format csv[/] or
    [bold]appzen-etl report --open[/]
    """
    settings = _settings()
    store = _store(settings)
    record = runner.require_run(store, run, "report") or runner.latest_run(store)
    record = record or runner.latest_run(store, flows=("status_sync",))
    if record is None:
        raise OptionError("report: no runs in staging yet; run `appzen-etl sync` first")
    from pipeline.jobs.reports import write_run_reports  # noqa: PLC0415

    failures = store.failures_for_run(record.id)
    paths = write_run_reports(store, record, settings.reports_dir)
    path = (paths.csv if fmt == "csv" else paths.html).resolve()
    if as_json:
        render.print_json(
            render.run_json(record)
            | {
                "failed_rows": len(failures),
                "csv": str(paths.csv.resolve()),
                "html": str(paths.html.resolve()),
            }
        )
    else:
        console.out(str(path), highlight=False)
    if open_it:
        webbrowser.open(path.as_uri())


@app.command()
@operator_errors
def preview(
    mapping: MappingOpt,
    limit: Annotated[int, typer.Option(min=1, help="Invoices to print.")] = 10,
) -> None:
    """Print the AppZen JSON payloads a mapping produces, one per line; sends nothing.

    Rows that fail are listed on stderr (exit code 1), and the warnings of pre-flight checks
    (the invoice would be sent) as ``warning: …``.

    Example: [bold]appzen-etl preview -m mappings/flat_csv.yaml --limit 3[/]
    """
    from pipeline.jobs.preview import mapped_results  # noqa: PLC0415
    from pipeline.mapping.engine import MappedInvoice  # noqa: PLC0415
    from pipeline.mapping.loader import load_mapping  # noqa: PLC0415
    from pipeline.report.cells import visible  # noqa: PLC0415

    spec = load_mapping(mapping)
    shown = failed = 0
    # closing(): stopping early closes the source (its database connection) at once
    with contextlib.closing(mapped_results(spec, _settings())) as results:
        for result in results:
            if isinstance(result, MappedInvoice):
                console.out(result.payload.decode(), highlight=False)
                shown += 1
                for warning in result.warnings:  # sent anyway: a pre-flight check's warning
                    where = f"{warning.source_location}: {warning.message} ({warning.rule})"
                    render.error(visible(where), prefix="warning")
            else:
                failed += 1
                for failure in result.failures:
                    where = f"{failure.source_location}: {failure.message}"
                    render.error(visible(where), prefix="failed")  # data: controls shown
            if shown >= limit:
                break
    if failed:
        raise typer.Exit(EXIT_ROWS_FAILED)


@mapping_app.command("check")
@operator_errors
def mapping_check(
    file: Annotated[Path, typer.Argument(help="The mapping file.")],
    rows: Annotated[int, typer.Option(min=1, help="Invoices of the source to try.")] = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Validate a mapping file, then map the first invoices of its source and list the failures
    (pre-flight check errors among them) and the check warnings.

    A query is also run (one row read) with :since bound as an incremental run binds it and
    with :since and :until as a backfill window does, so a query that fails only then fails now.

    Example: [bold]appzen-etl mapping check mappings/sample_erp.yaml[/]
    """
    from pipeline.jobs.preview import mapped_results, query_rounds  # noqa: PLC0415
    from pipeline.mapping.engine import MappedInvoice  # noqa: PLC0415
    from pipeline.mapping.loader import load_mapping  # noqa: PLC0415

    spec = load_mapping(file)
    settings = _settings()
    with contextlib.closing(mapped_results(spec, settings)) as stream:
        results = list(itertools.islice(stream, rows))
    marks = (r.watermark for r in results if isinstance(r, MappedInvoice))
    rounds = query_rounds(spec, settings, sample=next((m for m in marks if m is not None), None))
    failures = [f for r in results if not isinstance(r, MappedInvoice) for f in r.failures]
    warnings = [w for r in results if isinstance(r, MappedInvoice) for w in r.warnings]
    mapped = sum(isinstance(r, MappedInvoice) for r in results)
    if as_json:
        render.print_json(
            {
                "file": str(file),
                "mapping": spec.name,
                "valid": True,
                "invoices": len(results),
                "mapped": mapped,
                "query_rounds": rounds,
                "failures": [render.failure_json(f) for f in failures[:1000]],
                "warnings": [render.failure_json(w) for w in warnings[:1000]],
            }
        )
    else:
        console.out(f"{file}: valid; {mapped} of {len(results)} invoices mapped", highlight=False)
        for name in rounds:
            console.out(f"query runs as {name}", highlight=False)
        if failures:
            console.print(render.failures_table(failures))
        if warnings:
            console.print(render.failures_table(warnings, title="check warnings (sent anyway)"))
    if failures:
        raise typer.Exit(EXIT_ROWS_FAILED)


@mapping_app.command("init")
@operator_errors
def mapping_init(
    from_db: Annotated[
        str | None,
        typer.Option("--from-db", help="Database URL (default: the ERP_DATABASE_URL setting)."),
    ] = None,
    schema: Annotated[str | None, typer.Option(help="Schema holding the tables.")] = None,
    tables: Annotated[
        list[str] | None, typer.Option(help="Only these tables (comma-separated or repeated).")
    ] = None,
    from_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--from-file", help="A CSV or JSON export (twice: a header and a lines file)."
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Folder of the draft; its parent is the project.")
    ] = Path("mappings"),
    name: Annotated[
        str | None, typer.Option(help="Draft name (default: template or source).")
    ] = None,
    no_template: Annotated[
        bool, typer.Option("--no-template", help="Match columns even when a template fits.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Overwrite the draft's files if they exist.")] = False,
) -> None:
    """Write a draft mapping (and query) for a database or an export: an ERP template when the
    source is one, else its columns matched to AppZen fields; every required field it could not
    find is marked TODO(mapping init) for you to fill in, then run mapping check.

    Example: [bold]appzen-etl mapping init --from-file exports/ap.csv --out mappings[/]
    """
    from pipeline import scaffold  # noqa: PLC0415

    if from_db and from_file:
        raise OptionError("give --from-db or --from-file, not both")
    wanted = [part.strip() for item in tables or [] for part in item.split(",") if part.strip()]
    if from_file:
        draft = scaffold.from_files(from_file, out, name=name, use_templates=not no_template)
    else:
        url = from_db
        if url is None:
            erp = _settings().erp_database_url
            if erp is None:
                raise OptionError(
                    "give --from-db URL or --from-file PATH (or set ERP_DATABASE_URL)"
                )
            url = erp.get_secret_value()
        draft = scaffold.from_database(
            url, out, name=name, schema=schema, tables=wanted, use_templates=not no_template
        )
    written = scaffold.write(draft, force=force)
    for line in scaffold.described(draft, written):
        console.out(line, highlight=False)


@app.command()
def demo() -> None:
    """Run the nightly flow on the embedded default: sample ERP, local sandbox, SQLite staging.

    Example: [bold]appzen-etl demo[/] (the same as [bold]make demo[/])
    """
    # flows/ orchestrates pipeline/, never the other way round: run it as its own process.
    code = subprocess.call([sys.executable, "-m", "flows.demo"])
    raise typer.Exit(code)


@app.command()
@operator_errors
def sandbox(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    host: Annotated[str, typer.Option(help="Interface; loopback by default.")] = "127.0.0.1",
    rate: Annotated[float | None, typer.Option(help="Quota in requests/s (429 above).")] = None,
    latency_ms: Annotated[float, typer.Option(help="Delay before each answer.")] = 0.0,
    fail_rate: Annotated[float, typer.Option(help="Share of requests answered 500.")] = 0.0,
) -> None:
    """Run the local AppZen sandbox (create-or-update, get-details, status-sync) in the foreground.

    Example: [bold]appzen-etl sandbox --port 8765 --rate 50 --latency-ms 100[/]
    """
    from pipeline.devkit.sandbox.server import serve  # noqa: PLC0415 - uvicorn only when serving

    url = f"http://{host}:{port}/dictionary-data-services"
    console.out(f"AppZen sandbox on {url} (Ctrl-C stops)", highlight=False)
    console.out(
        f"use it with: APPZEN_BASE_URL={url} APPZEN_SANDBOX=true (its own credentials apply)",
        highlight=False,
    )
    serve(host=host, port=port, rate=rate, latency_ms=latency_ms, fail_rate=fail_rate)


if __name__ == "__main__":
    app()
