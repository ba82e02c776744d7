"""The operator's command line, ``appzen-etl`` (typer + rich).

Exit codes: 0 all good, 1 some rows failed, 2 configuration or credential error.
"""

from __future__ import annotations

import functools
import json
import logging
import subprocess
import sys
import webbrowser
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Literal, ParamSpec, TypeVar

import typer

from pipeline import ops
from pipeline.cli_render import (
    console,
    err_console,
    failures_table,
    progress_display,
    runs_table,
    summary_table,
)
from pipeline.errors import CONFIG_ERRORS
from pipeline.load.partition import partition_range
from pipeline.load.summary import RunSummary
from pipeline.load.sync import SyncOptions
from pipeline.mapping.engine import MappedInvoice
from pipeline.mapping.loader import load_mapping
from pipeline.redact import install_log_filter, scrub
from pipeline.settings import Settings, load_settings

EXIT_OK, EXIT_ROWS_FAILED, EXIT_CONFIG = 0, 1, 2

app = typer.Typer(
    name="appzen-etl",
    help="Move accounts-payable invoices from your ERP into AppZen and keep both sides in step.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
mapping_app = typer.Typer(help="Check mapping files.", no_args_is_help=True)
app.add_typer(mapping_app, name="mapping")

P = ParamSpec("P")
R = TypeVar("R")

MappingOpt = Annotated[
    Path, typer.Option("--mapping", "-m", help="Mapping file, e.g. mappings/sample_erp.yaml.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as JSON (automation).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Plan only: send and record nothing.")]


def operator_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a person must fix into one clear message and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CONFIG_ERRORS as error:
            err_console.print(f"[bold red]error:[/] {scrub(str(error))}", markup=True)
            raise typer.Exit(EXIT_CONFIG) from None

    return wrapper


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress at INFO.")] = False,
) -> None:
    """appzen-etl: extract invoices, map them, post them to AppZen, push ERP status back."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    install_log_filter()


def _settings() -> Settings:
    settings = load_settings()
    return settings


def _finish(summaries: dict[str, RunSummary], reports: dict[str, str], as_json: bool) -> None:
    """Print the summaries (table or JSON) and exit with the code they call for."""
    if as_json:
        document = {name: s.as_dict() for name, s in summaries.items()} | {"reports": reports}
        console.print_json(scrub(json.dumps(document)))
    else:
        for name, summary in summaries.items():
            console.print(summary_table(name, summary))
        for kind, path in reports.items():
            console.print(f"failed-row report ({kind}): {path}")
    if any(s.fatal for s in summaries.values()):
        fatal = next(s.fatal for s in summaries.values() if s.fatal)
        err_console.print(f"[bold red]stopped:[/] {scrub(fatal or '')}", markup=True)
        raise typer.Exit(EXIT_CONFIG)
    if any(s.failed for s in summaries.values()):
        raise typer.Exit(EXIT_ROWS_FAILED)


def _run_with_reports(
    options: SyncOptions, settings: Settings, *, status_sync: bool, as_json: bool
) -> None:
    store = ops.open_store(settings)
    with progress_display(enabled=not as_json) as show:
        summary = ops.run_sync(options, settings, store, on_progress=show)
    summaries = {options.flow: summary}
    if status_sync and not options.dry_run and not summary.fatal:
        summaries["status_sync"] = ops.run_status(options.mapping, settings, store)
    reports = ops.reports_for(store, summary, settings.reports_dir)
    paths = {"csv": str(reports.csv), "html": str(reports.html)} if reports else {}
    _finish(summaries, paths, as_json)


@app.command()
@operator_errors
def sync(
    mapping: MappingOpt,
    dry_run: DryRunOpt = False,
    force: Annotated[bool, typer.Option(help="Resend unchanged invoices too.")] = False,
    since: Annotated[str | None, typer.Option(help="Override the stored watermark.")] = None,
    status_sync: Annotated[bool, typer.Option(help="Push ERP statuses afterwards.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Nightly behaviour: extract what changed since the last run, post it, push statuses.

    Example: [bold]appzen-etl sync --mapping mappings/sample_erp.yaml[/] (add [bold]--dry-run[/]
    to see what would be created, updated, skipped or fail, sending nothing).
    """
    options = SyncOptions(mapping, flow="sync", since=since, force=force, dry_run=dry_run)
    _run_with_reports(options, _settings(), status_sync=status_sync, as_json=as_json)


