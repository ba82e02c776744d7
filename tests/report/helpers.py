"""Builders shared by the report tests: runs, stored failures and hostile values."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

from pipeline.failures import RowFailure, Stage
from pipeline.staging.records import RunRecord, StoredFailure

STARTED = datetime(2025, 3, 1, 5, 0, tzinfo=UTC)
FINISHED = datetime(2025, 3, 1, 5, 7, 30, tzinfo=UTC)
SEEN_FIRST = datetime(2025, 2, 27, 5, 1, 2, tzinfo=UTC)
SEEN_LAST = datetime(2025, 3, 1, 5, 3, 4, tzinfo=UTC)

TITLE_PAYLOAD = "<script>document.title='PWNED'</script>"
ELEMENT_PAYLOAD = (
    "<script>var d=document.createElement('div');d.id='injected';"
    "document.body.appendChild(d)</script>"
)
IMG_PAYLOAD = '"><img src=x onerror=alert(1)>'
ATTR_PAYLOAD = "' onmouseover='document.title=1' x='"
SVG_PAYLOAD = "<svg/onload=document.body.setAttribute('data-pwned','1')>"


def make_run(run_id: int = 42, **changes: object) -> RunRecord:
    """A finished nightly run of the ``acme_ap`` mapping."""
    run = RunRecord(
        id=run_id,
        flow="nightly-sync",
        mapping="acme_ap",
        parameters={"since": "2025-02-28"},
        historical=False,
        started_at=STARTED,
        finished_at=FINISHED,
        status="failed",
        counts={"sent": 120, "failed": 3},
        watermark="2025-03-01T04:59:00Z",
    )
    return replace(run, **changes)  # type: ignore[arg-type]


def failure(
    stage: Stage = "mapping", rule: str = "required", message: str = "blank", **fields: object
) -> RowFailure:
    """A RowFailure with sensible defaults."""
    values: dict[str, object] = {
        "source_key": "INV-1",
        "source_location": "ap_export.csv:12",
    }
    values.update(fields)
    return RowFailure(stage=stage, rule=rule, message=message, **values)  # type: ignore[arg-type]


def stored(row_failure: RowFailure, run_id: int = 42) -> StoredFailure:
    """``row_failure`` as the store returns it for run ``run_id``."""
    return StoredFailure(row_failure, run_id, "acme_ap", SEEN_FIRST, SEEN_LAST)


def one_per_stage() -> list[StoredFailure]:
    """One realistic failure of every stage (what the engine, poster and status-sync produce)."""
    return [
        stored(failure("extract", "unreadable", "ap_export.csv:9: 3 cells, the header has 5")),
        stored(
            failure(
                "mapping",
                "date_format",
                "invoice_date: 31-02-2021 is not a date in the format %d.%m.%Y",
                field_path="invoice_date",
                source_column="inv_date",
                value="31-02-2021",
                source_key="INV-2",
            )
        ),
        stored(
            failure(
                "validation",
                "schema:missing",
                "supplier_id: Field required",
                field_path="supplier_id",
                source_key="INV-3",
            )
        ),
        stored(
            failure(
                "appzen",
                "appzen_400",
                "AppZen rejected the invoice: Error code : 17e3338d - invalid entity_id",
                http_status=400,
                error_code="17e3338d",
                correlation_id="corr-400-abc",
                attempts=1,
                source_key="INV-4",
            )
        ),
        stored(
            failure(
                "retries_exhausted",
                "retries_exhausted:QuotaExceeded",
                "gave up after 6 attempts: HTTP 429",
                http_status=429,
                attempts=6,
                source_key="INV-5",
            )
        ),
        stored(
            failure(
                "status_sync",
                "status_sync_400",
                "AppZen refused the status body",
                http_status=400,
                correlation_id="corr-ss-1",
                source_key="INV-6",
                source_location="uuid 0f3c",
            )
        ),
    ]


def read_csv(path: Path) -> list[list[str]]:
    """The CSV report's lines as Python's csv module reads them (BOM removed)."""
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf"), "the CSV must start with a UTF-8 BOM (for Excel)"
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


class Page(HTMLParser):
    """An HTML page parsed into its tags (with attributes) and its text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []
        self.title = ""
        self._in_title = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)
        if self._in_title:
            self.title += data

    @property
    def text(self) -> str:
        """All text of the page, entities decoded."""
        return "".join(self.chunks)

    @property
    def words(self) -> str:
        """The page's text with one space between elements and whitespace collapsed."""
        return " ".join(" ".join(self.chunks).split())

    def names(self) -> set[str]:
        """The distinct tag names."""
        return {tag for tag, _ in self.tags}

    def attributes(self) -> set[str]:
        """The distinct attribute names."""
        return {name for _, attrs in self.tags for name in attrs}
