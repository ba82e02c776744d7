"""Runs of one key in a chunk: the C-level path for text keys finds exactly the runs the
row-by-row reading does (blank keys, look-alike keys and non-text keys included)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from pipeline.mapping.grouping import runs
from pipeline.mapping.keys import invoice_key

KEYS = st.sampled_from(["A1", "A2", "a1", "A1 ", "", "  ", "\t", "B", "é"])
OTHER_KEYS = st.one_of(KEYS, st.none(), st.integers(0, 3), st.just(Decimal("2.0")))


def row_by_row(keys: list[object]) -> list[tuple[str | None, int, int]]:
    """The runs as the reading loop defines them: each blank key its own run."""
    found: list[tuple[str | None, int, int]] = []
    start, current = 0, None
    for index, raw in enumerate(keys):
        key = invoice_key(raw)
        if key is None or key != current:
            if index > start:
                found.append((current, start, index))
            start, current = index, key
    if len(keys) > start:
        found.append((current, start, len(keys)))
    return found


@given(st.lists(KEYS, max_size=30))
def test_text_keys_make_the_runs_of_the_row_by_row_reading(keys: list[object]) -> None:
    assert list(runs(keys)) == row_by_row(keys)


@given(
    st.lists(st.one_of(KEYS, st.none(), st.integers(0, 3), st.just(Decimal("2.0"))), max_size=20)
)
def test_other_keys_make_the_same_runs_as_before(keys: list[object]) -> None:
    assert list(runs(keys)) == row_by_row(keys)


def test_a_chunk_of_text_keys_is_cut_where_the_key_changes() -> None:
    keys: list[object] = ["A", "A", "B", "A", "C", "C", "C"]
    assert list(runs(keys)) == [("A", 0, 2), ("B", 2, 3), ("A", 3, 4), ("C", 4, 7)]
