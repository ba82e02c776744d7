"""0010_run_owner: a run records its owner (host, pid, process start), a heartbeat and a reason.

``runs.owner`` is the token the run's claims carry (``invoices.claimed_by``); ``host``, ``host_id``
(the machine and PID namespace), ``pid`` and ``process_start`` say which process that is, so a run
on the same machine can tell at once that the owner's process is gone or was recycled;
``heartbeat_at`` / ``lease_until`` are renewed while the owner lives, so any other machine can tell
it is gone once the lease runs out. ``reason`` says why a run ended as it did (a crashed run: how
its owner was found gone). ``invoices.in_doubt_run_id`` names the run that claimed an invoice to
send it and has no clear answer recorded yet, so a resend after that run died is counted as one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.staging.coltypes import LongText, RowId, UtcDateTime

revision = "0010_run_owner"
down_revision = "0009_supplier_invoice"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the owner, heartbeat and reason columns of ``runs`` (indexed) and
    ``invoices.in_doubt_run_id``."""
    for column in (
        sa.Column("owner", sa.String(200)),
        sa.Column("host", sa.String(255)),
        sa.Column("host_id", sa.String(255)),
        sa.Column("pid", sa.Integer),
        sa.Column("process_start", sa.String(64)),
        sa.Column("heartbeat_at", UtcDateTime()),
        sa.Column("lease_until", UtcDateTime()),
        sa.Column("reason", LongText),
    ):
        op.add_column("runs", column)
    op.add_column("invoices", sa.Column("in_doubt_run_id", RowId))
    op.create_index("ix_runs_owner", "runs", ["owner"])
    op.create_index("ix_runs_status", "runs", ["status", "id"])


def downgrade() -> None:
    """Staging databases are never downgraded (upgrade appzen-etl instead)."""
    raise NotImplementedError("staging databases are never downgraded")
