"""The staging schema's Alembic script directory (revisions in ``versions/``; no ``env.py``).

:mod:`pipeline.staging.migrations` runs these revisions itself (a ``MigrationContext`` on the
store's connection, under its lock), so there is no ``alembic.ini`` or ``env.py``. To change the
schema: edit ``pipeline/staging/tables.py``, then add ``versions/rNNNN_<name>.py`` with
``revision = "NNNN_<name>"`` and ``down_revision`` = the newest revision, written with Alembic
``op`` calls and the types of ``pipeline/staging/coltypes.py`` (never the tables of
``tables.py``: a revision is history, the tables move on). Keep one concern per revision: MySQL
commits each DDL statement at once, so a revision interrupted there is finished by hand.
``tests/staging/test_schema.py`` then checks, on SQLite, PostgreSQL and MariaDB, that the upgraded
schema equals ``tables.py`` and that the revisions form one line.
"""
