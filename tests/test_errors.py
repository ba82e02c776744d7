"""The one error tree: every error class of pipeline/ and flows/ descends from EtlError and carries
exactly the marker this table gives it; families carry none and are never raised."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import flows
import pipeline
from pipeline.errors import (
    MARKERS,
    EtlError,
    ItemError,
    TerminalError,
    ThrottledError,
    TransientError,
)

REPO = Path(__file__).resolve().parents[1]

TERMINAL, TRANSIENT, THROTTLED, ITEM = TerminalError, TransientError, ThrottledError, ItemError
EXPECTED: dict[str, type[EtlError] | None] = {
    # the root's own
    "pipeline.errors.ConfigurationError": TERMINAL,
    "pipeline.errors.RemoteError": None,
    "pipeline.errors.RunStopped": TERMINAL,
    "pipeline.errors.RemoteUnreachable": TRANSIENT,
    "pipeline.errors.BudgetSpent": TRANSIENT,
    "pipeline.errors.RunCancelled": TRANSIENT,
    # configuration
    "pipeline.settings.SettingsError": TERMINAL,
    "pipeline.cli.runs.OptionError": TERMINAL,
    "flows.limits.GlobalLimitError": TERMINAL,
    "pipeline.devkit.sandbox.knobs.SandboxConfigError": TERMINAL,
    # mapping
    "pipeline.mapping.errors.MappingError": TERMINAL,
    "pipeline.mapping.loader.MappingFileError": TERMINAL,
    "pipeline.writeback.config.ConnectorsFileError": TERMINAL,
    "pipeline.mapping.yamlread.YamlRefused": TERMINAL,
    "pipeline.mapping.transforms.ConversionError": ITEM,
    "pipeline.scaffold.errors.InitError": TERMINAL,
    "pipeline.resources.ResourceError": TERMINAL,
    # source (ERP side)
    "pipeline.extract.base.SourceError": None,
    "pipeline.extract.base.ExtractError": TERMINAL,
    "pipeline.extract.base.SourceConfigError": TERMINAL,
    "pipeline.extract.base.SourceUnavailable": TRANSIENT,
    # staging
    "pipeline.staging.errors.StagingError": None,
    "pipeline.staging.errors.StagingTerminalError": TERMINAL,
    "pipeline.staging.errors.StagingTransientError": TRANSIENT,
    # AppZen
    "pipeline.appzen.errors.AppZenError": None,
    "pipeline.appzen.errors.FatalError": TERMINAL,
    "pipeline.appzen.errors.CredentialsError": TERMINAL,
    "pipeline.appzen.errors.EndpointNotFound": TERMINAL,
    "pipeline.appzen.errors.CertificateError": TERMINAL,
    "pipeline.appzen.errors.UnexpectedResponse": TERMINAL,
    "pipeline.appzen.errors.RetryableError": TRANSIENT,
    "pipeline.appzen.errors.QuotaExceeded": THROTTLED,
    "pipeline.appzen.errors.ServerError": TRANSIENT,
    "pipeline.appzen.errors.TransportError": TRANSIENT,
    "pipeline.appzen.errors.RowError": ITEM,
    "pipeline.appzen.errors.InvalidInvoice": ITEM,
    "pipeline.appzen.errors.UnknownInvoice": ITEM,
    # merchant platform
    "pipeline.connectors.errors.MerchantError": None,
    "pipeline.connectors.errors.MerchantFatal": TERMINAL,
    "pipeline.connectors.errors.MerchantThrottled": THROTTLED,
    "pipeline.connectors.errors.MerchantUnavailable": TRANSIENT,
    "pipeline.connectors.errors.MerchantTransport": TRANSIENT,
    "pipeline.connectors.errors.MerchantRowError": ITEM,
    # CRM.COM
    "pipeline.connectors.errors.CrmError": None,
    "pipeline.connectors.errors.CrmFatal": TERMINAL,
    "pipeline.connectors.errors.CrmThrottled": THROTTLED,
    "pipeline.connectors.errors.CrmUnavailable": TRANSIENT,
    "pipeline.connectors.errors.CrmTransport": TRANSIENT,
    "pipeline.connectors.errors.CrmRowError": ITEM,
    "pipeline.connectors.errors.NotDraft": ITEM,
    # runtime and the rest
    "pipeline.runtime.retry.RetriesExhausted": TRANSIENT,
    "pipeline.report.writer.ReportError": TERMINAL,
}
"""Every error class under the root → its marker (``None``: a family, caught but never raised)."""

OUTSIDE_THE_TREE: dict[str, str] = {
    "pipeline.mapping.yamlread._Stop": "private: ends the YAML walk, turned into YamlRefused",
    "pipeline.extract.json._DuplicateKeyError": "private: a json hook's signal, an ExtractError",
    "pipeline.devkit.sandbox.crm.CrmError": "the CRM emulator's own answer (server side)",
    "pipeline.devkit.sandbox.state.UnknownInvoiceError": "the AppZen emulator's lookup miss",
    "pipeline.devkit.sandbox.wire.BodyError": "the emulator refusing a request body (HTTP 400)",
    "pipeline.devkit.sandbox.wire.PathError": "the emulator's mutate endpoint (HTTP 400)",
}
"""Exception classes of pipeline/ that are not the project's errors, each with the reason."""


