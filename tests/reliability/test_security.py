"""Security promises, end to end: TLS verification is on unless explicitly and loudly turned off;
SQL takes hostile values only as bound parameters (a ``--since`` or an invoice key cannot inject,
on every database); the sandbox listens on loopback unless told otherwise."""

from __future__ import annotations

import ast
import inspect
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipeline.cli.commands import sandbox as sandbox_command
from pipeline.devkit.sample_erp import generate, invoice
from pipeline.devkit.sandbox import SandboxServer, serve
from pipeline.settings import load_settings
from tests.cli.support import invoice_row
from tests.databases import DIALECTS, empty_database
from tests.reliability.hostile_cases import export, rows
from tests.reliability.operator import EXPORT, MAPPING, Project
from tests.reliability.tls import https_sandbox
from tests.reliability.world import REPO

pytestmark = pytest.mark.reliability


# --- TLS -----------------------------------------------------------------------------------------
def test_tls_verification_is_on_by_default_and_an_unverifiable_endpoint_stops_the_run(
    tmp_path: Path,
) -> None:
    with https_sandbox(tmp_path) as (base_url, appzen):
        assert load_settings(appzen_base_url=base_url).appzen_verify_tls is True
        project = Project.create(tmp_path / "p", base_url)
        project.write(EXPORT, export(invoice_row("INV-1")))

        outcome = project.run("sync", "-m", MAPPING)

        assert outcome.code == 2, outcome
        assert outcome.crashed is None
        assert outcome.stderr.splitlines() == [
            "stopped: cannot verify the TLS certificate of 127.0.0.1 ([SSL: "
            "CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate "
            "(_ssl.c:1006)): fix the server's certificate chain or this machine's CA store; "
            "APPZEN_VERIFY_TLS=false is for a test endpoint only"
        ]
        assert appzen.response_counts() == {}, "no request got through the handshake"
        with project.store() as store:
            assert [run.status for run in store.list_runs()] == ["failed"]
            assert store.count_by_state("flat_csv") == {"pending": 1}


def test_turning_tls_verification_off_is_explicit_and_logged_loudly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with https_sandbox(tmp_path) as (base_url, appzen):
        project = Project.create(tmp_path / "p", base_url)
        project.write(EXPORT, export(invoice_row("INV-1")))

        with caplog.at_level(logging.WARNING):
            outcome = project.run("sync", "-m", MAPPING, env={"APPZEN_VERIFY_TLS": "false"})

        assert outcome.code == 0, outcome
        assert set(appzen.invoices()) == {"INV-1"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    loud = (
        f"TLS certificate verification is OFF for {base_url} (APPZEN_VERIFY_TLS=false): use this "
        "only against a test endpoint"
    )
    assert loud in warnings, warnings


# --- SQL with bound parameters only ---------------------------------------------------------------
@pytest.fixture(params=DIALECTS)
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each dialect (SQLite, PostgreSQL, MariaDB)."""
    with empty_database(request.param, tmp_path, "reliability") as url:
        yield url


def erp_project(root: Path, base_url: str, erp_url: str) -> Project:
    """The sample ERP mapping on a 20-invoice ERP at ``erp_url``."""
    project = Project.create(root, base_url, ERP_DATABASE_URL=erp_url)
    generate(erp_url, invoices=20, seed=3, dirty_share=0.0)
    project.write("mappings/sample_erp.yaml", (REPO / "mappings" / "sample_erp.yaml").read_bytes())
    for query in ("extract.sql", "status.sql"):  # the sync's query and the status read's
        project.write(f"sql/sample_erp/{query}", (REPO / "sql/sample_erp" / query).read_bytes())
    return project


def erp_invoices(url: str) -> int:
    """How many invoices the ERP table holds (it still exists)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(invoice)).scalar_one())
    finally:
        engine.dispose()


WIDENING = "2999-12-31' OR '1'='1"
"""Spliced into ``updated_at > '...'``, this would select every row; bound, it selects none (or
is refused as a timestamp)."""
DROPPING = "2000-01-01'; DROP TABLE erp_invoice; --"


