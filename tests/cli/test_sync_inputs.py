"""``sync --since`` and ``--force`` as an operator types them: a date is parsed or refused (never
read as "everything" or "nothing"), and ``--force`` alone re-reads and resends everything."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pipeline.devkit.sample_erp import generate, invoice
from pipeline.devkit.sandbox import SandboxServer
from tests.reliability.operator import Project
from tests.reliability.world import REPO

MAPPING = "mappings/sample_erp.yaml"


def _erp_project(root: Path, base_url: str) -> tuple[Project, str]:
    url = f"sqlite:///{root / 'erp.db'}"
    project = Project.create(root, base_url, ERP_DATABASE_URL=url)
    generate(url, invoices=20, seed=3, dirty_share=0.0, erp_error_share=0.0)
    project.write(MAPPING, (REPO / MAPPING).read_bytes())
    for query in ("extract.sql", "status.sql"):  # the sync's read and the status read
        project.write(f"sql/sample_erp/{query}", (REPO / "sql/sample_erp" / query).read_bytes())
    return project, url


def _changed_on_or_after(url: str, moment: datetime) -> int:
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).where(invoice.c.updated_at >= moment)
        count = int(conn.execute(query).scalar_one())
    engine.dispose()
    return count


def _counts(stdout: str) -> dict[str, int]:
    counts: dict[str, int] = json.loads(stdout)["runs"][0]["counts"]
    return counts


@pytest.mark.parametrize("value", ["01.12.2024", "yesterday", "2024-13-01", ""])
def test_a_since_that_is_no_date_is_refused_naming_the_forms(
    tmp_path: Path, sandbox: SandboxServer, value: str
) -> None:
    project, _ = _erp_project(tmp_path / "p", sandbox.base_url)
    refused = project.run("sync", "-m", MAPPING, "--since", value)
    assert refused.code == 2, refused
    assert "--since" in refused.stderr
    assert "is not a date: give an ISO date (2024-12-01: that day on, UTC)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert sandbox.state.invoices() == {}


def test_since_a_date_reads_the_invoices_changed_that_day_on(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    project, url = _erp_project(tmp_path / "p", sandbox.base_url)
    expected = _changed_on_or_after(url, datetime(2024, 7, 1))
    assert 0 < expected < 20, "the sample spreads its changes over the year"
    done = project.run("sync", "-m", MAPPING, "--since", "2024-07-01", "--json")
    assert done.code == 0, done
    assert _counts(done.stdout)["extracted"] == expected
    assert len(sandbox.state.invoices()) == expected


def test_force_alone_rereads_and_resends_everything(tmp_path: Path, sandbox: SandboxServer) -> None:
    project, _ = _erp_project(tmp_path / "p", sandbox.base_url)
    first = project.run("sync", "-m", MAPPING, "--json")
    assert first.code == 0, first
    assert _counts(first.stdout)["created"] == 20
    again = project.run("sync", "-m", MAPPING, "--json")
    assert _counts(again.stdout).get("extracted", 0) == 0, "incremental: nothing changed"

    forced = project.run("sync", "-m", MAPPING, "--force", "--json")

    assert forced.code == 0, forced
    counts = _counts(forced.stdout)
    assert counts["extracted"] == 20, counts
    assert counts["updated"] == 20, counts
    assert len(sandbox.state.invoices()) == 20
