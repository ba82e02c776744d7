"""connectors.yaml: the shipped file loads; an invalid one lists every problem as file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.settings import SettingsError, load_settings
from pipeline.writeback import ConnectorsFileError, load_connectors
from tests.connectors.conftest import REPO


def test_the_shipped_file_loads() -> None:
    spec = load_connectors(REPO / "mappings" / "connectors.yaml")
    assert spec.merchant is not None
    assert spec.crm is not None
    assert spec.mappings == ["merchant_api", "sample_erp"]
    assert spec.crm.invoice_identifier == "reference_number"
    assert spec.appzen.poll.statuses == ["PROCESSED", "REJECTED"]


def test_every_problem_is_listed_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "connectors.yaml"
    path.write_text(
        "version: 1\n"
        "merchant:\n"
        "  base_url: https://user:secret@merchant.example.com\n"
        "  mapings: [merchant_api]\n"
        "crm:\n"
        "  base_url: https://crm.example.com\n"
        "  mappings: [sample_erp]\n"
        "  invoice_identifier: code\n"
        "  rejection_reasons: {}\n",
        "utf-8",
    )
    with pytest.raises(ConnectorsFileError) as caught:
        load_connectors(path)
    errors = caught.value.errors
    shown = str(path)
    assert errors[0].startswith(f"{shown}:2 merchant.mappings: missing key 'mappings'")
    assert any(
        e.startswith(f"{shown}:3 merchant.base_url:") and "put secrets in settings" in e
        for e in errors
    )
    assert any(
        e.startswith(f"{shown}:4 merchant.mapings: unknown key 'mapings'; did you mean 'mappings'")
        for e in errors
    )
    assert any(e.startswith(f"{shown}:8 crm.invoice_identifier:") for e in errors)
    assert any(e.startswith(f"{shown}:9 crm.rejection_reasons.default: missing") for e in errors)
    assert "secret@" not in "\n".join(errors), "the password in the URL is never repeated"


def test_an_unreadable_file_names_itself(tmp_path: Path) -> None:
    with pytest.raises(ConnectorsFileError, match=r"missing\.yaml: cannot read"):
        load_connectors(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("crm: [unclosed\n", "utf-8")
    with pytest.raises(ConnectorsFileError, match=r"bad\.yaml:"):
        load_connectors(bad)


def test_without_systems_nothing_is_written_back(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nname: only-poll\n", "utf-8")
    spec = load_connectors(path)
    assert (spec.name, spec.merchant, spec.crm, spec.mappings) == ("only-poll", None, None, [])


def test_settings_refuse_a_password_in_the_base_urls() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(merchant_base_url="https://u:hunter22@merchant.example.com")
    assert "MERCHANT_BASE_URL: must be an http(s) URL without a password" in str(caught.value)
    assert "hunter22" not in str(caught.value)
    assert load_settings(crm_base_url="https://crm.example.com/api/").crm_base_url == (
        "https://crm.example.com/api"
    )


def test_empty_variables_as_env_example_lists_them_are_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MERCHANT_BASE_URL", "MERCHANT_CLIENT_ID", "CRM_USERNAME", "CRM_PASSWORD"):
        monkeypatch.setenv(name, "")
    settings = load_settings()
    assert (settings.merchant_base_url, settings.merchant_client_id) == (None, None)
    assert (settings.crm_username, settings.crm_password) == (None, None)
