"""docs/prefect-server.md stays runnable by tests/flows/test_walkthrough.py (fast lane: no server):
every command block says how the test runs it, and the blocks the test checks are there."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.flows.walkthrough import blocks

DOC = REPO / "docs" / "prefect-server.md"


def test_every_command_block_says_how_the_walkthrough_test_runs_it() -> None:
    steps = blocks(DOC.read_text())  # fails on a block without its comment
    labels = {b.label for b in steps if b.action in {"run", "fails", "start"}}
    checked = {"deploy", "bad-start", "bad-partitions", "retry-failed", "inspect", "wrong-key"}
    assert (
        checked | {"failed-log", "server", "sandbox", "worker-a", "worker-b", "worker-c"} <= labels
    )
    assert all(b.label for b in steps if b.action == "skip"), "a skip says why"
    assert [b.label for b in steps if b.elsewhere] == ["worker-c"]


def test_an_unmarked_command_block_is_refused() -> None:
    with pytest.raises(ValueError, match="without a walkthrough comment: line 3"):
        blocks("Run this:\n\n```sh\nprefect server start\n```\n")
