"""docs/guarantees.md names the tests that prove its promises: every file and test it names
exists (a renamed or removed test would leave a promise unproved without anyone noticing)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GUARANTEES = REPO / "docs" / "guarantees.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?")
SHORT = re.compile(r"`::(\w+)`")
"""``::name`` right after a full reference: another test of the same file."""


def test_every_test_the_guarantees_name_exists() -> None:
    text = GUARANTEES.read_text("utf-8")
    missing: list[str] = []
    last_file: Path | None = None
    for match in re.finditer(rf"{REFERENCE.pattern}|{SHORT.pattern}", text):
        path, name, short = match.group(1), match.group(2), match.group(3)
        if path is not None:
            last_file = REPO / path
            if not last_file.exists():
                missing.append(path)
                continue
        else:
            name = short
        if name is not None and last_file is not None and last_file.exists():
            source = last_file.read_text("utf-8")
            if not re.search(rf"^(?:async )?def {name}\(", source, re.MULTILINE):
                missing.append(f"{last_file.relative_to(REPO)}::{name}")
    assert missing == [], f"docs/guarantees.md names tests that do not exist: {missing}"
