"""Fixtures of the sync integration tests: the staging store the ``settings`` fixture points at."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.ops import open_store
from pipeline.settings import Settings
from pipeline.staging import StagingStore


@pytest.fixture
def store(settings: Settings) -> Iterator[StagingStore]:
    """The test's SQLite staging store (migrated), closed afterwards."""
    staging = open_store(settings)
    yield staging
    staging.close()
