"""The merchant platform as a source: the rows of the JSON export of the same answer, so one
mapping reads either; a refusal stops the run before anything is sent (terminal), an outage past
the retries too (transient: a later run may succeed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.connectors.merchant import MerchantEndpoint, merchant_credentials
from pipeline.devkit.sandbox.merchant import MerchantState
from pipeline.extract.base import ExtractError, SourceUnavailable
from pipeline.extract.json import JsonSource
from pipeline.extract.merchant_api import MerchantApiSource
from pipeline.mapping import (
    MappedInvoice,
    MappingEngine,
    MappingFileError,
    RejectedInvoice,
    load_mapping,
)
from pipeline.settings import Settings
from tests.connectors.conftest import REPO

MAPPINGS = REPO / "mappings"


def _rows(source: MerchantApiSource | JsonSource) -> list[dict[str, object]]:
    return [record for chunk in source.chunks({}) for record in chunk.records()]


def _api_source(wb_settings: Settings) -> MerchantApiSource:
    source = load_mapping(MAPPINGS / "merchant_api.yaml").open_source(settings=wb_settings)
    assert isinstance(source, MerchantApiSource)
    return source


def test_rows_are_those_of_the_json_export(merchant: MerchantState, wb_settings: Settings) -> None:
    api = _api_source(wb_settings)
    export = JsonSource(
        "samples/merchant_invoices.json", base_dir=REPO, records="invoices", explode="invoiceItems"
    )
    assert api.columns() == export.columns()
    assert _rows(api) == _rows(export)
    chunk = next(iter(api.chunks({})))
    assert chunk.location(0) == "merchant GET /invoice:invoices[id=880100].invoiceItems[0]"
    assert merchant.requests["GET /invoice"] == 1, "read once, for columns and rows"
    assert "stores 12, 15" in api.describe()


def test_one_mapping_maps_the_api_like_the_export(
    merchant: MerchantState, wb_settings: Settings
) -> None:
    def mapped(name: str, source: MerchantApiSource | JsonSource) -> dict[str | None, object]:
        spec = load_mapping(MAPPINGS / f"{name}.yaml")
        results = MappingEngine(spec).run(source.chunks({}))
        return {
            r.key: r.payload if isinstance(r, MappedInvoice) else r.failures[0].rule
            for r in results
            if isinstance(r, MappedInvoice | RejectedInvoice)
        }

    export = load_mapping(MAPPINGS / "merchant.yaml").open_source(REPO)
    from_api = mapped("merchant_api", _api_source(wb_settings))
    assert from_api == mapped("merchant", export)  # type: ignore[arg-type]
    assert from_api["880106"] == "date_format", "the dirty sample row is rejected either way"


def test_the_write_backs_tag_is_not_read_as_a_change(
    merchant: MerchantState, wb_settings: Settings
) -> None:
    merchant.seed([{**merchant.invoice(880101), "note": "Köln [AppZen u-1 REJECTED: dup]"}])  # type: ignore[dict-item]
    rows = _rows(_api_source(wb_settings))
    assert {row["note"] for row in rows if row["id"] == 880101} == {"Köln"}


async def test_it_reads_from_inside_a_running_event_loop(
    merchant: MerchantState, wb_settings: Settings
) -> None:
    assert "invoiceItems.price" in _api_source(wb_settings).columns()


@pytest.mark.parametrize(("knobs", "words"), [({"denied": True}, "Access Denied")])
def test_a_refusal_stops_the_run_before_sending(
    merchant: MerchantState, wb_settings: Settings, knobs: dict[str, object], words: str
) -> None:
    merchant.configure(**knobs)
    with pytest.raises(ExtractError, match=words) as caught:
        _api_source(wb_settings).columns()
    assert str(caught.value).startswith("merchant API http://127.0.0.1:")


def test_an_outage_past_the_retries_is_a_transient_source_error(
    merchant: MerchantState, wb_settings: Settings
) -> None:
    assert wb_settings.merchant_base_url is not None
    base = wb_settings.merchant_base_url
    source = MerchantApiSource(
        MerchantEndpoint(base), merchant_credentials(wb_settings, base), attempts=1
    )
    merchant.configure(fail_next=[900])  # Service Down
    with pytest.raises(SourceUnavailable, match="Service Down"):
        source.columns()


def test_store_ids_filter_and_the_mapping_refuses_a_password(
    merchant: MerchantState, wb_settings: Settings, tmp_path: Path
) -> None:
    text = (MAPPINGS / "merchant_api.yaml").read_text("utf-8").replace("[12, 15]", "[15]")
    path = tmp_path / "mappings" / "merchant_api.yaml"
    path.parent.mkdir()
    path.write_text(text, "utf-8")
    source = load_mapping(path).open_source(settings=wb_settings)
    assert {row["storeId"] for row in _rows(source)} == {15}  # type: ignore[arg-type]
    path.write_text(text.replace("http://127.0.0.1", "http://u:pw@127.0.0.1"), "utf-8")
    with pytest.raises(MappingFileError, match="does not belong in a mapping file") as caught:
        load_mapping(path)
    assert "pw@" not in str(caught.value)
