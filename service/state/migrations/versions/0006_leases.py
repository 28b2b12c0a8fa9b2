"""Parks leased to replicas: a lease per park, a heartbeat per replica, a run's park and the
replica that ran it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "park_leases",
        sa.Column("park", sa.String(100), nullable=False),
        sa.Column("holder", sa.String(200), nullable=True),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("park", name="pk_park_leases"),
    )
    op.create_table(
        "lease_holders",
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("holder", name="pk_lease_holders"),
    )
    # NULL: a run over every park of the registry (one replica, `parkflow detect`)
    op.add_column("runs", sa.Column("park", sa.String(100), nullable=True))
    op.add_column("runs", sa.Column("replica", sa.String(200), nullable=True))
    op.create_index("ix_runs_park_status_id", "runs", ["park", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_runs_park_status_id", table_name="runs")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("replica")
        batch.drop_column("park")
    op.drop_table("lease_holders")
    op.drop_table("park_leases")
