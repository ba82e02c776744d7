"""The operator's command line, ``appzen-etl``: its commands, what runs around them, output."""

from __future__ import annotations

from pipeline.cli.commands import app

__all__ = ["app"]
