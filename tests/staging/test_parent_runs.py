"""Runs started under a parent run (a backfill's partitions) are found by the parent's id alone."""

from __future__ import annotations

from pipeline.staging import StagingStore

M = "ap_invoices"


def _child(store: StagingStore, parent: object, since: str = "2024-01-01") -> int:
    parameters = {"mapping": "m.yaml", "since": since, "parent_run_id": parent}
    return store.start_run("backfill", M, parameters, historical=True)


def test_runs_of_a_parent_are_its_children_only(store: StagingStore) -> None:
    first = store.start_run("backfill", M, {"partitions": 2}, historical=True)
    second = store.start_run("backfill", M, {"partitions": 2}, historical=True)
    mine = [_child(store, first), _child(store, second), _child(store, first, "2024-02-01")]
    theirs = [mine.pop(1)]
    store.start_run("sync", M, {"since": None}, historical=False)  # no parent at all
    _child(store, first * 10 + 1)  # its id starts with the parent's digits
    _child(store, str(first))  # a string is not the id
    _child(store, None, since=f'"parent_run_id":{first}')  # the key's text inside a value

    assert [run.id for run in store.runs_of_parent(first)] == mine
    assert [run.id for run in store.runs_of_parent(second)] == theirs
    assert store.runs_of_parent(mine[0]) == []
    [run] = store.runs_of_parent(second)
    assert (run.flow, run.parameters["parent_run_id"], run.status) == (
        "backfill",
        second,
        "running",
    )