def test_a_hostile_since_value_is_refused_before_any_sql(
    any_database: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    """``--since`` is parsed as a date before anything runs: a hostile text never reaches the
    database (where it would be a bound parameter anyway), on every database alike."""
    project = erp_project(tmp_path / "p", sandbox.base_url, any_database)

    widening = project.run("sync", "-m", "mappings/sample_erp.yaml", "--since", WIDENING, "--json")
    dropping = project.run("sync", "-m", "mappings/sample_erp.yaml", "--since", DROPPING)

    assert erp_invoices(any_database) == 20, "the ERP table is intact"
    for refused in (widening, dropping):
        assert refused.crashed is None, refused.crashed
        assert "Traceback" not in refused.stderr
        assert refused.code == 2, refused
        assert "--since" in refused.stderr, refused
        assert "is not a date" in refused.stderr, refused
    assert sandbox.state.invoices() == {}


HOSTILE_KEYS = (
    "'; DROP TABLE invoices; --",
    'Robert"); DROP TABLE runs;--',
    "50%_off\\' OR 1=1 #",
    "ключ/🧾/\u202eKEY",
)


def test_hostile_invoice_keys_flow_through_staging_intact(
    any_database: str, sandbox: SandboxServer, tmp_path: Path
) -> None:
    project = Project.create(tmp_path / "p", sandbox.base_url, STAGING_DATABASE_URL=any_database)
    broken = invoice_row(HOSTILE_KEYS[0], net_total="not a number")
    project.write_rows([broken, *(invoice_row(key) for key in HOSTILE_KEYS[1:])])

    first = project.run("sync", "-m", MAPPING)
    project.write(EXPORT, rows(*(invoice_row(key, status="PAID") for key in HOSTILE_KEYS))[EXPORT])
    retried = project.run("retry-failed", "-m", MAPPING)
    resynced = project.run("sync", "-m", MAPPING)

    assert (first.code, retried.code, resynced.code) == (1, 0, 0), (first, retried, resynced)
    stored = sandbox.state.invoices()
    assert set(stored) == set(HOSTILE_KEYS)
    with project.store() as store:
        for key in HOSTILE_KEYS:
            record = store.get_invoice("flat_csv", key)
            assert record is not None, key
            assert (record.invoice_id, record.state, record.uuid) == (key, "sent", stored[key].uuid)
            assert record.pushed_status == "PAID", key
        failures = store.failures_for_run(1)
        assert [f.failure.source_key for f in failures] == [HOSTILE_KEYS[0]]
        assert [run.status for run in store.list_runs()] == ["succeeded"] * 5
    pushed = {(push.invoice_id, push.body["invoice_status"]) for push in sandbox.state.pushes()}
    assert {(key, "PAID") for key in HOSTILE_KEYS} <= pushed


SPLICED_SQL_ALLOWED = {
    ("pipeline/extract/sql.py", "columns"),  # the query file is configuration, not data
    ("pipeline/staging/migrations.py", "_migration_lock"),  # SQL function calls, no values
    ("pipeline/staging/reads.py", "acked_sources"),  # only placeholders spliced; keys are bound
}


def test_no_sql_is_built_from_strings_outside_a_reviewed_few() -> None:
    """Every f-string, ``%`` or ``.format`` handed to ``text``/``exec_driver_sql``/``execute`` (or
    stored first in a variable named ``*sql*``, ``*query*``, ``*probe*``, ``*statement*``) is
    listed in :data:`SPLICED_SQL_ALLOWED`; values travel as bound parameters everywhere else."""
    found = set()
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef) and _splices(function):
                found.add((path.relative_to(REPO).as_posix(), function.name))
    assert found == SPLICED_SQL_ALLOWED


def _splices(function: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    sql_names = ("sql", "query", "probe", "statement")
    for node in ast.walk(function):
        if isinstance(node, ast.Call) and _sql_call(node) and any(map(_built, node.args)):
            return True
        if isinstance(node, ast.Assign) and _built(node.value):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if any(word in target.lower() for target in targets for word in sql_names):
                return True
    return False


def _sql_call(node: ast.Call) -> bool:
    callee = node.func
    name = callee.attr if isinstance(callee, ast.Attribute) else getattr(callee, "id", "")
    return name in {"text", "exec_driver_sql", "execute", "executescript"}


def _built(node: ast.expr) -> bool:
    """An f-string with a placeholder, ``"..." % x`` or ``"...".format(...)``."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.FormattedValue) for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
    )


# --- the sandbox listens on loopback -----------------------------------------------------------
def listening_addresses(port: int) -> set[str]:
    """The local IPv4 addresses of the sockets listening on ``port`` (Linux /proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_the_sandbox_binds_to_loopback_by_default() -> None:
    assert inspect.signature(SandboxServer).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    assert inspect.signature(sandbox_command).parameters["host"].default == "127.0.0.1"
    with SandboxServer() as running:
        assert listening_addresses(running.port) == {"127.0.0.1"}
        assert running.base_url.startswith("http://127.0.0.1:")
