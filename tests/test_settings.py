"""Settings: defaults for the sandbox, one clear message per bad variable, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.connectors.crm import crm_credentials
from pipeline.connectors.merchant import merchant_credentials
from pipeline.settings import SANDBOX_CREDENTIALS, SettingsError, load_settings, mask_url

SECRET = "s3cr3t-api-key-value"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test reads only what it sets: no .env, no APPZEN_* from the outer environment."""
    monkeypatch.chdir(tmp_path)
    for name in list(__import__("os").environ):
        if name.startswith(("APPZEN_", "ERP_", "STAGING_", "BATCH_")):
            monkeypatch.delenv(name)


def test_defaults_point_at_the_sandbox() -> None:
    settings = load_settings()
    assert settings.appzen_base_url.startswith("http://127.0.0.1:")
    assert settings.credentials() == SANDBOX_CREDENTIALS
    assert settings.staging_database_url.get_secret_value().startswith("sqlite:///")


@pytest.mark.parametrize(
    "base_url",
    [
        "http://127.0.0.1:9/dictionary-data-services",  # a test AppZen on this machine
        "http://localhost:8765/dictionary-data-services",
        "http://127.0.0.1:8765/dictionary-data-services",  # set explicitly: no longer the default
    ],
)
def test_a_loopback_url_is_not_the_sandbox_unless_said(
    monkeypatch: pytest.MonkeyPatch, base_url: str
) -> None:
    monkeypatch.setenv("APPZEN_BASE_URL", base_url)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "APPZEN_API_KEY, APPZEN_CUSTOMER_ID, APPZEN_CUSTOMER_KEY must be set" in message
    assert "APPZEN_SANDBOX=true" in message
    monkeypatch.setenv("APPZEN_SANDBOX", "true")
    assert load_settings().credentials() == SANDBOX_CREDENTIALS


def test_appzen_sandbox_waives_nothing_off_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPZEN_SANDBOX", "true")
    monkeypatch.setenv("APPZEN_BASE_URL", "https://api.appzen.com/dictionary-data-services")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "APPZEN_CUSTOMER_KEY must be set" in str(caught.value)
    assert "APPZEN_SANDBOX=true" not in str(caught.value)


def test_the_connectors_sandbox_logins_follow_the_same_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = load_settings()  # APPZEN_BASE_URL unset: the shipped connectors.yaml's sandbox
    assert merchant_credentials(default, "http://127.0.0.1:8765/merchant").client_id
    assert crm_credentials(default, "http://127.0.0.1:8765/crm").username
    with pytest.raises(SettingsError, match="MERCHANT_CLIENT_ID"):
        merchant_credentials(default, "http://127.0.0.1:9/merchant")
    with pytest.raises(SettingsError, match="CRM_USERNAME"):
        crm_credentials(default, "http://127.0.0.1:9/crm")
    said = load_settings(appzen_sandbox=True)
    assert merchant_credentials(said, "http://127.0.0.1:9/merchant").client_id
    assert crm_credentials(said, "http://127.0.0.1:9/crm").username


def test_env_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("APPZEN_RATE_LIMIT=7.5\nBATCH_SIZE=100\n")
    settings = load_settings()
    assert settings.appzen_rate_limit == 7.5
    assert settings.batch_size == 100


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("APPZEN_RATE_LIMIT", "fast", "APPZEN_RATE_LIMIT: Input should be a valid number"),
        ("APPZEN_RATE_LIMIT", "0", "APPZEN_RATE_LIMIT: Input should be greater than 0"),
        ("APPZEN_MAX_CONCURRENCY", "-1", "APPZEN_MAX_CONCURRENCY: Input should be greater than"),
        ("APPZEN_RETRY_ATTEMPTS", "1.5", "APPZEN_RETRY_ATTEMPTS: Input should be a valid integer"),
        ("APPZEN_BASE_URL", "ftp://x", "APPZEN_BASE_URL: must be an http(s) URL"),
        ("APPZEN_VERIFY_TLS", "maybe", "APPZEN_VERIFY_TLS: Input should be a valid boolean"),
    ],
)
def test_a_malformed_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert expected in str(caught.value)


