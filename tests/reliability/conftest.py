"""Fixtures of the reliability suite: a fresh sample ERP with dirty rows and ERP errors, and a
world (sandbox, staging, runs) around it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.devkit.sample_erp import GenerationReport, generate
from pipeline.devkit.sandbox import SandboxServer
from tests.reliability.world import World, open_world

INVOICES = 60


@pytest.fixture
def erp_db(tmp_path: Path) -> tuple[str, GenerationReport]:
    """A sample ERP (SQLite): 60 invoices, 5 of them dirty, 4 with an ERP error."""
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    return url, generate(url, invoices=INVOICES, seed=29, dirty_share=0.08, erp_error_share=0.06)


@pytest.fixture
def world(
    sandbox: SandboxServer, erp_db: tuple[str, GenerationReport], tmp_path: Path
) -> Iterator[World]:
    """The reset sandbox, the fresh ERP and an empty staging, with no run made yet."""
    made = open_world(sandbox, erp_db[0], erp_db[1], tmp_path)
    yield made
    made.store.close()
