"""CLI fixtures: a project folder wired to the test sandbox (reset for each test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.devkit.sandbox import SandboxServer
from tests.cli.support import Project


@pytest.fixture
def project(tmp_path: Path, sandbox: SandboxServer) -> Project:
    """An empty project (flat CSV mapping, no source yet) on the reset sandbox."""
    return Project.create(tmp_path / "project", sandbox.base_url)
