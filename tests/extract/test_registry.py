"""The source registry: one table from spec type to constructor, and no way back to mapping."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import get_args

import pytest

from pipeline.extract.base import SourceConfigError
from pipeline.extract.csv import CsvSource
from pipeline.extract.json import JsonSource
from pipeline.extract.merchant_api import MerchantApiSource
from pipeline.extract.registry import OPENERS, SourceContext, open_source
from pipeline.extract.specs import (
    AnySourceSpec,
    CsvSourceSpec,
    JsonSourceSpec,
    MerchantSourceSpec,
    SourceSpecModel,
    SqlSourceSpec,
)
from pipeline.extract.sql import SqlSource
from pipeline.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def test_every_source_kind_has_one_constructor() -> None:
    assert set(OPENERS) == set(get_args(AnySourceSpec))


@pytest.mark.parametrize(
    ("spec", "kind"),
    [
        (CsvSourceSpec(kind="csv", path="exports/*.csv", delimiter=";"), CsvSource),
        (JsonSourceSpec(kind="json", path="x.jsonl", lines=True), JsonSource),
        (SqlSourceSpec(kind="sql", query="sql/x.sql"), SqlSource),
        (MerchantSourceSpec(kind="merchant", base_url="http://127.0.0.1:9"), MerchantApiSource),
    ],
)
def test_each_spec_opens_its_source(spec: AnySourceSpec, kind: type, tmp_path: Path) -> None:
    settings = load_settings(merchant_base_url=None)  # a loopback API: sandbox credentials
    context = SourceContext(tmp_path, "sqlite://", settings, "m.yaml:2 source")
    assert isinstance(open_source(spec, context), kind)


def test_a_sql_source_needs_a_database_url_named_at_its_place() -> None:
    spec = SqlSourceSpec(kind="sql", query="sql/x.sql")
    with pytest.raises(SourceConfigError) as caught:
        open_source(spec, SourceContext(Path(), None, where="mappings/ap.yaml:3 lines_source"))
    assert str(caught.value) == (
        "mappings/ap.yaml:3 lines_source: no database URL: set ERP_DATABASE_URL (or `url:` "
        "without a password)"
    )


def test_a_spec_type_without_a_constructor_is_named() -> None:
    class TapeSourceSpec(SourceSpecModel):
        kind: str = "tape"

    with pytest.raises(SourceConfigError, match="no source kind is registered for TapeSourceSpec"):
        open_source(TapeSourceSpec(), SourceContext(Path()))  # type: ignore[arg-type]


def test_the_extract_layer_never_imports_the_mapping_layer() -> None:
    above = ("pipeline.mapping", "pipeline.load", "pipeline.jobs")
    code = (
        "import sys, pipeline.extract.registry\n"
        f"print(sorted(m for m in sys.modules if m.startswith({above!r})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
