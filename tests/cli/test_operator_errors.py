"""Exit code 2 by class: every error of the one tree but the item-level ones stops a command with
its message; anything else (FileNotFoundError included) is a bug and keeps its traceback."""

from __future__ import annotations

import pytest
import typer

from flows.limits import GlobalLimitError
from pipeline.appzen.errors import CredentialsError, InvalidInvoice, ServerError
from pipeline.cli.runs import EXIT_CONFIG, OptionError, is_operator_error, operator_errors
from pipeline.connectors.errors import CrmRowError, MerchantFatal
from pipeline.devkit.sandbox import SandboxConfigError
from pipeline.errors import RunStopped
from pipeline.extract.base import ExtractError, SourceUnavailable
from pipeline.mapping import MappingFileError
from pipeline.mapping.transforms import ConversionError
from pipeline.report import ReportError
from pipeline.settings import SettingsError
from pipeline.staging import StagingTerminalError, StagingTransientError
from pipeline.writeback import ConnectorsFileError

STOPS_WITH_EXIT_2: list[Exception] = [
    SettingsError("APPZEN_API_KEY must be set"),
    OptionError("backfill: --to is before --from"),
    GlobalLimitError("global concurrency limit 'x' does not exist"),
    SandboxConfigError("invalid sandbox knobs: rate"),
    MappingFileError("mappings/x.yaml: cannot read the mapping file"),
    ConnectorsFileError("mappings/connectors.yaml: cannot read the connectors file"),
    ExtractError("CSV source 'x.csv': does not exist"),
    SourceUnavailable("sql/extract.sql on postgresql://…: cannot connect"),
    StagingTerminalError("staging database x: not a database URL"),
    StagingTransientError("staging database x: connection refused"),
    CredentialsError("check APPZEN_API_KEY", status=401),
    ServerError("AppZen server error", status=503),
    MerchantFatal("merchant platform: Invalid Client"),
    ReportError("cannot create the report directory reports"),
    RunStopped("run 3 stopped: check APPZEN_API_KEY"),
]

NOT_OPERATOR_ERRORS: list[Exception] = [
    InvalidInvoice("AppZen rejected the invoice", status=400),  # item-level: never stops a run
    CrmRowError("CRM.COM: Invoice not found"),
    ConversionError("number", "not a number: 'x'"),
    FileNotFoundError(2, "No such file or directory", "mappings/x.yaml"),
    ValueError("a bug"),
]


@pytest.mark.parametrize("error", STOPS_WITH_EXIT_2, ids=lambda e: type(e).__name__)
def test_the_trees_run_stopping_errors_exit_2_with_their_message(
    error: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    assert is_operator_error(error)

    @operator_errors
    def command() -> None:
        raise error

    with pytest.raises(typer.Exit) as caught:
        command()
    assert caught.value.exit_code == EXIT_CONFIG
    assert str(error).splitlines()[0] in capsys.readouterr().err


@pytest.mark.parametrize("error", NOT_OPERATOR_ERRORS, ids=lambda e: type(e).__name__)
def test_other_errors_keep_their_traceback(error: Exception) -> None:
    assert not is_operator_error(error)

    @operator_errors
    def command() -> None:
        raise error

    with pytest.raises(type(error)):
        command()
