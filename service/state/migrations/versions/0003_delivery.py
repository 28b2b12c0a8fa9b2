"""Delivery state per endpoint, consents to be introduced, facts kept with an alert.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("facts", sa.JSON(), nullable=True))
    op.add_column(
        "outbox", sa.Column("endpoint", sa.String(2100), nullable=False, server_default="")
    )
    op.create_index(
        "ix_outbox_channel_endpoint_alert_id_sent_ms",
        "outbox",
        ["channel", "endpoint", "alert_id", "sent_ms"],
    )
    op.create_table(
        "endpoints",
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(2100), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("failing_since_ms", sa.BigInteger(), nullable=True),
        sa.Column("next_attempt_ms", sa.BigInteger(), nullable=False),
        sa.Column("disabled_ms", sa.BigInteger(), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("channel", "endpoint", name="pk_endpoints"),
    )
    op.create_table(
        "consents",
        sa.Column("opportunity_id", sa.String(400), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("park", sa.String(100), nullable=False),
        sa.Column("given_ms", sa.BigInteger(), nullable=False),
        sa.Column("given_by", sa.String(200), nullable=False),
        sa.Column("withdrawn_ms", sa.BigInteger(), nullable=True),
        sa.Column("withdrawn_by", sa.String(200), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("opportunity_id", "tenant", name="pk_consents"),
    )


def downgrade() -> None:
    op.drop_table("consents")
    op.drop_table("endpoints")
    op.drop_index("ix_outbox_channel_endpoint_alert_id_sent_ms", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("endpoint")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("facts")
