"""The staging store every job runs against, opened the one way (secrets registered first)."""

from __future__ import annotations

from pipeline.redact import register_settings
from pipeline.settings import Settings
from pipeline.staging import StagingStore

__all__ = ["StagingStore", "open_store"]


def open_store(settings: Settings) -> StagingStore:
    """The staging store of ``settings``, migrated to the latest version; an unreachable
    database is a StagingError. The settings' secrets are registered first, so no message
    about it can show them."""
    register_settings(settings)
    return StagingStore.open(settings.staging_database_url.get_secret_value())
