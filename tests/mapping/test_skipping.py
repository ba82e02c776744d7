"""Skipping unchanged sources in the engine: the source hash covers the rows and the mapping,
an invoice is skipped only when staging names the same hash for its key, across chunks too."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

from pipeline.extract.base import Chunk
from pipeline.mapping import MappedInvoice, MappingSpec, RejectedInvoice
from pipeline.mapping.engine import MappingEngine, Streamed, UnchangedSource
from pipeline.mapping.refs import needed_columns
from pipeline.mapping.sourcehash import mapping_identity
from tests.mapping.conftest import COLUMNS, MINIMAL, Load, chunk, row


def skipping(spec: MappingSpec, chunks: list[Chunk], acked: dict[str, str]) -> list[Streamed]:
    asked: list[list[str]] = []

    def look_up(keys: list[str]) -> dict[str, str]:
        asked.append(keys)
        return {key: acked[key] for key in keys if key in acked}

    results = list(MappingEngine(spec).run_skipping(chunks, look_up))
    assert len(asked) == len([c for c in chunks if len(c)])  # once per chunk
    return results


def hashes(spec: MappingSpec, chunks: list[Chunk]) -> dict[str, str]:
    found = {}
    for result in skipping(spec, chunks, {}):
        assert isinstance(result, MappedInvoice)
        assert result.source_hash
        found[result.key] = result.source_hash
    return found


def test_only_invoices_whose_source_hash_staging_names_are_skipped(load: Load) -> None:
    spec = load(MINIMAL)
    a2 = {"total": "20.00"}
    rows = [row("A1"), row("A2", **a2), row("A2", desc="Second line", **a2), row("A3")]
    first = hashes(spec, [chunk(rows)])
    changed = [
        row("A1"),
        row("A2", **a2),
        row("A2", desc="Other", **a2),
        row("A3", price=Decimal("5.0")),
    ]

    results = skipping(spec, [chunk(changed)], {"A1": first["A1"], "A2": first["A2"]})

    assert [type(r).__name__ for r in results] == [
        "UnchangedSource",
        "MappedInvoice",
        "MappedInvoice",
    ]
    skipped = results[0]
    assert isinstance(skipped, UnchangedSource)
    assert (skipped.key, skipped.location, skipped.source_hash) == ("A1", "x.csv:2", first["A1"])
    assert len({*first.values()}) == 3


def test_the_hash_is_exact_and_follows_the_mapping_and_the_dropped_rows(load: Load) -> None:
    spec = load(MINIMAL)
    base = hashes(spec, [chunk([row("A1", price=Decimal("5.00"))])])["A1"]
    assert hashes(spec, [chunk([row("A1", price=Decimal("5.0"))])])["A1"] != base
    assert hashes(spec, [chunk([row("A1", price="5.00")])])["A1"] != base  # text, not a number
    other = load(MINIMAL.replace("invoice_number: inv", "invoice_number: sup"))
    assert hashes(other, [chunk([row("A1", price=Decimal("5.00"))])])["A1"] != base
    limited = load(MINIMAL + "max_lines_per_invoice: 1\n")
    one = skipping(limited, [chunk([row("A1")])], {})
    two = skipping(limited, [chunk([row("A1"), row("A1", desc="more")])], {})
    assert isinstance(one[0], MappedInvoice)
    assert isinstance(two[0], RejectedInvoice)
    acked = {"A1": str(one[0].source_hash)}
    assert isinstance(skipping(limited, [chunk([row("A1"), row("A1")])], acked)[0], RejectedInvoice)


def test_an_invoice_across_two_chunks_is_hashed_whole(load: Load) -> None:
    spec = load(MINIMAL)
    one, two = row("A1", total="20.00"), row("A1", total="20.00", desc="Two")
    whole = hashes(spec, [chunk([one, two]), chunk([row("A2")], first_row=4)])
    parts = [chunk([one]), chunk([two, row("A2")], first_row=3)]
    assert hashes(spec, parts) == whole

    results = skipping(spec, parts, whole)

    assert [r.key for r in results if isinstance(r, UnchangedSource)] == ["A1", "A2"]


def test_a_split_invoice_is_refused_even_when_its_parts_are_unchanged(load: Load) -> None:
    spec = load(MINIMAL)
    rows = [row("A1"), row("A2"), row("A1", desc="later")]
    first = hashes(spec, [chunk([row("A1")])])

    results = skipping(spec, [chunk(rows)], first)

    assert [type(r).__name__ for r in results if r.key == "A1"] == [
        "RejectedInvoice",
        "RejectedInvoice",
    ]


def test_with_nothing_acknowledged_the_results_are_those_of_a_plain_run(load: Load) -> None:
    spec = load(MINIMAL)
    rows = [row(f"A{n}", price=Decimal("5.00")) for n in range(5)] + [row("", desc="no key")]
    rows += [row("B1", date="2024-13-45"), row("B2")]
    chunks = [chunk(rows[:3]), chunk(rows[3:], first_row=5)]

    plain = list(MappingEngine(spec).run(chunks))
    skipping_none = skipping(spec, chunks, {})

    assert [type(r) for r in plain] == [type(r) for r in skipping_none]
    for one, other in zip(plain, skipping_none, strict=True):
        if isinstance(one, MappedInvoice):
            assert isinstance(other, MappedInvoice)
            assert (one.key, one.payload, one.location) == (
                other.key,
                other.payload,
                other.location,
            )
        else:
            assert isinstance(other, RejectedInvoice)
            assert (one.key, one.failures) == (other.key, other.failures)


def test_without_recording_mapped_invoices_carry_no_hash_but_unchanged_ones_skip(
    load: Load,
) -> None:
    spec = load(MINIMAL)
    rows = [row("A1"), row("A2"), row("A3")]
    first = hashes(spec, [chunk(rows)])
    acked = {"A1": first["A1"], "A3": first["A3"]}  # A3 is the chunk's last invoice

    results = list(
        MappingEngine(spec).run_skipping(
            [chunk(rows)], lambda keys: {k: acked[k] for k in keys if k in acked}, record=False
        )
    )

    assert [type(r).__name__ for r in results] == [
        "UnchangedSource",
        "MappedInvoice",
        "UnchangedSource",
    ]
    assert isinstance(results[1], MappedInvoice)
    assert results[1].source_hash is None


def test_the_source_hash_is_still_the_r0012_encoding(load: Load) -> None:
    """Staged hashes keep matching across versions: the hash is SHA-256 of the mapping's
    identity and ``repr((raw rows, dropped))``, whether an invoice is hashed with its chunk or
    from its rows (it went on into the next chunk)."""
    spec = load(MINIMAL)
    a1 = [
        row("A1", total="20.00", price=Decimal("5.00"), desc='it\'s "quoted"'),
        row("A1", total="20.00", desc="Two", date=date(2024, 12, 31), qty=Decimal("2")),
    ]
    single = [row("A2", desc="é")]
    whole = hashes(spec, [chunk([*a1, *single, row("A3")])])
    split = hashes(spec, [chunk(a1[:1]), chunk([a1[1], *single, row("A3")], first_row=3)])

    def r0012(rows: list[list[object]]) -> str:
        at = [COLUMNS.index(name) for name in needed_columns(spec, "header")]
        raw = [tuple(values[i] for i in at) for values in rows]
        text = repr((raw, 0)).encode("utf-8", "surrogatepass")
        return hashlib.sha256(mapping_identity(spec) + text).hexdigest()

    assert whole["A1"] == split["A1"] == r0012(a1)
    assert whole["A2"] == split["A2"] == r0012(single)


def test_chunks_read_as_rows_skip_and_map_as_chunks_of_columns(load: Load) -> None:
    """A chunk that keeps its row tuples (as SQL sources read them) gives the same results:
    the same hashes, the unchanged skipped, the changed and the split invoice mapped."""
    spec = load(MINIMAL)
    rows = [row("A1"), row("A2", total="20.00"), row("A2", total="20.00", desc="Two")]
    rows += [row("A3"), row("", desc="no key"), row("A4"), row("A5")]
    first = hashes(spec, [chunk([r for r in rows if r[0]])])
    changed = [*rows[:3], row("A3", price=Decimal("5.0")), *rows[4:]]

    def as_rows(part: list[list[object]], first_row: int) -> Chunk:
        return Chunk.of_rows(COLUMNS, [tuple(values) for values in part], "x.csv", first_row)

    def seen(results: list[Streamed]) -> list[tuple[str, str | None, str, str | None]]:
        return [
            (type(r).__name__, r.key, r.location, getattr(r, "source_hash", None)) for r in results
        ]

    by_columns = skipping(spec, [chunk(changed[:2]), chunk(changed[2:], first_row=4)], first)
    by_rows = skipping(spec, [as_rows(changed[:2], 2), as_rows(changed[2:], 4)], first)

    assert seen(by_rows) == seen(by_columns)
    unchanged = [r.key for r in by_rows if isinstance(r, UnchangedSource)]
    assert unchanged == ["A1", "A2", "A4", "A5"]  # A2 goes on into the second chunk
    assert [r.key for r in by_rows if isinstance(r, MappedInvoice)] == ["A3"]
