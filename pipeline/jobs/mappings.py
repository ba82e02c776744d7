"""The mappings a run can name: what the flows' parameter schemas offer (:func:`mapping_names`)."""

from __future__ import annotations

from pipeline.mapping.loader import mapping_names

__all__ = ["mapping_names"]
