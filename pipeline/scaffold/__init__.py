"""``appzen-etl mapping init``: a draft mapping (and query) from a database or an export file.

:func:`from_database` and :func:`from_files` return a :class:`Draft`: an ERP template rewritten
for where the draft will live when the source is one (:mod:`.templates`), else the source's
columns matched to AppZen fields by name, type and content (:mod:`.matching`), every required
field left open marked ``TODO(mapping init)``. :func:`write` writes it.

Modules: ``inspect_db`` / ``inspect_file`` (what a source holds), ``profile`` (what values look
like), ``targets`` (the AppZen fields and their usual column names), ``matching``, ``query`` (a
draft query for an unknown database), ``render`` (the YAML), ``templates``, ``drafts``.
"""

from __future__ import annotations

from pipeline.scaffold.drafts import (
    Draft,
    Target,
    described,
    from_database,
    from_files,
    pending,
    write,
)
from pipeline.scaffold.errors import InitError

__all__ = [
    "Draft",
    "InitError",
    "Target",
    "described",
    "from_database",
    "from_files",
    "pending",
    "write",
]
