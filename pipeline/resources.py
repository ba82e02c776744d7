"""Files appzen-etl reads at run time, found in the installed package: the one place that knows.

Two kinds, both located through :func:`importlib.resources.files`:

* **package data** that lives in the source tree inside a package (the staging schema's Alembic
  revisions): :func:`package_dir`.
* **shipped project files** that live at the top of the repository, where users read and copy
  them (``mappings/``, ``sql/sample_erp/``, ``samples/``): the wheel carries copies under
  ``pipeline/_shipped/`` (``force-include`` in ``pyproject.toml``) laid out as in the repository,
  so a shipped mapping's relative paths (``sql/sample_erp/extract.sql``) resolve there as they do
  in a checkout. An editable install (``uv sync``) has no copies: the checkout root serves.
  :func:`shipped_root`, :func:`shipped_path`.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from pipeline.errors import ConfigurationError

SHIPPED = "_shipped"
"""The folder inside the ``pipeline`` package that holds the shipped project files in a wheel."""
SHIPPED_FOLDERS = ("mappings", "sql/sample_erp", "samples")
"""What ``pyproject.toml`` force-includes under ``pipeline/_shipped`` (keep the two in step)."""


class ResourceError(ConfigurationError):
    """A file appzen-etl ships is missing: the installation is incomplete (reinstall it)."""


def package_dir(package: str, *parts: str) -> Path:
    """A directory inside an installed package (e.g. ``pipeline.staging``, ``alembic``)."""
    root = files(package)
    if not isinstance(root, Path):  # a zip import: nothing on disk to hand to SQLite or Alembic
        raise ResourceError(
            f"{package} is imported from an archive ({root}); install appzen-etl as a regular "
            "package (pip or uv install the wheel) so its data files are on disk"
        )
    found = root.joinpath(*parts)
    if not found.is_dir():
        raise ResourceError(f"{found}: missing from the installed {package}; reinstall appzen-etl")
    return found


def shipped_root() -> Path:
    """The folder holding the shipped ``mappings/``, ``sql/sample_erp/`` and ``samples/``:
    ``pipeline/_shipped`` in an installed wheel, else the checkout's root (editable install)."""
    package = package_dir("pipeline")
    packaged = package / SHIPPED
    if packaged.is_dir():
        return packaged
    checkout = package.parent
    if (checkout / "mappings").is_dir():
        return checkout
    raise ResourceError(
        f"{packaged}: the files appzen-etl ships (mappings, sample ERP queries, samples) are "
        "missing; reinstall appzen-etl from its wheel"
    )


def shipped_path(*parts: str) -> Path:
    """A shipped project file or folder, e.g. ``shipped_path("mappings", "sample_erp.yaml")``."""
    path = shipped_root().joinpath(*parts)
    if not path.exists():
        raise ResourceError(f"{path}: not shipped with this appzen-etl; reinstall it")
    return path
