"""Fixtures of the report tests: the Chromium the browser tests drive."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def chromium() -> str:
    """The chromium executable (``$CHROMIUM``, else /usr/bin/chromium, else on PATH)."""
    candidates = [os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "chromium not found (looked at $CHROMIUM, /usr/bin/chromium and PATH): run "
        "scripts/ensure-chromium.sh (apt-get install chromium) or set CHROMIUM",
        pytrace=False,
    )
