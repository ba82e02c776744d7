"""The watermark an incremental run stores: never past an open invoice, values in their order."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pipeline.runtime.watermarks import Watermarks, bindable


def test_no_finished_invoice_means_no_watermark() -> None:
    marks = Watermarks()
    assert marks.value is None
    marks.add(done=[], still_open=["2024-01-01"])
    assert marks.value is None


def test_the_watermark_stops_below_the_first_open_invoice_of_the_batch() -> None:
    marks = Watermarks()
    marks.add(done=["2024-01-01", "2024-03-01", "2024-02-01"], still_open=["2024-02-15"])
    assert marks.value == "2024-02-01"
    marks.add(done=["2024-04-01", "2024-02-10"], still_open=[])
    assert marks.value == "2024-02-10"


def test_a_later_open_invoice_below_the_watermark_pulls_it_back_conservatively() -> None:
    marks = Watermarks()
    marks.add(done=["2024-05-01"], still_open=[])
    marks.add(done=[], still_open=["2024-03-01"])
    assert marks.value is None  # re-reads more next time, never less


def test_numbers_compare_as_numbers_not_as_text() -> None:
    marks = Watermarks()
    marks.add(done=[9, 10, 100, Decimal("41.5")], still_open=[42])
    assert marks.value == "41.5"  # as text, "100" < "42" and "9" > "42"
    marks = Watermarks()
    marks.add(done=[9, 100], still_open=[])
    assert marks.value == "100"


def test_timestamps_are_stored_as_iso_text_and_bound_as_timestamps() -> None:
    marks = Watermarks()
    marks.add(done=[datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2)], still_open=[])
    assert marks.value == "2024-01-02T03:04:05"
    assert bindable(marks.value) == datetime(2024, 1, 2, 3, 4, 5)  # PostgreSQL: no text
    assert bindable("not a date") == "not a date"
    assert bindable(None) is None


def test_values_that_cannot_be_compared_fall_back_to_text() -> None:
    marks = Watermarks()
    marks.add(done=["b", 1], still_open=[])
    assert marks.value == "b"
