"""Runs started under a parent run (a backfill's partitions) are found by the parent's id alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.staging import StagingStore
from tests.databases import DIALECTS, empty_database

M = "ap_invoices"


def _child(store: StagingStore, parent: int | None, since: str = "2024-01-01") -> int:
    parameters = {"mapping": "m.yaml", "since": since}
    return store.start_run("backfill", M, parameters, historical=True, parent_run_id=parent)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_runs_of_a_parent_are_its_children_only(dialect: str, tmp_path: Path) -> None:
    with empty_database(dialect, tmp_path) as url, StagingStore.open(url) as store:
        first = store.start_run("backfill", M, {"partitions": 2}, historical=True)
        second = store.start_run("backfill", M, {"partitions": 2}, historical=True)
        mine = [_child(store, first), _child(store, second), _child(store, first, "2024-02-01")]
        theirs = [mine.pop(1)]
        store.start_run("sync", M, {"since": None}, historical=False)  # no parent at all
        _child(store, first * 10 + 1)  # its id starts with the parent's digits
        _child(store, None, since=f'"parent_run_id":{first}')  # the id's text inside a value

        assert [run.id for run in store.runs_of_parent(first)] == mine
        assert [run.id for run in store.runs_of_parent(second)] == theirs
        assert store.runs_of_parent(mine[0]) == []
        [run] = store.runs_of_parent(second)
        assert (run.flow, run.parent_run_id, run.status) == ("backfill", second, "running")
        parent = store.get_run(first)
        assert parent is not None
        assert parent.parent_run_id is None
