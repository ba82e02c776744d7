"""``appzen-etl status-sync`` on its own, as an operator runs it between nightlies (#17): the
shipped sample-ERP mapping's status read sees a payment (``updated_at`` unmoved) and a status
step (``updated_at`` moved), each pushed exactly once; a rerun pushes nothing. ERP and staging
in SQLite, PostgreSQL and MariaDB; the sandbox over loopback HTTP."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.devkit.sample_erp import generate, pay, touch
from pipeline.devkit.sandbox import SandboxServer
from tests.cli.support import REPO, Project, Result
from tests.databases import DIALECTS, empty_database
from tests.flows.helpers import updated_at

MAPPING = "mappings/sample_erp.yaml"


@pytest.fixture(params=DIALECTS)
def project(
    request: pytest.FixtureRequest, sandbox: SandboxServer, tmp_path: Path
) -> Iterator[Project]:
    """A project with the shipped sample-ERP mapping and queries; ERP and staging databases of
    the parametrized dialect."""
    root = tmp_path / "project"
    (root / "mappings").mkdir(parents=True)
    shutil.copy(REPO / MAPPING, root / MAPPING)
    shutil.copytree(REPO / "sql" / "sample_erp", root / "sql" / "sample_erp")
    with (
        empty_database(request.param, tmp_path, "erp") as erp_url,
        empty_database(request.param, tmp_path, "staging") as staging_url,
    ):
        generate(erp_url, invoices=40, seed=9)
        yield Project.create(
            root, sandbox.base_url, ERP_DATABASE_URL=erp_url, STAGING_DATABASE_URL=staging_url
        )


def _pushed(result: Result) -> int:
    assert result.code == 0, result
    [run] = result.json()["runs"]
    assert run["status"] == "succeeded", result
    return int(run["counts"].get("pushed", 0)) + int(run["counts"].get("pushed_error", 0))


def test_a_standalone_status_sync_pushes_quiet_and_loud_changes_once(
    project: Project, sandbox: SandboxServer
) -> None:
    erp_url = project.env["ERP_DATABASE_URL"]
    synced = project.run("sync", "-m", MAPPING, "--no-status-sync")
    assert synced.code in (0, 1), synced  # 1: the sample ERP's dirty rows failed
    told = _pushed(project.run("status-sync", "-m", MAPPING, "--json"))
    assert told == len(sandbox.state.pushes()) > 0
    before = updated_at(erp_url)
    paid = pay(erp_url, count=2).document_nos
    assert updated_at(erp_url) == before, "a payment leaves updated_at"
    stepped = {
        change.document_no: change.after
        for change in touch(erp_url, count=4, seed=2).touched
        if change.change == "status"
    }
    sent = {push.invoice_id for push in sandbox.state.pushes()}  # acknowledged ones
    loud = {k: s for k, s in stepped.items() if k in sent and k not in paid}
    expected = dict.fromkeys(paid, "PAID") | loud
    assert len(paid) == 2
    assert len(expected) > 2

    pushed = _pushed(project.run("status-sync", "-m", MAPPING, "--json"))
    rerun = _pushed(project.run("status-sync", "-m", MAPPING, "--json"))

    new = sandbox.state.pushes()[told:]
    assert sorted((p.invoice_id, p.body["invoice_status"]) for p in new) == sorted(expected.items())
    assert pushed == len(expected)
    assert rerun == 0
