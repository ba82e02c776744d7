"""Keys are identities: keys compared exactly, look-alike keys reported (neither document sent),
split invoices reported (neither part sent), normalisation only as the mapping declares it."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.extract.base import Chunk, ExtractError
from pipeline.mapping import MappedInvoice, RejectedInvoice, load_mapping, map_source, seen
from pipeline.mapping.engine import MappingEngine
from pipeline.mapping.errors import MappingError
from pipeline.mapping.identities import HOLD_BACK
from pipeline.mapping.keys import Locations, look_alike
from pipeline.mapping.seen import FirstSeen
from tests.mapping.conftest import COLUMNS, MINIMAL, Load, Write, chunk, mapped, row, run

SQL_MAPPING = MINIMAL.replace("{kind: csv, path: x.csv}", "{kind: sql, query: sql/ap.sql}")
CSV_MAPPING = MINIMAL.replace("path: x.csv", "path: exports/ap.csv")


def _collisions(results: Sequence[object]) -> dict[str | None, list[str]]:
    out: dict[str | None, list[str]] = {}
    for result in results:
        if isinstance(result, RejectedInvoice):
            for failure in result.failures:
                if failure.rule == "key_collision":
                    out.setdefault(result.key, []).append(failure.message)
    return out


def test_sql_keys_differing_by_a_trailing_space_are_two_documents_neither_sent(
    write: Write, tmp_path: Path
) -> None:
    database = tmp_path / "erp.db"
    with sqlite3.connect(database) as connection:
        connection.execute(f"CREATE TABLE ap ({', '.join(COLUMNS)}, line INTEGER)")
        rows = [
            (*row("5100000020", sup="S1", total="4481.73"), n) for n in range(1, 5)
        ] + [  # the second document: another supplier, 24,266.41, a trailing space in its key
            (*row("5100000020 ", sup="S2", total="24266.41"), n) for n in range(1, 6)
        ] + [(*row("5100000021"), 1)]  # fmt: skip
        connection.executemany(f"INSERT INTO ap VALUES ({', '.join('?' * 10)})", rows)
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "ap.sql").write_text("SELECT * FROM ap ORDER BY inv, line\n")
    spec = load_mapping(write(SQL_MAPPING))
    results = list(map_source(spec, {}, base_dir=tmp_path, erp_url=f"sqlite:///{database}"))
    assert [(type(r).__name__, r.key) for r in results] == [
        ("RejectedInvoice", "5100000020"),
        ("RejectedInvoice", "5100000020 "),
        ("MappedInvoice", "5100000021"),
    ]
    collisions = _collisions(results)
    assert collisions["5100000020"] == [
        "invoice key '5100000020' differs from the key '5100000020 ' at sql/ap.sql row 5 only by "
        "whitespace, case or control characters (two documents that look alike); neither is sent"
    ]
    assert collisions["5100000020 "] == [
        "invoice key '5100000020 ' differs from the key '5100000020' at sql/ap.sql row 1 only by "
        "whitespace, case or control characters (two documents that look alike); neither is sent"
    ]
    failure = results[1].failures[0]  # type: ignore[union-attr]
    assert (failure.source_location, failure.source_column, failure.value) == (
        "sql/ap.sql row 5",
        "inv",
        "5100000020 ",
    )
    assert "key_normalisation" in (failure.hint or "")


def test_csv_keys_differing_by_a_trailing_space_are_both_reported(
    write: Write, tmp_path: Path
) -> None:
    (tmp_path / "exports").mkdir()
    lines = [",".join(COLUMNS)]
    lines += [",".join(str(c) for c in row("AP-X")), ",".join(str(c) for c in row("AP-X "))]
    (tmp_path / "exports" / "ap.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = load_mapping(write(CSV_MAPPING))
    results = list(map_source(spec, {}, base_dir=tmp_path))
    assert [(type(r).__name__, r.key) for r in results] == [
        ("RejectedInvoice", "AP-X"),
        ("RejectedInvoice", "AP-X "),
    ]
    collisions = _collisions(results)
    assert "'AP-X ' at exports/ap.csv:3" in collisions["AP-X"][0]
    assert "'AP-X' at exports/ap.csv:2" in collisions["AP-X "][0]


def test_keys_differing_only_by_control_characters_collide(load: Load) -> None:
    results = run(load(MINIMAL), [chunk([row("\t=1+1"), row("\r=1+1"), row("=1+2")])])
    assert [(type(r).__name__, r.key) for r in results] == [
        ("RejectedInvoice", "\t=1+1"),
        ("RejectedInvoice", "\r=1+1"),
        ("MappedInvoice", "=1+2"),
    ]
    assert "'\\r=1+1' at x.csv:3" in _collisions(results)["\t=1+1"][0]


def test_case_variants_collide(load: Load) -> None:
    results = run(load(MINIMAL), [chunk([row("AP-X"), row("B"), row("ap-x")])])
    assert [type(r).__name__ for r in results] == [
        "RejectedInvoice",
        "MappedInvoice",
        "RejectedInvoice",
    ]


def test_a_look_alike_beyond_the_hold_back_is_refused_and_says_the_first_went_on(
    load: Load,
) -> None:
    rows = [row("AP-X"), *(row(f"K{n}") for n in range(HOLD_BACK + 1)), row("ap-x")]
    results = run(load(MINIMAL), [chunk(rows)])
    assert isinstance(results[0], MappedInvoice)  # it had left the engine before ap-x was read
    last = results[-1]
    assert isinstance(last, RejectedInvoice)
    (failure,) = last.failures
    assert failure.rule == "key_collision"
    assert failure.message == (
        "invoice key 'ap-x' differs from the key at x.csv:2 only by whitespace, case or control "
        f"characters (two documents that look alike); that invoice went on more than {HOLD_BACK} "
        "invoices earlier, this one is not sent"
    )


def test_a_look_alike_among_keys_moved_to_the_files_is_refused_the_same_way(
    load: Load, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past :data:`~pipeline.mapping.seen.RECENT` keys (4 here) the first key lives in the
    sorted digests and the temporary files: found, and named, as when it was still in memory."""
    monkeypatch.setattr(seen, "RECENT", 4)
    others = [[row(f"{kind}{n}") for n in range(HOLD_BACK + 1)] for kind in "KL"]
    rows = [row("AP-X"), row("S-1"), *others[0], row("ap-x"), *others[1], row("S-1")]
    results = run(load(MINIMAL), [chunk(rows)])
    assert isinstance(results[0], MappedInvoice)
    collision, split = results[HOLD_BACK + 3], results[-1]
    assert isinstance(collision, RejectedInvoice)
    assert isinstance(split, RejectedInvoice)
    assert [f.rule for f in collision.failures] == ["key_collision"]
    assert "differs from the key at x.csv:2 only by" in collision.failures[0].message
    assert [f.rule for f in split.failures] == ["contiguity"]
    assert split.failures[0].message.startswith(
        "rows of invoice 'S-1' are not together in the source: its first rows, at x.csv:3, went on"
    )


