"""``make demo``: the nightly flow on the embedded default, start to finish, on this machine.

Sample ERP (SQLite, generated once; later runs change a few invoices as a day in the ERP would),
the local AppZen sandbox on a free loopback port, SQLite staging, and the ``nightly-sync`` flow in
Prefect's ephemeral mode. Prints the run summary, what AppZen answered, and the report path.
Then a few invoices are paid in the ERP (``erp_payment``: their ``updated_at`` does not move) and
the ``status-sync`` flow, on its own as its two-hourly deployment runs it, reads the ERP's
statuses (the mapping's ``status.source``) and tells AppZen they are PAID.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pipeline.devkit.sandbox.server import SandboxServer
    from pipeline.summary import RunSummary

STATE = Path(".state")
DEMO = STATE / "demo"
APPZEN_MEMORY = DEMO / "appzen.json"
"""What the sandbox holds at the end of a demo, given back to the next one: like the real AppZen
it remembers, so an invoice that changed in the ERP since is answered UPDATED, not CREATED."""


def _prepare_environment(base_url: str) -> None:
    os.environ.setdefault("PREFECT_HOME", str((STATE / "prefect").resolve()))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # The first start migrates a new Prefect database; on a busy 2-core machine that can take
    # longer than Prefect's 20 s default, which ends the demo with "Timed out … ephemeral server".
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ["APPZEN_BASE_URL"] = base_url
    os.environ["APPZEN_SANDBOX"] = "true"  # base_url is the sandbox just started: its logins apply
    os.environ["ERP_DATABASE_URL"] = f"sqlite:///{DEMO / 'erp.db'}"
    os.environ["STAGING_DATABASE_URL"] = f"sqlite:///{DEMO / 'staging.db'}"
    os.environ["REPORTS_DIR"] = str(DEMO / "reports")
    os.environ.setdefault("APPZEN_RATE_LIMIT", "100")  # the sandbox has no quota by default


def _seed_erp(console: Console) -> None:
    from pipeline.devkit.sample_erp import generate, touch  # noqa: PLC0415 - after the environment

    url = os.environ["ERP_DATABASE_URL"]
    if (DEMO / "erp.db").exists():
        touched = touch(url, count=15)
        console.print(f"sample ERP: {len(touched.document_nos)} invoices changed since last run")
        return
    report = generate(url, invoices=200)
    console.print(
        f"sample ERP: {report.invoices} invoices, {report.lines} lines, "
        f"{len(report.dirty)} deliberately dirty rows"
    )


def _answers(console: Console, mapping: str) -> None:
    from pipeline.jobs.store import open_store  # noqa: PLC0415
    from pipeline.settings import load_settings  # noqa: PLC0415

    store = open_store(load_settings())
    table = Table(title="what AppZen answered (a sample)")
    for column in ("invoice_id", "AppZen uuid", "status", "HTTP", "x-correlation-id"):
        table.add_column(column)
    for record in sorted(store.sample_sent(mapping, 5), key=lambda r: r.invoice_id):
        table.add_row(
            record.invoice_id,
            record.uuid or "",
            record.appzen_status or "",
            str(record.last_http_status or ""),
            record.correlation_id or "",
        )
    console.print(table)
    store.close()


def main() -> int:
    """Run the demo; the exit code says whether the flow completed."""
    console = Console(highlight=False)
    DEMO.mkdir(parents=True, exist_ok=True)
    from pipeline.devkit.sandbox.server import SandboxServer  # noqa: PLC0415

    with SandboxServer() as sandbox:
        _remember(sandbox)
        _prepare_environment(sandbox.base_url)
        _seed_erp(console)
        from flows.nightly import nightly_sync  # noqa: PLC0415 - Prefect reads the environment
        from pipeline.cli.render import summary_table  # noqa: PLC0415
        from pipeline.resources import shipped_path  # noqa: PLC0415
        from pipeline.summary import RunSummary  # noqa: PLC0415

        console.print(f"AppZen sandbox: {sandbox.base_url}; running the nightly-sync flow…")
        mapping = shipped_path("mappings", "sample_erp.yaml")  # in the checkout or the wheel
        result = asyncio.run(nightly_sync(mapping=str(mapping)))
        summaries = {name: RunSummary.from_dict(data) for name, data in result.items()}  # type: ignore[arg-type]
        for name, summary in summaries.items():
            console.print(summary_table(name, summary))
        _answers(console, "sample_erp")
        reports = summaries["sync"].reports
        if reports:
            console.print(
                f"failed-row report: {reports.get('html')} (CSV: {reports.get('csv')})",
                soft_wrap=True,  # a path stays on one line, to copy
            )
        console.print(f"the AppZen sandbox holds {len(sandbox.state.invoices())} invoices")
        _status_between_nightlies(console, str(mapping), sandbox)
        _keep(sandbox)
    _next_steps(console, summaries["sync"])
    return 0


def _remember(sandbox: SandboxServer) -> None:
    """Give the sandbox what it held at the end of the last demo (nothing the first time)."""
    from pipeline.devkit.sandbox.wire import loads_exact  # noqa: PLC0415

    if APPZEN_MEMORY.exists():
        sandbox.state.restore(loads_exact(APPZEN_MEMORY.read_bytes()))


def _command() -> str:
    """How to call ``appzen-etl`` from here: the virtualenv's script (``.venv/bin/appzen-etl``
    in a checkout), else the name on the PATH."""
    script = Path(sys.executable).with_name("appzen-etl")
    if not script.exists():
        return "appzen-etl"
    return os.path.relpath(script) if script.is_relative_to(Path.cwd()) else str(script)


def _keep(sandbox: SandboxServer) -> None:
    """Save what the sandbox holds now, for the next demo."""
    from pipeline.devkit.sandbox.wire import dumps_exact  # noqa: PLC0415

    APPZEN_MEMORY.write_bytes(dumps_exact(sandbox.state.snapshot()["invoices"]))


def _next_steps(console: Console, sync: RunSummary) -> None:
    """The commands that show what the demo did, run from this directory (the demo's staging
    is not the default one: its runs are seen with its ``STAGING_DATABASE_URL``)."""
    env = f"STAGING_DATABASE_URL={os.environ['STAGING_DATABASE_URL']}"
    env += f" REPORTS_DIR={os.environ['REPORTS_DIR']} {_command()}"
    lines = [
        "next, from this directory:",
        f"  {env} runs",
        f"  {env} failures list",
    ]
    if sync.run_id is not None:
        lines.append(f"  {env} report --run {sync.run_id}")
    lines.append("again (make demo): a few ERP invoices change, only those are sent (UPDATED)")
    console.print("\n".join(lines), soft_wrap=True)


def _status_between_nightlies(console: Console, mapping: str, sandbox: SandboxServer) -> None:
    """Pay a few invoices (their ``updated_at`` unmoved), run the status-sync flow alone, and
    show what AppZen was told."""
    from flows.status import status_sync  # noqa: PLC0415 - Prefect reads the environment
    from pipeline.cli.render import summary_table  # noqa: PLC0415
    from pipeline.devkit.sample_erp import pay  # noqa: PLC0415
    from pipeline.summary import RunSummary  # noqa: PLC0415

    paid = pay(os.environ["ERP_DATABASE_URL"], count=5)
    console.print(
        f"sample ERP: {len(paid.document_nos)} invoices paid (erp_payment; their updated_at "
        "unchanged, so no sync would see it); running the status-sync flow…"
    )
    before = len(sandbox.state.pushes())
    summary = RunSummary.from_dict(asyncio.run(status_sync(mapping=mapping)))
    console.print(summary_table("status-sync", summary))
    told = Table(title="what status-sync told AppZen")
    for column in ("invoice_id", "appzen_invoice_state", "invoice_status"):
        told.add_column(column)
    for push in sandbox.state.pushes()[before:]:
        body = push.body
        told.add_row(push.invoice_id, body.get("appzen_invoice_state"), body.get("invoice_status"))
    console.print(told)


if __name__ == "__main__":
    sys.exit(main())
