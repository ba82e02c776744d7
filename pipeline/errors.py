"""Errors a person must fix before anything can run: the CLI shows each as one line, exit 2."""

from __future__ import annotations

from pipeline.appzen.errors import FatalError
from pipeline.devkit.sandbox.knobs import SandboxConfigError
from pipeline.extract.base import ExtractError
from pipeline.mapping.spec import MappingError
from pipeline.settings import SettingsError
from pipeline.staging.errors import StagingError


class RunStopped(Exception):
    """A run stopped on a fatal AppZen answer (credentials, wrong URL); the rest stays pending."""


CONFIG_ERRORS: tuple[type[Exception], ...] = (
    SettingsError,
    MappingError,
    ExtractError,
    StagingError,
    FatalError,
    SandboxConfigError,
    RunStopped,
    FileNotFoundError,
)
"""Configuration, credential and source errors: a clear message, exit code 2, no traceback."""
