"""A ``prefect deploy`` build step: the appzen-etl release deployed, so that workers can install
exactly it (prefect.yaml's ``release`` pull steps, docs/prefect-server.md "Workers without a
checkout")."""

from __future__ import annotations

from importlib.metadata import version


def installed_release() -> dict[str, str]:
    """``{"version": "0.1.0"}``: the appzen-etl installed where ``prefect deploy`` runs (its
    flows are what the deployments' parameter schemas were made from)."""
    return {"version": version("appzen-etl")}