def _modules() -> Iterator[ModuleType]:
    for package in (pipeline, flows):
        yield package
        for found in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not found.name.endswith("__main__"):
                yield importlib.import_module(found.name)


MODULES = list(_modules())


def _name(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in MODULES:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found[_name(value)] = value
    return found


def _tree(root: type[EtlError]) -> Iterator[type[EtlError]]:
    for child in root.__subclasses__():
        yield child
        yield from _tree(child)


DEFINED = _defined_exceptions()
UNDER_ROOT = {_name(kind): kind for kind in _tree(EtlError) if kind not in (*MARKERS, THROTTLED)}
FAMILIES = {kind for name, kind in UNDER_ROOT.items() if EXPECTED.get(name, TERMINAL) is None}


def test_the_table_names_every_error_class_and_nothing_else() -> None:
    assert set(UNDER_ROOT) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(set(DEFINED) - set(OUTSIDE_THE_TREE)))
def test_every_error_class_descends_from_the_root(name: str) -> None:
    assert issubclass(DEFINED[name], EtlError), f"{name} must descend from pipeline.errors.EtlError"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_error_class_carries_exactly_its_marker(name: str) -> None:
    kind = UNDER_ROOT[name]
    carried = [marker for marker in MARKERS if issubclass(kind, marker)]
    expected = EXPECTED[name]
    if expected is None:
        assert carried == [], f"{name} is a family: no marker"
        return
    assert len(carried) == 1, f"{name} carries {carried}: exactly one marker"
    assert issubclass(kind, expected), f"{name} must be {expected.__name__}"
    assert issubclass(kind, ThrottledError) == (expected is THROTTLED), name


def test_the_exempt_list_is_current() -> None:
    stale = set(OUTSIDE_THE_TREE) - set(DEFINED)
    assert not stale, f"no such classes any more: {stale}"
    assert not any(issubclass(DEFINED[name], EtlError) for name in OUTSIDE_THE_TREE)


SYSTEMS = (
    "appzen.errors.AppZenError",
    "connectors.errors.MerchantError",
    "connectors.errors.CrmError",
)


def test_no_remote_system_is_another_systems_error() -> None:
    systems = [UNDER_ROOT[f"pipeline.{name}"] for name in SYSTEMS]
    for kind in systems:
        assert [other for other in systems if issubclass(kind, other)] == [kind]
        for child in _tree(kind):
            assert [other for other in systems if issubclass(child, other)] == [kind]


def _raised_families(path: Path, module: ModuleType) -> Iterator[str]:
    """``file:line Name`` for every call of a family or a marker in ``path``."""
    abstract = {*FAMILIES, EtlError, *MARKERS, THROTTLED}
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        called: object = None
        if isinstance(node.func, ast.Name):
            called = vars(module).get(node.func.id)
        elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            owner = vars(module).get(node.func.value.id)
            called = getattr(owner, node.func.attr, None)
        if called in abstract:
            yield f"{path.relative_to(REPO)}:{node.lineno} {ast.unparse(node.func)}"


def test_no_code_raises_a_family_or_a_bare_marker() -> None:
    found = [
        hit
        for module in MODULES
        if module.__file__
        for hit in _raised_families(Path(module.__file__), module)
    ]
    assert not found, f"raise one of the family's marked classes instead: {found}"


def test_the_root_module_is_import_light() -> None:
    """The CLI reads the tree to pick an exit code before any heavy module is loaded."""
    heavy = ("pandas", "sqlalchemy", "httpx", "pydantic")
    code = f"import sys, pipeline.errors; print(sorted(set({heavy!r}) & set(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert done.stdout.strip() == "[]"
