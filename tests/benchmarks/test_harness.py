"""The benchmark harness itself: its inputs map cleanly, its table renders, its sandbox process
answers. The benchmarks run with ``python -m benchmarks``; these tests keep the parts honest."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from benchmarks.inputs import flat_csv, sample_erp
from benchmarks.report import Figure, Machine, render_text, write_results
from benchmarks.sandbox import Counts, SandboxProcess
from pipeline.devkit.sample_erp import invoice, invoice_line
from pipeline.mapping import MappedInvoice, load_mapping, map_source
from pipeline.settings import SANDBOX_CREDENTIALS

REPO = Path(__file__).resolve().parents[2]


def test_the_flat_csv_maps_every_invoice_with_the_shipped_mapping(tmp_path: Path) -> None:
    mapping = flat_csv(tmp_path, 40, lines_per_invoice=2)
    results = list(map_source(load_mapping(mapping)))
    assert len(results) == 40
    assert all(isinstance(result, MappedInvoice) for result in results), results[0]
    lines = (tmp_path / "flat.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1 + 40 * 2


def test_a_copied_sample_erp_has_unique_keys_and_maps_cleanly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'erp.db'}"
    lines = sample_erp(url, 250, base=100)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        numbers = conn.execute(sa.select(invoice.c.document_no)).scalars().all()
        counted = conn.execute(sa.select(sa.func.count()).select_from(invoice_line)).scalar()
    engine.dispose()
    assert len(numbers) == len(set(numbers)) == 250
    assert counted == lines
    spec = load_mapping(REPO / "mappings" / "sample_erp.yaml")
    results = list(map_source(spec, erp_url=url))
    assert len(results) == 250
    assert all(isinstance(result, MappedInvoice) for result in results)


def test_the_table_renders_as_text_markdown_and_json(tmp_path: Path) -> None:
    figures = [
        Figure("3", "Mapping | speed", "21,000/s", "naive: 2,700/s", 7.8, ">= 20,000/s", True),
        Figure("5", "Rerun", "0 requests, 20 s", "seed: 30 s", 0.66, "< 15 s", False),
        Figure("2", "Raw posting", "500/s", "wrk: 1,000/s", 0.5, "—", None),
    ]
    text = render_text(figures)
    assert "NO" in text
    assert "yes" in text
    assert "7.80" in text
    machine = Machine(2, "Test CPU", 8.0, "3.11.7")
    json_path, md_path = write_results(tmp_path / "out", figures, machine, 12.3)
    data = json.loads(json_path.read_text(encoding="utf-8"))
    assert [f["row"] for f in data["figures"]] == ["3", "5", "2"]
    assert data["machine"]["cpu_model"] == "Test CPU"
    markdown = md_path.read_text(encoding="utf-8")
    assert "Mapping \\| speed" in markdown
    assert "2 CPUs (Test CPU)" in markdown


@pytest.mark.slow  # starts the sandbox process
def test_the_sandbox_process_serves_seeds_counts_and_resets() -> None:
    api_key, customer_id, customer_key = SANDBOX_CREDENTIALS
    headers = {"x-api-key": api_key, "customer-id": customer_id, "customer-key": customer_key}
    with SandboxProcess(rate=1000) as sandbox:
        uuids = sandbox.seed(["A", "B"])
        assert set(uuids) == {"A", "B"}
        body = {"appzen_invoice_state": "CREATED", "invoice_id": "A", "invoice_status": "PAID",
                "timestamp": "2024-01-01T00:00:00Z"}  # fmt: skip
        answer = httpx.post(
            f"{sandbox.base_url}/invoice/{uuids['A']}/status-sync", json=body, headers=headers
        )
        assert answer.status_code == 200
        counts = sandbox.counts()
        assert counts.responses == {200: 1}
        assert counts.stored == 2
        sandbox.reset()
        assert sandbox.counts() == Counts({}, [], 0)


def test_the_steady_rate_leaves_the_initial_burst_out() -> None:
    times = [0.0] * 10 + [1.0 + n * 0.5 for n in range(5)]  # a burst, then 2 per second
    counts = Counts({201: 15}, times, 15)
    assert counts.steady_rate(burst=10) == 2.0
    assert counts.steady_rate(burst=14) == 0.0
