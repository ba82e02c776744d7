"""The one error of ``mapping init``: the draft cannot be written (exit code 2, one line)."""

from __future__ import annotations

from pipeline.mapping.errors import MappingError


class InitError(MappingError):
    """``mapping init`` cannot read the database or file it was given, or cannot write the draft;
    the message names the option or path and the fix."""