def test_credentials_are_required_off_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPZEN_BASE_URL", "https://api.appzen.com/dictionary-data-services")
    monkeypatch.setenv("APPZEN_API_KEY", SECRET)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "APPZEN_CUSTOMER_ID, APPZEN_CUSTOMER_KEY must be set" in message
    assert "APPZEN_API_KEY," not in message
    assert SECRET not in message


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPZEN_API_KEY", SECRET)
    monkeypatch.setenv("APPZEN_CUSTOMER_KEY", SECRET + "2")
    monkeypatch.setenv("STAGING_DATABASE_URL", f"postgresql://etl:{SECRET}@db/x")
    settings = load_settings()
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings.model_dump())
    assert settings.credentials()[0] == SECRET


def test_a_bad_value_next_to_a_secret_does_not_echo_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APPZEN_API_KEY", SECRET)
    monkeypatch.setenv("APPZEN_RATE_LIMIT", SECRET)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql+psycopg://etl:pa:ss@db:5432/x", "postgresql+psycopg://etl:***@db:5432/x"),
        ("mysql+pymysql://root@127.0.0.1/test", "mysql+pymysql://root@127.0.0.1/test"),
        ("sqlite:///.state/staging.db", "sqlite:///.state/staging.db"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def _credentials(monkeypatch: pytest.MonkeyPatch, base_url: str) -> None:
    monkeypatch.setenv("APPZEN_BASE_URL", base_url)
    monkeypatch.setenv("APPZEN_API_KEY", SECRET)
    monkeypatch.setenv("APPZEN_CUSTOMER_ID", "acme")
    monkeypatch.setenv("APPZEN_CUSTOMER_KEY", SECRET + "2")


def test_credentials_over_plain_http_to_another_machine_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _credentials(monkeypatch, "http://appzen.example.com/dictionary-data-services")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "APPZEN_BASE_URL is plain http:// to appzen.example.com" in message
    assert (
        "use https:// (or, for a trusted test network only, set ALLOW_PLAIN_HTTP=true)" in message
    )
    assert SECRET not in message


def test_plain_http_allowed_explicitly_is_logged_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _credentials(monkeypatch, "http://appzen.test.internal/dictionary-data-services")
    monkeypatch.setenv("ALLOW_PLAIN_HTTP", "true")
    with caplog.at_level("WARNING", logger="pipeline.settings"):
        settings = load_settings()
    assert settings.allow_plain_http
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert "credentials are sent in clear" in record.getMessage()
    assert SECRET not in caplog.text


@pytest.mark.parametrize(
    "base_url",
    ["https://api.appzen.com/dictionary-data-services", "http://127.0.0.1:9/x", "http://[::1]:9/x"],
)
def test_https_and_this_machine_need_no_permission(
    monkeypatch: pytest.MonkeyPatch, base_url: str
) -> None:
    _credentials(monkeypatch, base_url)
    assert load_settings().appzen_base_url == base_url


def test_a_crm_password_over_plain_http_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_BASE_URL", "http://crm.example.com/api")
    monkeypatch.setenv("CRM_PASSWORD", SECRET)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "CRM_BASE_URL is plain http:// to crm.example.com" in str(caught.value)
    monkeypatch.delenv("CRM_PASSWORD")
    assert load_settings().crm_base_url == "http://crm.example.com/api"  # no credential goes there


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APPZEN_REPORTS_URL", "reports.example/appzen"),  # no scheme
        ("APPZEN_REPORTS_URL", "https://ops:hunter22@reports.example/appzen"),  # a password
        ("APPZEN_REPORTS_URL", "https://reports.example/app zen"),  # a space
        ("PROGRESS_INTERVAL", "0"),
        ("PROGRESS_INTERVAL", "soon"),
    ],
)
def test_the_reports_url_and_the_progress_interval_are_checked(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert name in str(caught.value)
    assert "hunter22" not in str(caught.value)


def test_the_reports_url_and_the_progress_interval_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings()
    assert (settings.appzen_reports_url, settings.progress_interval) == (None, 30.0)
    monkeypatch.setenv("APPZEN_REPORTS_URL", "https://reports.example/appzen/")
    assert load_settings().appzen_reports_url == "https://reports.example/appzen"
