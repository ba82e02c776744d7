"""Alembic revisions of the staging schema, oldest first: ``r0001_initial`` … (one line)."""
