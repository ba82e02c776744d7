"""MappingError: a mapping (or connectors) file that cannot run at all; the mapping family of the
one error tree (:mod:`pipeline.errors`), kept import-light for the YAML reader and the CLI."""

from __future__ import annotations

from pipeline.errors import TerminalError


class MappingError(TerminalError):
    """The mapping cannot run at all (a column it needs is missing, no database URL …): stops the
    run before anything is sent. ``errors`` lists each problem as ``file:line path: message``."""

    def __init__(self, errors: list[str] | str) -> None:
        self.errors = [errors] if isinstance(errors, str) else list(errors)
        super().__init__("\n".join(self.errors))