def test_a_declared_normalisation_makes_look_alike_keys_one_invoice(load: Load) -> None:
    spec = load(MINIMAL + "key_normalisation: [strip, upper]\n")
    results = run(spec, [chunk([row("AP-X", total="20.00"), row("ap-x "), row("AP-Y")])])
    assert [(type(r).__name__, r.key) for r in results] == [
        ("MappedInvoice", "AP-X"),
        ("MappedInvoice", "AP-Y"),
    ]
    sent = json.loads(results[0].payload)  # type: ignore[union-attr]
    assert sent["invoice_id"] == "AP-X"
    assert [line["line_number"] for line in sent["invoice_lines"]] == [1, 2]


def test_a_declared_normalisation_still_refuses_what_it_does_not_cover(load: Load) -> None:
    spec = load(MINIMAL + "key_normalisation: [strip]\n")
    results = run(spec, [chunk([row("AP-X"), row("ap-x ")])])
    assert [r.key for r in results] == ["AP-X", "ap-x"]
    assert set(_collisions(results)) == {"AP-X", "ap-x"}


def test_joined_sources_report_look_alike_header_keys(load: Load) -> None:
    text = MINIMAL.replace(
        "invoice_key: inv",
        "invoice_key: inv\nlines_source: {kind: csv, path: l.csv}\nlines_key: ref",
    )
    spec = load(text)
    header_columns = ["inv", "date", "sup", "total", "cur"]
    line_columns = ["ref", "desc", "qty", "price", "amount"]
    heads = [[k, "2024-12-31", "S1", "10.00", "EUR"] for k in ("A1", "a1", "A2")]
    lines = [[k, "Widget", "2", "5.00", "10.00"] for k in ("A1", "a1", "A2")]
    results = run(
        spec, [chunk(heads, header_columns, "h.csv")], [chunk(lines, line_columns, "l.csv")]
    )
    assert [(type(r).__name__, r.key) for r in results] == [
        ("RejectedInvoice", "A1"),
        ("RejectedInvoice", "a1"),
        ("MappedInvoice", "A2"),
    ]
    assert "'a1' at h.csv:3" in _collisions(results)["A1"][0]