@app.command()
@operator_errors
def backfill(
    mapping: MappingOpt,
    start: Annotated[date | None, typer.Option("--from", help="First day (inclusive).")] = None,
    end: Annotated[date | None, typer.Option("--to", help="Last day (inclusive).")] = None,
    partitions: Annotated[int, typer.Option(min=1, help="Date ranges, run in turn.")] = 1,
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Send historical invoices (header [bold]historical: true[/]) for a date range, resumably:
    a rerun skips what AppZen already acknowledged.

    Example:
    [bold]appzen-etl backfill -m mappings/sample_erp.yaml --from 2024-01-01 --to 2024-06-30[/]
    """
    settings = _settings()
    summaries: dict[str, RunSummary] = {}
    for index, (since, until) in enumerate(partition_range(start, end, partitions), start=1):
        options = SyncOptions(
            mapping,
            flow="backfill",
            historical=True,
            incremental=False,
            since=since,
            until=until,
            dry_run=dry_run,
            label=f"backfill-{index}",
        )
        store = ops.open_store(settings)
        with progress_display(enabled=not as_json) as show:
            summaries[f"backfill[{since or '…'}..{until or '…'}]"] = ops.run_sync(
                options, settings, store, on_progress=show
            )
    _finish(summaries, {}, as_json)


@app.command("retry-failed")
@operator_errors
def retry_failed(
    mapping: MappingOpt,
    run: Annotated[int | None, typer.Option("--run", help="Only this run's failures.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Resend only the invoices that failed, re-mapped from the source so fixed data is used.

    Example: fix the rows the report names in the ERP, then
    [bold]appzen-etl retry-failed -m mappings/sample_erp.yaml[/]
    """
    settings = _settings()
    store = ops.open_store(settings)
    summary = ops.run_retry_failed(SyncOptions(mapping), settings, store, run_id=run)
    reports = ops.reports_for(store, summary, settings.reports_dir)
    paths = {"csv": str(reports.csv), "html": str(reports.html)} if reports else {}
    _finish({"retry_failed": summary}, paths, as_json)


@app.command("status-sync")
@operator_errors
def status_sync(mapping: MappingOpt, dry_run: DryRunOpt = False, as_json: JsonOpt = False) -> None:
    """Push every changed ERP status (POSTED, PAID, … or the ERP's error) to AppZen.

    Example: [bold]appzen-etl status-sync --mapping mappings/sample_erp.yaml[/]
    """
    settings = _settings()
    summary = ops.run_status(mapping, settings, ops.open_store(settings), dry_run=dry_run)
    _finish({"status_sync": summary}, {}, as_json)


@app.command()
@operator_errors
def runs(limit: Annotated[int, typer.Option(min=1, help="How many.")] = 20) -> None:
    """List the latest runs with their counts.

    Example: [bold]appzen-etl runs --limit 5[/]
    """
    console.print(runs_table(ops.open_store(_settings()).list_runs(limit)))


@app.command()
@operator_errors
def report(
    run: Annotated[int | None, typer.Option("--run", help="Run id (default: latest).")] = None,
    fmt: Annotated[Literal["csv", "html"], typer.Option("--format")] = "html",
    open_it: Annotated[bool, typer.Option("--open", help="Open it in the browser.")] = False,
) -> None:
    """Write the failed-row report of a run and print its path.

    Example: [bold]appzen-etl report --format html --open[/]
    """
    settings = _settings()
    store = ops.open_store(settings)
    records = [store.get_run(run)] if run is not None else store.list_runs(1)
    record = records[0] if records else None
    if record is None:
        raise FileNotFoundError(f"no run {run} in staging" if run else "no runs in staging yet")
    summary = RunSummary(record.id, record.mapping, record.flow, record.historical, False)
    paths = ops.reports_for(store, summary, settings.reports_dir)
    assert paths is not None
    path = paths.csv if fmt == "csv" else paths.html
    console.print(str(path))
    if open_it:
        webbrowser.open(path.resolve().as_uri())


@app.command()
@operator_errors
def preview(
    mapping: MappingOpt,
    limit: Annotated[int, typer.Option(min=1, help="Invoices to print.")] = 10,
) -> None:
    """Print the AppZen JSON payloads a mapping produces, one per line; sends nothing.

    Example: [bold]appzen-etl preview -m mappings/flat_csv.yaml --limit 3[/]
    """
    spec = load_mapping(mapping)
    shown = failed = 0
    for result in ops.mapped_results(spec, _settings()):
        if isinstance(result, MappedInvoice):
            console.out(result.payload.decode(), highlight=False)
            shown += 1
        else:
            failed += 1
            for failure in result.failures:
                err_console.print(scrub(f"{failure.source_location}: {failure.message}"))
        if shown >= limit:
            break
    if failed:
        raise typer.Exit(EXIT_ROWS_FAILED)


@mapping_app.command("check")
@operator_errors
def mapping_check(
    file: Annotated[Path, typer.Argument(help="The mapping file.")],
    rows: Annotated[int, typer.Option(min=1, help="Invoices of the source to try.")] = 1000,
) -> None:
    """Validate a mapping file, then map the first invoices of its source and list the failures.

    Example: [bold]appzen-etl mapping check mappings/sample_erp.yaml[/]
    """
    spec = load_mapping(file)
    results = []
    for result in ops.mapped_results(spec, _settings()):
        results.append(result)
        if len(results) >= rows:
            break
    failures = [f for r in results if not isinstance(r, MappedInvoice) for f in r.failures]
    mapped = sum(isinstance(r, MappedInvoice) for r in results)
    console.print(f"{file}: valid; {mapped} of {len(results)} invoices mapped")
    if failures:
        console.print(failures_table(failures))
        raise typer.Exit(EXIT_ROWS_FAILED)


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
    from pipeline.sandbox.server import serve  # noqa: PLC0415 - uvicorn only when serving

    console.print(f"AppZen sandbox on http://{host}:{port}/dictionary-data-services (Ctrl-C stops)")
    serve(host=host, port=port, rate=rate, latency_ms=latency_ms, fail_rate=fail_rate)