# --- properties: no merge, no silent split ------------------------------------------------------
VARIANTS = [
    lambda k: k,
    lambda k: k + " ",
    lambda k: " " + k,
    lambda k: k.swapcase(),
    lambda k: "\t" + k,
    lambda k: k + "\r",
    lambda k: k[:1] + "\u200b" + k[1:],
    lambda k: k[:1] + "\u00a0" + k[1:],
    lambda k: k + "\x00",
]


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[str], list[int]]:
    """Documents (exact keys, some only look-alike variants of others) and the order of their
    rows in the stream (indexes into the documents; runs, interleavings, returns)."""
    bases = draw(st.lists(st.sampled_from(["ap-1", "AP-2", "x", "51000"]), min_size=1, max_size=4))
    keys = list(dict.fromkeys(VARIANTS[draw(st.integers(0, 8))](base) for base in bases))
    order = draw(st.lists(st.integers(0, len(keys) - 1), min_size=1, max_size=25))
    return keys, order


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(streams())
def test_no_merge_and_no_silent_split(load: Load, stream: tuple[list[str], list[int]]) -> None:
    keys, order = stream
    spec = load(MINIMAL)
    lines = [order.count(doc) for doc in range(len(keys))]
    rows = [
        row(keys[doc], desc=f"row {n}", total=f"{10 * lines[doc]}.00")
        for n, doc in enumerate(order)
    ]
    results = run(spec, [chunk(rows[:7]), chunk(rows[7:], first_row=9)])

    runs = [n for n in range(len(order)) if n == 0 or order[n] != order[n - 1]]
    assert len(results) == len(runs)  # one result per run of rows: nothing merged or dropped
    alike = [look_alike(key) for key in keys]
    for doc, key in enumerate(keys):
        rows_of = [n for n, d in enumerate(order) if d == doc]
        if not rows_of:
            continue
        whole = len([n for n in runs if order[n] == doc]) == 1
        alone = all(d == doc or alike[d] != alike[doc] for d in order)
        sent = [r for r in mapped(results) if r.key == key]
        if whole and alone:
            (invoice,) = sent
            lines = json.loads(invoice.payload)["invoice_lines"]
            assert [line["line_description"] for line in lines] == [f"row {n}" for n in rows_of]
        else:
            assert not sent  # neither part of a split, neither of two look-alikes
            reported = [r for r in results if isinstance(r, RejectedInvoice) and r.key == key]
            assert reported
            assert all(
                any(f.rule in ("contiguity", "key_collision") for f in r.failures) for r in reported
            )


@pytest.mark.parametrize(
    ("recent", "digest"),
    [(16_384, hash), (8, hash), (8, lambda form: len(form) % 5 - 2)],
    ids=["in-memory", "spilled", "colliding-digests"],
)
def test_first_seen_agrees_with_a_dictionary_as_it_grows(
    recent: int, digest: Callable[[str], int]
) -> None:
    """Whether a form was seen, and with which key where, is exact: as a dictionary of texts
    answers, also once forms moved to the sorted digests and the files, and when every digest
    collides (five digests for 20,000 forms: each hit is confirmed against the stored form)."""
    generator = random.Random(15)
    table = FirstSeen(recent=recent, digest=digest)
    model = dict[str, tuple[str, int]]()
    for n in range(20_000):
        if n % 3:
            form = f"f{generator.getrandbits(40)}"
        else:
            form = generator.choice(["a", "b", "\udc80 lone", "bé", f"f{n // 7}"])
        key = f"k{generator.getrandbits(30)}"
        expected = model.setdefault(form, (key, n))
        found = table.first(form, key, n)
        assert found == (None if expected == (key, n) else expected)
    assert len(table) == len(model)


def test_first_seen_names_the_temporary_directory_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past ``recent`` forms the table writes to the temporary directory: when it cannot, the
    run stops with an error naming the directory and the fix, not an OSError."""
    missing = tmp_path / "no-such-dir"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    table = FirstSeen(recent=2)
    table.first("a", "A", 1)
    named = f"temporary directory {re.escape(str(missing))} .*TMPDIR"
    with pytest.raises(MappingError, match=named):
        table.first("b", "B", 2)


def test_locations_are_named_again_from_their_codes() -> None:
    where = Locations()
    first, second = chunk([row()], origin="a.csv"), chunk([row()], origin="b.csv", first_row=40)
    codes = [where.code(first, 0), where.code(first, 7), where.code(second, 3)]
    assert [where.location(code) for code in codes] == ["a.csv:2", "a.csv:9", "b.csv:43"]


def test_whole_invoices_read_before_the_source_fails_still_go_on(load: Load) -> None:
    """The queue that keeps look-alike keys from going out is emptied, not dropped, when the
    source fails part way: a run stopped by a bad row still delivers what it read before it (the
    invoice cut by the failure does not go)."""
    spec = load(MINIMAL)

    def failing() -> Iterator[Chunk]:
        yield chunk([row("A1"), row("A2"), row("A3")])
        yield chunk([row("A3"), row("A4")], first_row=5)
        raise ExtractError("x.csv: the read failed after 5 rows")

    results = MappingEngine(spec).run(failing())
    seen = [next(results).key for _ in range(3)]
    with pytest.raises(ExtractError, match="failed after 5 rows"):
        next(results)
    assert seen == ["A1", "A2", "A3"]  # A4 may have more rows the failure cut off: not sent
